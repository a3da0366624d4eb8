"""A forgotten password never ends in a dead end, in Chromium: a delegate typing its numéro is told at once that its
reset is the signed letter, and led to it; a user who reset its password is led back to its teleservice; a
teleservice user who tries the portal's « Se connecter » is led to the teleservices. Screenshots:
test-output/screenshots/reset-*.png."""

from __future__ import annotations

import re

import pytest

from devstack.builders import USER_PASSWORD, make_user
from provisioner.tenancy import Actor
from tests.browser_support import Checks, browser, keycloak_login  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def checks():
    return Checks()


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 800})
    yield context.new_page()
    context.close()


def test_a_delegate_typing_its_numero_is_told_at_step_one_its_reset_is_the_signed_letter(page, portal, adherent,
                                                                                          checks):
    page.goto(portal.url + "/mot-de-passe-oublie/")
    page.fill("#login", adherent)
    page.get_by_role("button", name="Continuer").click()
    assert page.url.endswith("/mot-de-passe-oublie/")  # no secret questions it never chose
    assert "numéro d'adhérent" in page.inner_text("#login-error") and "lettre signée" in page.inner_text("#login-error")
    checks.page(page, "reset-delegate-numero-375")
    page.locator("#by-letter").get_by_role("link", name="La lettre de réinitialisation").click()
    assert "Réinitialisation du mot de passe de la personne déléguée" in page.inner_text("main h1")
    assert not checks.violations, checks.violations


def test_after_a_reset_the_user_is_led_back_to_its_teleservice(page, portal, adherent, service_gw, services, checks):
    user = make_user(service_gw, services, Actor.delegate(adherent), adherent, "compte-adherent")
    page.goto(portal.url + "/mot-de-passe-oublie/")
    page.fill("#login", user.login)
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Ville de naissance de votre père ?").fill("fes")
    page.get_by_label("Nom de votre premier animal de compagnie ?").fill("mimi")
    page.get_by_role("button", name="Vérifier mes réponses").click()
    page.fill("#password", "Neuf2026")
    page.fill("#password_confirm", "Neuf2026")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_url("**/mot-de-passe-oublie/termine")
    checks.page(page, "reset-done-375")
    onward = page.locator("main").get_by_role("link", name=re.compile("^Se connecter à"))
    assert onward.all_inner_texts() == ["Se connecter à Compte Adhérent"]
    assert onward.get_attribute("href") == services.catalogue["compte-adherent"].url
    assert "Connectez-vous maintenant à Compte Adhérent" in page.inner_text("main")
    assert not checks.violations, checks.violations


def test_a_teleservice_user_at_the_portals_door_is_led_to_the_teleservices(page, portal, adherent, service_gw,
                                                                             services, checks):
    user = make_user(service_gw, services, Actor.delegate(adherent), adherent, "eliquidation")
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Se connecter", exact=True).first.click()
    keycloak_login(page, user.login, USER_PASSWORD)
    page.wait_for_selector("#password-new")  # the password its delegate gave: changed at the first login
    page.fill("#password-new", "Mien2026")
    page.fill("#password-confirm", "Mien2026")
    page.click("#kc-submit")
    page.wait_for_url(re.compile(re.escape(portal.url) + r"/auth/callback.*"))
    checks.page(page, "reset-portal-door-teleservice-user-375")
    links = page.locator("main").get_by_role("link", name=re.compile("^Se connecter à"))
    assert links.all_inner_texts() == [f"Se connecter à {t.name}" for t in services.catalogue]
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [t.url for t in services.catalogue]
    assert page.get_by_role("link", name="Fermer la session").count() == 1
    assert not checks.violations, checks.violations
