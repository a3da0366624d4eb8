"""PostgreSQL restarted under load: while it is down the portal answers 503 with its French page (never a 500,
never a hang), Keycloak's pages the proxy's French page (both nodes report not ready: no raw JSON, no English), and
everything recovers by itself once the database is back — same portal session, no restart; a delegate's create sent
during the outage and sent again after it makes one user."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

from devstack.builders import DELEGATE_PASSWORD
from devstack.logins import LoopbackSession, PinnedBrowser
from tests.production.conftest import unique
from tests.production.test_production_failover import csrf, portal_login, text_of, user_form

DOWN_FOR = 10  # seconds PostgreSQL stays down
WORKERS = 4


def test_the_portal_answers_503_in_french_while_postgresql_restarts_and_recovers(both_nodes, make_adherent,
                                                                                 service_gw):
    stack = both_nodes
    n = make_adherent()
    browser = PinnedBrowser(stack.public_url, node=1)
    portal_login(stack, browser, n, DELEGATE_PASSWORD)
    page = f"{stack.portal_url}/delegue/"
    assert browser.session.get(page, timeout=30).status_code == 200, "see test_production_cluster's delegation test"
    new_page = f"{stack.portal_url}/delegue/t/compte-adherent/nouveau"
    token = csrf(browser, new_page)
    login = unique("panne.")
    during: dict[str, requests.Response] = {}

    phase = {"now": "before"}
    seen: list[tuple[str, int | str]] = []
    stop = threading.Event()

    def load() -> None:
        s = LoopbackSession()
        s.cookies.update(browser.session.cookies)
        while not stop.is_set():
            began = phase["now"]
            try:
                resp = s.get(page, allow_redirects=False, timeout=30)
                seen.append(((began, phase["now"]), resp.status_code))
                if resp.status_code == 503:
                    seen.append(("page", text_of(resp)))
            except requests.RequestException as exc:
                seen.append(((began, phase["now"]), type(exc).__name__))
            time.sleep(0.2)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        phase["now"] = "down"
        stack.stop_postgres()  # on purpose: the supervisor leaves it down
        time.sleep(DOWN_FOR / 2)
        during["create"] = browser.session.post(new_page, data={"csrf_token": token, **user_form(login)},
                                                allow_redirects=False, timeout=60)
        during["keycloak"] = requests.get(f"{stack.public_url}/realms/{stack.realm}/account", timeout=30,
                                          headers={"Accept": "text/html"})
        time.sleep(DOWN_FOR / 2)
        phase["now"] = "restarted"
        stack.start_postgres()
        # Recovers by itself: the same session's page answers 200 again, without restarting anything.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if browser.session.get(page, allow_redirects=False, timeout=30).status_code == 200:
                break
            time.sleep(1)
        recovered = time.monotonic() - (deadline - 120)
        phase["now"] = "after"
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)

    answers = [(p, s) for p, s in seen if p != "page"]
    # Before: answered before PostgreSQL stopped; after: asked once the portal was back; down: the rest.
    by_phase = {"before": Counter(s for (b, e), s in answers if e == "before"),
                "down": Counter(s for (b, e), s in answers if e != "before" and b != "after"),
                "after": Counter(s for (b, e), s in answers if b == "after")}
    statuses = [s for _, s in answers]
    assert set(statuses) <= {200, 503}, by_phase  # no 500, no dropped connection, no login page
    assert set(by_phase["before"]) == {200}, by_phase
    assert 503 in by_phase["down"], by_phase
    pages = [s for p, s in seen if p == "page"]
    assert all("indisponible" in t and "réessayez" in t.lower() for t in pages), pages[:1]
    assert set(by_phase["after"]) == {200}, by_phase
    # Keycloak's nodes came back to health by themselves too (their pools reconnect).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(stack.node_ready(i) for i in range(2)):
        time.sleep(2)
    assert all(stack.node_ready(i) for i in range(2))
    # During the outage: the portal's French page for the create, the proxy's for Keycloak's own pages.
    assert during["create"].status_code == 503 and "indisponible" in text_of(during["create"])
    assert during["keycloak"].status_code == 503, during["keycloak"].text[:300]
    assert "Service momentanément indisponible" in text_of(during["keycloak"])
    # The delegate sends the create again: one user (Keycloak refuses a second one with that username anyway).
    again = browser.session.post(new_page, data={"csrf_token": csrf(browser, new_page), **user_form(login)},
                                 allow_redirects=False, timeout=60)
    assert again.status_code == 302, text_of(again)[:300]
    assert len([u for u in service_gw.search_users(login) if u.username == login]) == 1
    print(f"\nportal back {recovered:.0f}s after PostgreSQL's restart; "
          f"{statuses.count(503)} answers 503, {statuses.count(200)} answers 200")
