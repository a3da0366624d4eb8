"""The portal in headless Chromium against the real Keycloak: subscribe, approve, log in, create users,
E@syPaiement confirmations, disable, forgotten password; screenshots and axe accessibility checks."""

from __future__ import annotations

import re

import pytest

from devstack.builders import STAFF_PASSWORD, numero
from tests.browser_support import SHOTS, Checks, browser, portal_login  # noqa: F401 (browser: a fixture)
from tests.portal_support import subscription_data

pytestmark = pytest.mark.browser
DELEGATE_PASSWORD = "Deleg2026"


@pytest.fixture(scope="module")
def checks():
    return Checks()


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
    page.locator("main").get_by_role("link", name=re.compile("^Nouveau")).click()  # (the banner has one too)
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
    page.get_by_role("button", name="Enregistrer la réception").click()  # the signed paper arrived
    assert "Réception du formulaire signé enregistrée" in page.inner_text("main")
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

    # 2 confirmations with a single validator (the brochure's order): accepted, the banner says what is missing
    page.goto(f"{portal.url}/delegue/parametres")
    page.check("input[name=confirmations][value='2']")
    page.get_by_role("button", name="Valider").click()
    assert "Informations générales enregistrées" in page.inner_text("main")
    assert "n'a que 1 validateur actif" in page.inner_text("#easypaiement-banner")
    checks.page(page, "10-delegate-confirmations-banner")
    create_user(page, portal, "easypaiement", f"val2.{n}", ["validateur", "ordonnateur"])
    assert page.locator("#easypaiement-banner").count() == 0

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
