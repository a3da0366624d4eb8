"""Keycloak's login pages speak CIMR (theme `cimr`, keycloak-extension/src/main/resources/theme/cimr): the brand,
the teleservice being entered, the login as CIMR users know it, a forgotten-password link to the portal's reset
with the login pre-filled, a refusal that says what to do; then the same pages in Chromium at 1280 and 375 px,
with screenshots and axe."""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import urlencode

import pytest

from devstack.logins import pkce_pair
from devstack.totp import AUTHENTICATORS
from provisioner.errors import RealmSpecError
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import PROJECT_ROOT
from tests import people
from tests.browser_support import SHOTS, Checks, browser, page_width  # noqa: F401  (browser: a fixture)
from tests.oidc_flow import Browser, redirect_uri, visible_text

TELESERVICE_NAMES = {"teledeclaration": "Télédéclaration", "compte-adherent": "Compte Adhérent",
                     "easypaiement": "E@syPaiement", "eliquidation": "e-liquidation@"}
WIDTHS = (1280, 375)


def auth_url(settings, spec, client_id: str, **extra: str) -> str:
    _, challenge = pkce_pair()
    params = {"client_id": client_id, "redirect_uri": redirect_uri(spec, client_id), "response_type": "code",
              "scope": "openid", "state": uuid.uuid4().hex, "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    return f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/auth?{urlencode(params)}"


def forgot_link(page: str) -> str:
    found = re.search(r'<a id="cimr-forgot-password"[^>]*href="([^"]+)"', page)
    assert found, visible_text(page)[:400]
    return html.unescape(found.group(1))


# --- the realm as code ----------------------------------------------------------------------------------------

def test_the_forgotten_password_link_must_be_a_url(tmp_path):
    for name in ("realm.yaml", "clients.yaml", "user-profile.yaml"):
        (tmp_path / name).write_text((PROJECT_ROOT / "realm" / name).read_text())
    realm = tmp_path / "realm.yaml"
    realm.write_text(realm.read_text().replace("forgot_password_url: ${PORTAL_URL}/mot-de-passe-oublie/",
                                               "forgot_password_url: mot-de-passe-oublie"))
    with pytest.raises(RealmSpecError, match=r"realm\.login\.forgot_password_url.*http\(s\) URL"):
        load_realm_spec(tmp_path, "cimr", {})


def test_the_realm_shows_our_pages(spec, realm, admin_gw):
    live = admin_gw.get_realm()
    assert live["loginTheme"] == spec.login_pages.theme == "cimr"
    assert live["attributes"]["cimrForgotPasswordUrl"] == spec.login_pages.forgot_password_url
    assert live["resetPasswordAllowed"] is False  # Keycloak's e-mail reset stays off: the portal's is the way


# --- the pages, over HTTP --------------------------------------------------------------------------------------

NB_HYPHEN = "\u2011"  # a hyphen no line breaks at: « e‑liquidation@ » stays one word


@pytest.mark.parametrize("client_id", sorted(TELESERVICE_NAMES))
def test_the_login_page_names_the_teleservice_and_the_login_as_cimr_users_know_it(settings, spec, realm, client_id):
    page = Browser(settings.keycloak_url, settings.realm).session.get(auth_url(settings, spec, client_id)).text
    text = visible_text(page)
    assert f"Connexion à {TELESERVICE_NAMES[client_id].replace('-', NB_HYPHEN)}" in text, text[:400]
    assert "N° d'adhérent ou identifiant" in text and "Nom d'utilisateur" not in text
    assert "Caisse Interprofessionnelle Marocaine de Retraite" in text  # the brand band
    assert "Mot de passe oublié ?" in text
    assert forgot_link(page) == spec.login_pages.forgot_password_url
    assert 'href="' in page and "/css/cimr.css" in page  # CIMR's colours


def test_the_portal_is_entered_with_its_article(settings, spec, realm):
    page = Browser(settings.keycloak_url, settings.realm).session.get(auth_url(settings, spec, "portal")).text
    assert "Connexion au Portail des téléservices CIMR" in visible_text(page), visible_text(page)[:400]
    english = Browser(settings.keycloak_url, settings.realm).session.get(
        auth_url(settings, spec, "portal", ui_locales="en")).text
    assert "Log in to the Portail des téléservices CIMR" in visible_text(english)


def test_the_login_page_in_english(settings, spec, realm):
    page = Browser(settings.keycloak_url, settings.realm).session.get(
        auth_url(settings, spec, "easypaiement", ui_locales="en")).text
    text = visible_text(page)
    assert "Log in to E@syPaiement" in text and "Membership number or login" in text, text[:400]


def test_after_a_wrong_password_the_forgotten_password_link_carries_the_login(settings, spec, realm):
    login = f"inconnu{uuid.uuid4().hex[:6]}"  # nobody: no real account's brute-force count is touched
    page = Browser(settings.keycloak_url, settings.realm).login(
        "teledeclaration", redirect_uri(spec, "teledeclaration"), login, "Mauvais1").page
    assert "N° d'adhérent, identifiant ou mot de passe incorrect." in visible_text(page), visible_text(page)[:400]
    assert forgot_link(page) == f"{spec.login_pages.forgot_password_url}?login={login}"


def test_the_refusal_names_the_teleservice_and_what_to_do(settings, spec, admin_gw, make_adherent):
    company = people.adherent_of(admin_gw, make_adherent())
    _, login = people.create_user(admin_gw, company, "compte-adherent", ("utilisateur",))
    result = Browser(settings.keycloak_url, settings.realm).login(
        "teledeclaration", redirect_uri(spec, "teledeclaration"), login, people.PASSWORD)
    text = visible_text(result.page)
    assert result.code is None and result.status == 403, text[:400]
    assert "Accès refusé : ce login n'est pas autorisé pour Télédéclaration." in text, text[:400]
    assert "demandez à la personne déléguée de votre entreprise" in text
    assert "{0}" not in text and "cimrAccessDenied" not in text


def test_a_delegate_whose_subscription_awaits_approval_is_told_so(settings, spec, service_gw, services):
    from provisioner.subscriptions import submit_subscription
    from devstack.builders import DELEGATE_PASSWORD, subscription_form

    form = subscription_form()
    submit_subscription(service_gw, services, form)  # pending: the delegate's account waits, disabled
    page = Browser(settings.keycloak_url, settings.realm).login(
        "portal", redirect_uri(spec, "portal"), form.company.numero, DELEGATE_PASSWORD).page
    text = visible_text(page)
    assert "Ce compte de personne déléguée n'est pas actif" in text, text[:500]
    assert "activé dès sa validation par la CIMR, sous 48 heures" in text
    assert "contactez votre administrateur" not in text and "Seule la personne déléguée" not in text


def test_a_disabled_teleservice_user_reads_its_own_sentence_only(settings, spec, admin_gw, make_adherent):
    """A user who left, or whose access a review revoked: not the paragraph written for a delegate awaiting approval."""
    company = people.adherent_of(admin_gw, make_adherent())
    _, login = people.create_user(admin_gw, company, "compte-adherent", ("utilisateur",), enabled=False)
    page = Browser(settings.keycloak_url, settings.realm).login(
        "compte-adherent", redirect_uri(spec, "compte-adherent"), login, people.PASSWORD).page
    text = visible_text(page)
    assert "Ce login est désactivé. Seule la personne déléguée de votre entreprise peut le réactiver" in text, \
        text[:500]
    assert "48 heures" not in text and "abonnement" not in text.lower()


def test_the_portals_reset_page_starts_with_the_login_typed_at_keycloak(portal):
    client = portal.client()
    page = client.get("/mot-de-passe-oublie/?login=decl.tazi").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="login"[^>]*value="decl.tazi"', page), page[:2000]
    hostile = client.get('/mot-de-passe-oublie/?login="><script>alert(1)</script>').get_data(as_text=True)
    assert "<script>alert(1)" not in hostile  # escaped, never echoed as markup


# --- in Chromium: screenshots and axe at two widths -----------------------------------------------------------

@pytest.fixture(scope="module")
def checks():
    return Checks()


@pytest.mark.browser
def test_the_login_pages_in_chromium(browser, settings, spec, admin_gw, make_adherent, checks):  # noqa: F811
    company = people.adherent_of(admin_gw, make_adherent())
    _, other = people.create_user(admin_gw, company, "compte-adherent", ("utilisateur",))
    renew_id, renew = people.create_user(admin_gw, company, "teledeclaration", ("formulaire-saisie",))
    admin_gw.update_user(renew_id, {"requiredActions": ["UPDATE_PASSWORD"]})
    _, validator = people.create_user(admin_gw, company, "easypaiement", ("validateur",))

    def visit(width: int, client_id: str, login: str | None = None, password: str = people.PASSWORD):
        context = browser.new_context(locale="fr-FR", viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(auth_url(settings, spec, client_id))
        if login:
            page.fill("#username", login)
            page.fill("#password", password)
            page.click("#kc-login")
            page.wait_for_load_state()
        return context, page

    def fits(page, width: int, name: str) -> None:
        assert page_width(page) <= width, f"{name}: the page is {page_width(page)} px wide in a {width} px window"

    for width in WIDTHS:
        shots: list[tuple[str, object]] = []
        context, page = visit(width, "teledeclaration")
        assert page.locator("label[for=username]").inner_text().strip() == "N° d'adhérent ou identifiant"
        shots.append(("login", page))
        context2, page2 = visit(width, "teledeclaration", "inconnu" + uuid.uuid4().hex[:6], "Mauvais1")
        assert "incorrect" in page2.inner_text("main")
        shots.append(("login-error", page2))
        context3, page3 = visit(width, "teledeclaration", other)
        assert "n'est pas autorisé pour Télédéclaration" in page3.inner_text("main")
        shots.append(("refused", page3))
        context4, page4 = visit(width, "teledeclaration", renew)
        assert page4.locator("#password-new").count() == 1, page4.inner_text("main")[:300]
        # the forced change shows the rule the portal shows everywhere
        assert "De 5 à 10 caractères, lettres et chiffres uniquement" in page4.inner_text("#cimr-password-rule")
        shots.append(("password-update", page4))
        context5, page5 = visit(width, "easypaiement", validator)
        assert page5.locator("#totpSecret").count() == 1, page5.inner_text("main")[:300]
        shots.append(("second-factor-setup", page5))
        for name, shown in shots:
            checks.page(shown, f"login-theme-{name}-{width}")
            fits(shown, width, name)
        for c in (context, context2, context3, context4):
            c.close()
        if width == WIDTHS[-1]:  # enrol, then the code page of the next login
            AUTHENTICATORS.enrol(validator, page5.input_value("#totpSecret"))
            page5.fill("#totp", AUTHENTICATORS.code(validator))
            page5.fill("#userLabel", "Téléphone")
            page5.click("#saveTOTPBtn")
            page5.wait_for_load_state()
        context5.close()
    for width in WIDTHS:
        context, page = visit(width, "easypaiement", validator)
        assert page.locator("#kc-otp-login-form").count() == 1, page.inner_text("main")[:300]
        # where the code comes from: the authenticator app of the person's phone
        assert "application d'authentification de votre téléphone" in page.locator("label[for=otp]").inner_text()
        checks.page(page, f"login-theme-second-factor-code-{width}")
        fits(page, width, "second-factor-code")
        context.close()
    assert not checks.violations, checks.violations


@pytest.mark.browser
def test_on_a_phone_e_liquidation_is_never_cut_at_its_hyphen(browser, settings, spec, realm):  # noqa: F811
    context = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(auth_url(settings, spec, "eliquidation"))
    # On how many lines the name is drawn (a range over its text: one rectangle per line); -1: not written whole.
    lines = page.evaluate("""() => { const h = document.getElementById('kc-page-title');
        const walker = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const at = n.textContent.search(/e.liquidation@/);
          if (at >= 0) { const r = document.createRange(); r.setStart(n, at); r.setEnd(n, at + 14);
                         return r.getClientRects().length; } }
        return -1; }""")
    page.screenshot(path=str(SHOTS / "login-theme-eliquidation-title-375.png"))
    context.close()
    assert lines == 1, lines
