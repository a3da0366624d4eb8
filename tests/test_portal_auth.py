"""Portal login through Keycloak, spaces by role, logout, security headers, open redirects, 503 and recovery."""

from __future__ import annotations

import socket
import threading

import pytest

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD
from provisioner.settings import Settings
from tests.portal_support import csrf_token, login_client, text



def test_security_headers_on_every_page(portal):
    resp = portal.client().get("/")
    h = resp.headers
    assert "script-src 'self'" in h["Content-Security-Policy"] and "unsafe-inline" not in h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "same-origin"  # over https, Flask-WTF needs the Referer of our own forms
    assert h["X-Content-Type-Options"] == "nosniff"


def test_hsts_when_served_over_tls(test_env, realm):
    from portal import create_app
    app = create_app({"SETTINGS": Settings.from_env({**test_env, "PORTAL_URL": "https://portal.cimr.ma",
                                                     "PORTAL_SECRET_KEY": "x" * 32})})
    assert "max-age=" in app.test_client().get("/").headers["Strict-Transport-Security"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_no_open_redirect(portal, target):
    resp = portal.client().get("/langue/en", query_string={"next": target})
    assert resp.headers["Location"] == "/"


def test_anonymous_is_sent_to_login_then_back(portal):
    resp = portal.client().get("/delegue/journal")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/auth/login?next=/delegue/journal")


def test_login_goes_through_keycloak_with_pkce(portal):
    resp = portal.client().get("/auth/login")
    location = resp.headers["Location"]
    assert location.startswith(f"{portal.settings.keycloak_url}/realms/{portal.settings.realm}/")
    assert "code_challenge_method=S256" in location and "client_id=portal" in location


def test_session_cookie_holds_no_token(portal, make_adherent):
    numero = make_adherent()
    client = login_client(portal, numero, DELEGATE_PASSWORD)
    cookie = client.get_cookie("cimr_portal")
    assert cookie is not None and cookie.secure and cookie.http_only
    assert len(cookie.value) < 60 and "." not in cookie.value  # a random id, not a signed token or JWT


def test_delegate_lands_on_own_dashboard_and_is_refused_elsewhere(portal, make_adherent):
    numero = make_adherent()
    client = login_client(portal, numero, DELEGATE_PASSWORD)
    resp = client.get("/delegue/")
    assert resp.status_code == 200, text(resp)[:400]
    assert numero in text(resp)
    assert client.get("/agent/").status_code == 403
    assert client.get("/auditeur/").status_code == 403


def test_agent_and_auditor_spaces(portal, staff):
    agent = login_client(portal, staff["agent"], STAFF_PASSWORD)
    assert agent.get("/agent/").status_code == 200
    assert agent.get("/delegue/").status_code == 403
    auditor = login_client(portal, staff["auditor"], STAFF_PASSWORD)
    assert auditor.get("/auditeur/").status_code == 200
    assert auditor.get("/agent/").status_code == 403


def test_logout_ends_the_session_and_needs_csrf(portal, staff):
    client = login_client(portal, staff["agent"], STAFF_PASSWORD)
    assert client.post("/auth/logout").status_code == 400  # no CSRF token
    token = csrf_token(client, "/agent/")
    resp = client.post("/auth/logout", data={"csrf_token": token})
    assert resp.status_code == 302 and "/protocol/openid-connect/logout" in resp.headers["Location"]
    assert "id_token_hint=" in resp.headers["Location"]
    assert client.get("/agent/").status_code == 302  # back to login


class Relay:
    """A TCP relay to Keycloak that the test can cut and restore (Keycloak itself is never stopped)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.up = True
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_keycloak_unreachable_gives_503_then_recovers_without_restart(test_env, realm):
    from urllib.parse import urlparse

    from portal import create_app
    relay = Relay(urlparse(test_env["KEYCLOAK_URL"]).port)
    settings = Settings.from_env({**test_env, "KEYCLOAK_URL": f"http://127.0.0.1:{relay.port}"})
    client = create_app({"SETTINGS": settings}).test_client()
    relay.up = False
    resp = client.get("/auth/login")
    assert resp.status_code == 503 and "indisponible" in text(resp)
    assert client.get("/mot-de-passe-oublie/").status_code == 200  # pages without Keycloak still work
    relay.up = True
    resp = client.get("/auth/login")
    assert resp.status_code == 302 and f":{relay.port}/realms/" in resp.headers["Location"]
    relay.sock.close()


@pytest.mark.parametrize("lang, lang_attr, heading", [
    ("fr", 'lang="fr"', "Abonnement aux téléservices CIMR"),
    ("en", 'lang="en"', "CIMR teleservices subscription"),
])
def test_french_first_english_available(portal, lang, lang_attr, heading):
    client = portal.client()
    client.get(f"/langue/{lang}")
    page = client.get("/abonnement").get_data(as_text=True)
    assert f"<html {lang_attr}>" in page and heading in page


def test_french_by_default_even_for_an_english_browser_without_choice(portal):
    page = portal.client().get("/", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert '<html lang="fr">' in page


def test_a_teleservice_user_gets_no_portal_session_and_is_led_to_the_teleservices(portal, admin_gw, services):
    import uuid
    from urllib.parse import urlparse

    from devstack.logins import keycloak_login
    username = f"plain{uuid.uuid4().hex[:6]}"
    user_id = admin_gw.create_user({"username": username, "enabled": True, "email": f"{username}@example.ma",
                                    "firstName": "Plain", "lastName": "User",
                                    "credentials": [{"type": "password", "value": "Plain2026", "temporary": False}]})
    try:
        client = portal.client()
        callback = keycloak_login(client.get("/auth/login").headers["Location"], username, "Plain2026")
        resp = client.get(f"/auth/callback?{urlparse(callback).query}")
        assert resp.status_code == 403 and "Connectez-vous à votre téléservice, avec le même login" in text(resp)
        page = resp.get_data(as_text=True)
        for t in services.catalogue:  # a way onward: each teleservice, where its users log in
            assert f'href="{t.url}"' in page and f"Se connecter à {t.name}" in text(resp), t.client_id
        assert client.get("/delegue/").status_code == 302
    finally:
        admin_gw.delete_user(user_id)


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(test_env, realm):
    from flask import request

    from portal import create_app
    app = create_app({"SETTINGS": Settings.from_env({**test_env, "PORTAL_TRUSTED_PROXIES": "1"})})
    seen = {}

    @app.get("/_whoami")
    def whoami():
        seen["addr"], seen["secure"] = request.remote_addr, request.is_secure
        return "ok"
    app.test_client().get("/_whoami", headers={"X-Forwarded-For": "41.250.1.2", "X-Forwarded-Proto": "https"},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert seen == {"addr": "41.250.1.2", "secure": True}


def test_login_gives_a_new_session_id_and_stores_only_its_hash(portal, staff):
    from urllib.parse import urlparse

    from sqlalchemy import select

    from portal.sessions import portal_sessions
    from devstack.logins import keycloak_login
    client = portal.client()
    auth = client.get("/auth/login").headers["Location"]
    before = client.get_cookie("cimr_portal").value
    callback = keycloak_login(auth, staff["agent"], STAFF_PASSWORD)
    client.get(f"/auth/callback?{urlparse(callback).query}")
    after = client.get_cookie("cimr_portal").value
    assert after != before  # no session fixation
    with portal.app.extensions["cimr"].engine.connect() as conn:
        ids = {r.id_hash for r in conn.execute(select(portal_sessions.c.id_hash))}
    assert after not in ids and before not in ids and len(ids) >= 1


def test_expired_or_ended_sessions_are_refused(portal, staff):
    from datetime import datetime

    from sqlalchemy import update

    from portal.sessions import end_sessions, portal_sessions
    client = login_client(portal, staff["auditor"], STAFF_PASSWORD)
    engine = portal.app.extensions["cimr"].engine
    assert end_sessions(engine, username=staff["auditor"]) >= 1
    assert client.get("/auditeur/").status_code == 302
    client = login_client(portal, staff["auditor"], STAFF_PASSWORD)
    with engine.begin() as conn:
        conn.execute(update(portal_sessions).where(portal_sessions.c.username == staff["auditor"])
                     .values(expires_at=datetime(2000, 1, 1)))
    assert client.get("/auditeur/").status_code == 302


def test_concurrent_requests_of_one_session_refresh_once(portal, make_adherent):
    """Keycloak accepts each refresh token once and ends the client session when one is replayed. Two requests
    of one session due for a refresh at the same moment: the second, which read the session before the first
    saved, must take the first one's tokens, not replay the old refresh token (that logged the delegate out)."""
    from flask import session

    from portal.auth import access_token

    numero = make_adherent()
    client = login_client(portal, numero, DELEGATE_PASSWORD)
    cookie = {"Cookie": f"cimr_portal={client.get_cookie('cimr_portal').value}"}
    app = portal.app

    def expire() -> None:
        with app.test_request_context("/", headers=cookie):
            app.session_interface.refresh_value(session, "tokens", lambda t: {**t, "expires_at": 1})

    expire()
    with app.test_request_context("/", headers=cookie):  # the second request: read the session first ...
        stale = session["tokens"]
        with app.test_request_context("/", headers=cookie):  # ... the first one refreshes and saves
            first = access_token()
        assert first != stale["access_token"]
        assert access_token() == first
    expire()  # the refresh token chain is still alive: the next refresh works and the delegate stays in
    assert client.get("/delegue/").status_code == 200
    with app.test_request_context("/", headers=cookie):
        assert session["tokens"]["expires_at"] > 1 and session["tokens"]["access_token"] != first


def test_a_session_keycloak_ended_asks_to_log_in_again_instead_of_refusing(portal, make_adherent, admin_gw):
    from tests.portal_support import login_client
    from devstack.builders import DELEGATE_PASSWORD

    n = make_adherent()
    client = login_client(portal, n, DELEGATE_PASSWORD)
    assert client.get("/delegue/").status_code == 200
    admin_gw.logout_user(admin_gw.user_by_username(n).id)  # ended in Keycloak (say, from its console)
    ended = client.get("/delegue/")
    assert ended.status_code == 401 and "Session terminée" in ended.get_data(as_text=True)
    again = client.get("/delegue/")  # the portal forgot the dead session: straight to the login
    assert again.status_code == 302 and again.headers["Location"].startswith("/auth/login")
