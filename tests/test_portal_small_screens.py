"""Every page of a delegate and of an agent, in Chromium at a phone's width (375 px) and a desktop's (1280 px): no
page wider than its window (tables scroll inside their own region, long e-mail addresses wrap), the content starts
without a screenful of menus, and axe finds nothing serious. Screenshots: test-output/screenshots/small-*.png."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD, make_user
from provisioner.context import Context
from provisioner.rules import Access
from provisioner.tenancy import Actor
from tests.browser_support import SERIOUS, SHOTS, Checks, browser, page_width, portal_login  # noqa: F401 (fixture)

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
    change_delegate_email(Context(service_gw, services, agent, n), LONG_EMAIL)  # the agent's page shows it
    # The agent's pending list with what makes it wide: no paper yet, paper received, a long company name.
    from provisioner.subscriptions import receive_paper, submit_subscription
    from devstack.builders import subscription_form
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
                                    "/delegue/import", "/delegue/revues/"]),
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


# The brochure's orange bar, in its order: « Informations générales », then Télédéclaration interne (2nd case) and
# externe (3rd), Compte Adhérent (4th), e-liquidation@ (5th), E@syPaiement's profiles; then the portal's own.
BROCHURE_BAR = ["Informations générales", "Télédéclaration interne", "Télédéclaration externe", "Compte Adhérent",
                "e-liquidation@", "E@syPaiement", "Revue des accès", "Journal", "Import CSV"]
TAB_PAGES = ["/delegue/", "/delegue/t/teledeclaration-interne", "/delegue/t/teledeclaration-externe",
             "/delegue/t/compte-adherent", "/delegue/t/eliquidation", "/delegue/t/easypaiement", "/delegue/revues/",
             "/delegue/journal", "/delegue/import"]


@pytest.fixture(scope="module")
def phone(browser, portal, company):  # noqa: F811
    context = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 800})
    page = context.new_page()
    portal_login(page, portal, company[0], DELEGATE_PASSWORD)
    yield page
    context.close()


def test_the_orange_bar_follows_the_brochure(phone, portal):
    phone.goto(portal.url + "/delegue/")
    assert [t.strip() for t in phone.locator("nav.tabs li a").all_inner_texts()] == BROCHURE_BAR


@pytest.mark.parametrize("path", TAB_PAGES)
def test_on_a_phone_the_current_tab_is_in_view(phone, portal, path):
    phone.goto(portal.url + path)
    phone.wait_for_load_state()
    current = phone.locator("nav.tabs [aria-current=page]")
    box = current.bounding_box()
    phone.screenshot(path=str(SHOTS / f"small-current-tab-{path.strip('/').replace('/', '-')}.png"))
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (current.inner_text(), box)


def test_on_a_phone_a_user_table_shows_every_column(phone, portal, company):
    n, users = company
    phone.goto(portal.url + "/delegue/t/easypaiement")
    row = phone.locator("main table tbody tr").first
    for label in ("Login", "Nom et prénom", "E-mail", "Pouvoirs", "État"):
        cell = row.locator(f'td[data-label="{label}"]')
        box = cell.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, (label, box)
    assert "Ordonnateur" in row.locator('td[data-label="Pouvoirs"]').inner_text()
    assert "Actif" in row.locator('td[data-label="État"]').inner_text()
    phone.screenshot(path=str(SHOTS / "small-users-table-375.png"), full_page=True)
