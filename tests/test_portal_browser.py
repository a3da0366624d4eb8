"""The portal in headless Chromium against the real Keycloak: subscribe, approve, log in, create users,
E@syPaiement confirmations, disable, forgotten password; screenshots and axe accessibility checks."""

from __future__ import annotations

import re

import pytest

from provisioner.settings import PROJECT_ROOT
from tests.portal_support import STAFF_PASSWORD, subscription_data
from tests.provisioning import numero
from tests.totp import AUTHENTICATORS

pytestmark = pytest.mark.browser
SHOTS = PROJECT_ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DELEGATE_PASSWORD = "Deleg2026"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


class Checks:
    """Screenshots and axe results collected over the run; violations are asserted at the end."""

    def __init__(self):
        from axe_playwright_python.sync_playwright import Axe
        self.axe = Axe()
        self.violations: dict[str, list[str]] = {}
        SHOTS.mkdir(parents=True, exist_ok=True)

    def page(self, page, name: str, axe: bool = True) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        if axe:
            result = self.axe.run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
            found = [f"{v['id']}: {v['help']} ({len(v['nodes'])}× e.g. {v['nodes'][0]['target']})"
                     for v in result.response["violations"]]
            if found:
                self.violations[name] = found


@pytest.fixture(scope="module")
def checks():
    return Checks()


def keycloak_login(page, username: str, password: str) -> None:
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#kc-login")


def second_factor(page, portal, username: str) -> None:
    """Keycloak's TOTP pages, as the account's owner with their phone (tests/totp.py): the setup page at the first
    login (the secret read from the page), the code at the next ones."""
    page.wait_for_url(re.compile(r".*(/login-actions/|" + re.escape(portal.url) + ").*"))
    page.wait_for_load_state()
    if page.locator("#totpSecret").count():
        AUTHENTICATORS.enrol(username, page.input_value("#totpSecret"))
        page.fill("#totp", AUTHENTICATORS.code(username))
        page.fill("#userLabel", "Téléphone")
        page.click("#saveTOTPBtn")
    elif page.locator("#kc-otp-login-form").count():
        page.fill("#otp", AUTHENTICATORS.code(username))
        page.click("#kc-login")


def portal_login(page, portal, username: str, password: str) -> None:
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Se connecter").first.click()
    keycloak_login(page, username, password)
    second_factor(page, portal, username)  # delegates, agents and auditors have one
    page.wait_for_url(re.compile(re.escape(portal.url) + r"/(delegue|agent|auditeur)/.*"))


def logout(page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state()


def fill_subscription(page, n: str) -> None:
    values = subscription_data(n, **{"delegate-email": f"delegue.{n}@atlas-textile.ma",
                                     "delegate-password": DELEGATE_PASSWORD,
                                     "delegate-password_confirm": DELEGATE_PASSWORD})
    for field_id, value in values.items():
        if field_id.endswith("-civilite"):
            page.select_option(f"#{field_id}", value)
        else:
            page.fill(f"#{field_id}", value)


def create_user(page, portal, tab: str, login: str, powers: list[str], provider: str | None = None) -> None:
    page.goto(f"{portal.url}/delegue/t/{tab}")
    page.get_by_role("link", name=re.compile("^Nouveau")).click()
    page.fill("#login", login)
    page.select_option("#civilite", "M")
    page.fill("#nom", "Tazi")
    page.fill("#prenom", "Yasmine")
    page.fill("#email", f"{login}@atlas-textile.ma")
    page.fill("#fonction", "Comptable")
    if provider:
        page.fill("#provider", provider)
    for power in powers:
        page.check(f"input[name=powers][value={power}]")
    page.fill("#password", "User2026")
    page.fill("#password_confirm", "User2026")
    page.select_option("#question1", "Ville de naissance de votre père ?")
    page.fill("#answer1", "Fès")
    page.select_option("#question2", "Nom de votre premier animal de compagnie ?")
    page.fill("#answer2", "Mimi")
    page.get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    assert f"Utilisateur « {login} » créé." in page.inner_text("main"), page.inner_text("main")[:800]


def test_subscribe_approve_and_manage_users(browser, portal, staff, checks):
    n = numero()
    company = browser.new_context(locale="fr-FR")
    page = company.new_page()
    page.goto(portal.url + "/")
    checks.page(page, "01-home")
    page.get_by_role("link", name="Abonnement", exact=True).click()
    checks.page(page, "02-subscription-form")
    # a first try with a mistake: the message sits next to the field and what was typed stays
    fill_subscription(page, n)
    page.fill("#delegate-email", "salma.bennani")
    page.get_by_role("button", name="Valider l'abonnement").click()
    assert "adresse e-mail valide" in page.inner_text("#delegate-email-error")
    assert page.input_value("#company-raison_sociale") == "Atlas Textile SARL"
    checks.page(page, "03-subscription-errors")
    page.fill("#delegate-email", f"delegue.{n}@atlas-textile.ma")
    page.fill("#delegate-password", DELEGATE_PASSWORD)
    page.fill("#delegate-password_confirm", DELEGATE_PASSWORD)
    page.get_by_role("button", name="Valider l'abonnement").click()
    page.wait_for_url("**/abonnement/recapitulatif")
    assert "48 heures" in page.inner_text("main")
    checks.page(page, "04-subscription-summary")
    page.emulate_media(media="print")
    page.screenshot(path=str(SHOTS / "04b-subscription-summary-print.png"), full_page=True)
    company.close()

    # the agent approves
    agent = browser.new_context(locale="fr-FR")
    page = agent.new_page()
    portal_login(page, portal, staff["agent"], STAFF_PASSWORD)
    assert n in page.inner_text("main")
    checks.page(page, "05-agent-pending")
    page.get_by_role("link", name=re.compile(f"Examiner {n}")).click()
    checks.page(page, "06-agent-subscription")
    page.get_by_role("button", name="Valider l'abonnement").click()
    assert "validé" in page.inner_text("main")
    page.goto(f"{portal.url}/agent/adherents/{n}")
    checks.page(page, "07-agent-adherent")
    logout(page)
    agent.close()

    # the delegate logs in with the numéro d'adhérent
    ctx = browser.new_context(locale="fr-FR")
    page = ctx.new_page()
    portal_login(page, portal, n, DELEGATE_PASSWORD)
    assert "Atlas Textile SARL" in page.inner_text("main")
    checks.page(page, "08-delegate-dashboard")

    v1 = f"val.{n}"
    create_user(page, portal, "easypaiement", v1, ["validateur"])
    checks.page(page, "09-delegate-easypaiement-tab")
    create_user(page, portal, "teledeclaration-externe", f"fidu.{n}", ["fichier-preetabli"], "Fiduciaire Atlas")

    # 2 confirmations refused while there is a single validator
    page.goto(f"{portal.url}/delegue/parametres")
    page.check("input[name=confirmations][value='2']")
    page.get_by_role("button", name="Valider").click()
    assert "second validateur" in page.inner_text("#confirmations-error")
    checks.page(page, "10-delegate-confirmations-refused")
    create_user(page, portal, "easypaiement", f"val2.{n}", ["validateur", "ordonnateur"])
    page.goto(f"{portal.url}/delegue/parametres")
    page.check("input[name=confirmations][value='2']")
    page.get_by_role("button", name="Valider").click()
    assert "Informations générales enregistrées" in page.inner_text("main")

    # the new user form, empty, for the record
    page.goto(f"{portal.url}/delegue/t/teledeclaration-interne/nouveau")
    checks.page(page, "11-delegate-create-teledeclaration")

    # disable a user (the external Télédéclaration user: validators are needed for 2 confirmations)
    page.goto(f"{portal.url}/delegue/utilisateurs/fidu.{n}")
    checks.page(page, "12-delegate-user-detail")
    page.get_by_role("button", name="Désactiver le compte").click()
    assert "désactivé" in page.inner_text("main")
    assert page.get_by_text("Désactivé", exact=True).count() >= 1
    page.goto(f"{portal.url}/delegue/journal")
    checks.page(page, "13-delegate-journal")
    page.goto(f"{portal.url}/delegue/import")
    checks.page(page, "14-delegate-import")
    page.goto(f"{portal.url}/telechargements/reabonnement")
    assert "Atlas Textile SARL" in page.inner_text("main")  # pre-filled for the logged-in delegate
    checks.page(page, "15-letter-reabonnement")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{portal.url}/delegue/")
    page.screenshot(path=str(SHOTS / "16-delegate-dashboard-mobile.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="English").click()
    checks.page(page, "17-delegate-dashboard-english")
    ctx.close()

    # forgotten password of the Télédéclaration user... who is disabled: build a fresh enabled one
    # through the delegate, then reset by secret questions in a fresh browser
    ctx = browser.new_context(locale="fr-FR")
    page = ctx.new_page()
    portal_login(page, portal, n, DELEGATE_PASSWORD)
    create_user(page, portal, "compte-adherent", f"compta.{n}", [])
    ctx.close()
    ctx = browser.new_context(locale="fr-FR")
    page = ctx.new_page()
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Réinitialiser mon mot de passe").click()
    checks.page(page, "18-reset-login")
    page.fill("#login", f"compta.{n}")
    page.get_by_role("button", name="Continuer").click()
    checks.page(page, "19-reset-questions")
    page.get_by_label("Ville de naissance de votre père ?").fill("fes")
    page.get_by_label("Nom de votre premier animal de compagnie ?").fill("MIMI")
    page.get_by_role("button", name="Vérifier mes réponses").click()
    page.wait_for_url("**/mot-de-passe-oublie/nouveau")
    checks.page(page, "20-reset-new-password")
    page.fill("#password", "Neuf2026")
    page.fill("#password_confirm", "Neuf2026")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_url("**/mot-de-passe-oublie/termine")
    checks.page(page, "21-reset-done")
    page.goto(portal.url + "/delegue/utilisateurs/nobody")  # anonymous: to Keycloak's login, not a page of ours
    page.goto(portal.url + "/nulle-part")
    checks.page(page, "22-not-found")
    ctx.close()

    # the security team's read-only space
    ctx = browser.new_context(locale="fr-FR")
    page = ctx.new_page()
    portal_login(page, portal, staff["auditor"], STAFF_PASSWORD)
    assert "Journal des actions" in page.inner_text("main")
    checks.page(page, "23-auditor-home")
    ctx.close()

    assert not checks.violations, "\n".join(f"{k}: {v}" for k, vs in checks.violations.items() for v in vs)
