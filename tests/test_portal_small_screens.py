"""Every page of a delegate and of an agent, in Chromium at a phone's width (375 px) and a desktop's (1280 px): no
page wider than its window (tables scroll inside their own region, long e-mail addresses wrap), the content starts
without a screenful of menus, and axe finds nothing serious. Screenshots: test-output/screenshots/small-*.png."""

from __future__ import annotations

from dataclasses import replace

import pytest

from provisioner.rules import Access
from provisioner.tenancy import Actor
from tests.browser_support import SERIOUS, Checks, browser, page_width, portal_login  # noqa: F401 (fixture)
from tests.portal_support import STAFF_PASSWORD
from tests.provisioning import DELEGATE_PASSWORD, make_user

pytestmark = pytest.mark.browser
# What sticks out of the window, outside the tables' own scrolling regions (to say which element to fix).
OVERFLOWING = """() => { const w = document.documentElement.clientWidth;
  const clipped = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
  return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1
    && !clipped(e)).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' '
    + Math.round(e.getBoundingClientRect().right)); }"""
LONG_EMAIL = "responsable.administration.ressources.humaines@atlas-textile-et-confection.ma"


@pytest.fixture(scope="module")
def company(make_adherent, service_gw, services, agent):
    n = make_adherent()
    me = Actor.delegate(n)
    users = [make_user(service_gw, services, me, n, "teledeclaration", access=Access(
                 "teledeclaration", ("fichier-preetabli", "formulaire-saisie"), user_type="interne")),
             make_user(service_gw, services, me, n, "easypaiement", ("ordonnateur",)),
             make_user(service_gw, services, me, n, "compte-adherent")]
    from provisioner.adherents import change_delegate_email
    change_delegate_email(service_gw, services, agent, n, LONG_EMAIL)  # the agent's page shows it
    # The agent's pending list with what makes it wide: no paper yet, paper received, a long company name.
    from provisioner.subscriptions import receive_paper, submit_subscription
    from tests.provisioning import subscription_form
    submit_subscription(service_gw, services, subscription_form())
    received = submit_subscription(service_gw, services, replace(subscription_form(), company=replace(
        subscription_form().company, raison_sociale="Société Marocaine Interprofessionnelle de Confection et de "
                                                     "Distribution Textile SARL")))
    receive_paper(services, agent, received.id)
    return n, users


@pytest.mark.parametrize("width", [375, 1280])
def test_no_page_is_wider_than_the_window(browser, portal, staff, company, width):  # noqa: F811
    n, users = company
    checks = Checks(impacts=SERIOUS)
    wide: dict[str, int] = {}
    late: dict[str, float] = {}

    def visit(page, path: str, name: str) -> None:
        response = page.goto(portal.url + path)
        page.wait_for_load_state()
        assert response.ok, f"{path}: {response.status}"
        checks.page(page, f"small-{name}-{width}")
        if page_width(page) > width:
            wide[path] = (page_width(page), page.evaluate(OVERFLOWING))
        top = page.locator("main h1").first.bounding_box()["y"]
        if width < 500 and top > 420:  # header, space menu and tabs: at most about half a phone's screen
            late[path] = top

    for who, password, paths in (
            (n, DELEGATE_PASSWORD, ["/delegue/", "/delegue/t/teledeclaration-interne", "/delegue/t/easypaiement",
                                    f"/delegue/utilisateurs/{users[0].login}", "/delegue/journal",
                                    "/delegue/import", "/delegue/parametres"]),
            (staff["agent"], STAFF_PASSWORD, ["/agent/", f"/agent/adherents/{n}"])):
        context = browser.new_context(locale="fr-FR", viewport={"width": width, "height": 800})
        page = context.new_page()
        portal_login(page, portal, who, password)
        for path in paths:
            visit(page, path, path.strip("/").replace("/", "-") or "home")
        context.close()
    assert not wide, f"pages wider than {width} px: {wide}"
    assert not late, f"content starting too low at {width} px: {late}"
    assert not checks.violations, checks.violations
