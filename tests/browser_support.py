"""Headless Chromium (Debian's, driven by Playwright) with screenshots and axe checks, for the browser tests."""

from __future__ import annotations

import re

import pytest

from devstack.totp import AUTHENTICATORS
from provisioner.settings import PROJECT_ROOT

SHOTS = PROJECT_ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


class Checks:
    """Screenshots and axe results collected over the run; violations are asserted at the end (all of them, so
    one run shows every page's problems)."""

    def __init__(self, impacts: tuple[str, ...] | None = None, tags: list[str] = AXE_TAGS):
        from axe_playwright_python.sync_playwright import Axe
        self.axe = Axe()
        self.impacts = impacts  # None: every violation counts; else only these impacts (e.g. SERIOUS)
        self.tags = tags
        self.violations: dict[str, list[str]] = {}
        SHOTS.mkdir(parents=True, exist_ok=True)

    def page(self, page, name: str, axe: bool = True) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        if axe:
            result = self.axe.run(page, options={"runOnly": {"type": "tag", "values": self.tags}})
            found = [f"{v['id']} [{v.get('impact')}]: {v['help']} ({len(v['nodes'])}× e.g. {v['nodes'][0]['target']})"
                     for v in result.response["violations"]
                     if self.impacts is None or v.get("impact") in self.impacts]
            if found:
                self.violations[name] = found


def keycloak_login(page, username: str, password: str) -> None:
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#kc-login")


def second_factor(page, portal, username: str) -> None:
    """Keycloak's TOTP pages, as the account's owner with their phone (devstack/totp.py): the setup page at the first
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
    page.get_by_role("link", name="Se connecter", exact=True).first.click()
    keycloak_login(page, username, password)
    second_factor(page, portal, username)  # delegates, agents and auditors have one
    page.wait_for_url(re.compile(re.escape(portal.url) + r"/(delegue|agent|auditeur)/.*"))


def page_width(page) -> int:
    """How wide the page is drawn: wider than the window means a sideways scroll of the whole page."""
    return page.evaluate("document.scrollingElement.scrollWidth")
