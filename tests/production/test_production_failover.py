"""A Keycloak node killed (SIGKILL) under a delegate working in the portal: the proxy sends everything to the
other node, the sessions hold, nothing written is lost, a retried write makes no duplicate.

The delegate works through the cluster's coordinator (node 1 when it started first), the worst node to lose: Keycloak's split-brain guard
(the "Keycloak cluster health check" of /health/ready) keeps the survivor not ready until the dead coordinator's
entry in the jdbc-ping table is stale — about a minute in 26.7.0 (docs/operations.md). Meanwhile the portal
answers its French 503 page; the test bounds that window and measures it.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

from tests.portal_support import text
from tests.production.conftest import unique
from tests.production.proxy_login import PinnedBrowser
from tests.provisioning import DELEGATE_PASSWORD


OUTAGE_BOUND = 150  # seconds: Keycloak's coordinator-loss window (~60 s) with room for a loaded machine


def user_form(login: str) -> dict:
    return {"login": login, "civilite": "M", "nom": "El Idrissi", "prenom": "Youssef", "email": f"{login}@atlas.ma",
            "fonction": "Comptable", "telephone": "+212 600 00 00 00", "password": "User2026",
            "password_confirm": "User2026", "question1": "Ville de naissance de votre père ?", "answer1": "Fès",
            "question2": "Nom de votre premier animal de compagnie ?", "answer2": "Mimi"}


def csrf(browser: PinnedBrowser, url: str) -> str:
    page = browser.session.get(url, timeout=30)
    assert page.status_code == 200, (page.status_code, page.url)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def portal_login(stack, browser: PinnedBrowser, username: str, password: str) -> None:
    """Log in to the portal (gunicorn) through Keycloak behind the proxy, like a browser."""
    start = browser.session.get(f"{stack.portal_url}/auth/login", allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text[:300]
    callback = browser.login(start.headers["Location"], username, password)
    assert urlparse(callback).path == "/auth/callback" and "code" in parse_qs(urlparse(callback).query), callback
    done = browser.session.get(callback, allow_redirects=False, timeout=60)
    assert done.status_code == 302, done.text[:500]


def test_a_delegate_keeps_working_when_its_node_is_killed_mid_session(both_nodes, service_gw, make_adherent):
    stack = both_nodes
    n = make_adherent()
    victim = stack.coordinator()
    other = f"kc{2 - victim}"
    browser = PinnedBrowser(stack.public_url, node=victim + 1)
    portal_login(stack, browser, n, DELEGATE_PASSWORD)
    assert browser.nodes_since(0) == {f"kc{victim + 1}"}, browser.served_by
    new_page = f"{stack.portal_url}/delegue/t/compte-adherent/nouveau"
    first = unique("avant.")
    created = browser.session.post(new_page, data={"csrf_token": csrf(browser, new_page), **user_form(first)},
                                   allow_redirects=False, timeout=60)
    assert created.status_code == 302, text_of(created)

    killed = time.monotonic()
    stack.kill_node(victim)  # SIGKILL, mid-session: its JVM gets no chance to hand anything over
    assert not stack.node_ready(victim)
    unavailable: list[float] = []  # when the delegate met a 503 (the French page), seconds after the kill

    def served(action):
        """The delegate's action, tried again like a person would while the portal answers its 503 page (never
        a 500, never the login page), within OUTAGE_BOUND seconds of the kill."""
        while True:
            resp = action()
            if resp.status_code != 503 or time.monotonic() - killed > OUTAGE_BOUND:
                return resp
            if "/realms/" not in resp.url:  # the portal's page (the proxy's own 503 is for Keycloak's pages)
                assert "indisponible" in text_of(resp), text_of(resp)[:300]
            unavailable.append(time.monotonic() - killed)
            time.sleep(2)

    def post_form(login: str):
        def action():
            page = browser.session.get(new_page, timeout=60)
            if page.status_code != 200:
                return page
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            return browser.session.post(new_page, data={"csrf_token": token, **user_form(login)},
                                        allow_redirects=False, timeout=60)
        return served(action)

    # The portal session holds and the user created just before is there (the portal now reaches the other node).
    listing = served(lambda: browser.session.get(f"{stack.portal_url}/delegue/t/compte-adherent",
                                                 allow_redirects=False, timeout=60))
    assert listing.status_code == 200 and first in listing.text, (listing.status_code, text_of(listing)[:500])
    # The delegate's form sent again (a double click, a retry after a timeout): refused, no second user.
    again = post_form(first)
    assert again.status_code == 422 and "déjà utilisé" in text_of(again), text_of(again)[:500]
    assert len([u for u in service_gw.search_users(first) if u.username == first]) == 1
    # Writes go on through the other node.
    second = unique("apres.")
    created = post_form(second)
    assert created.status_code == 302, text_of(created)[:500]
    assert service_gw.user_by_username(second) is not None

    # Keycloak's own session (its SSO cookie, set by the dead node) is honoured by the other: no login form.
    start = served(lambda: browser.session.get(f"{stack.portal_url}/auth/login", allow_redirects=False, timeout=30))
    mark = len(browser.served_by)
    sso = served(lambda: browser.session.get(start.headers["Location"], allow_redirects=False, timeout=30))
    assert sso.status_code == 302 and "code=" in sso.headers["Location"], (sso.status_code, sso.text[:300])
    assert browser.nodes_since(mark) == {other}, browser.served_by[mark:]
    outage = f"{unavailable[0]:.0f}-{unavailable[-1]:.0f}s after the kill" if unavailable else "never"
    print(f"\nnode {victim + 1} (coordinator) killed: the portal answered its 503 page {len(unavailable)} times "
          f"({outage}), then {other} served the same sessions")


def text_of(resp) -> str:
    class _R:  # tests.portal_support.text takes a Flask response
        def get_data(self, as_text=True):
            return resp.text
    return text(_R())
