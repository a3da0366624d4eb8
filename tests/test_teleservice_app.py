"""The reference teleservice, driven through /login -> Keycloak -> /callback against the real Keycloak."""

from __future__ import annotations

import html
import re
import threading
from urllib.parse import urljoin

import pytest
import requests
from werkzeug.serving import make_server

from devstack.ports import free_port
from devstack.totp import answer_second_factor
from provisioner.context import Context
from provisioner.tenancy import Actor
from provisioner.teleservice_users import disable_user
from teleservice import create_app
from teleservice.config import TeleserviceConfig
from tests import people
from tests.oidc_flow import visible_text



class RunningApp:
    """One reference app on a free port; the session realm's client points at it while it runs."""

    def __init__(self, client_id: str, test_env: dict, admin_gw):
        self.config = TeleserviceConfig.from_env(client_id, env=test_env,
                                                 base_url=f"http://127.0.0.1:{free_port()}")
        self.base = self.config.base_url
        self.app = create_app(self.config)
        self.store = self.app.session_interface.store
        self.gw = admin_gw
        self.client_uuid = admin_gw.client_uuid(client_id)
        self.saved = admin_gw.get(f"/clients/{self.client_uuid}")
        attrs = dict(self.saved["attributes"], **{
            "backchannel.logout.url": self.base + "/backchannel-logout",
            "post.logout.redirect.uris": self.base + "/"})
        admin_gw.put(f"/clients/{self.client_uuid}", {**self.saved, "attributes": attrs,
                                                     "redirectUris": [self.base + "/callback"]})
        self.server = make_server("127.0.0.1", self.config.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.gw.put(f"/clients/{self.client_uuid}", self.saved)


@pytest.fixture(scope="module")
def apps(realm, test_env, admin_gw):
    running: dict[str, RunningApp] = {}

    def get(client_id: str) -> RunningApp:
        if client_id not in running:
            running[client_id] = RunningApp(client_id, test_env, admin_gw)
        return running[client_id]
    yield get
    for app in running.values():
        app.stop()


@pytest.fixture(scope="module")
def adherent(make_adherent, admin_gw):
    return people.adherent_of(admin_gw, make_adherent())


class Visitor:
    """A browser: follows redirects between the app and Keycloak, posts Keycloak's login form."""

    def __init__(self):
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        resp = self._trust(self.http.get(url, allow_redirects=False))
        while resp.status_code in (301, 302, 303):
            resp = self._trust(self.http.get(urljoin(resp.url, resp.headers["Location"]), allow_redirects=False))
        return resp

    def _trust(self, resp: requests.Response) -> requests.Response:
        for cookie in self.http.cookies:  # Keycloak's cookies are Secure; a browser sends them to loopback
            cookie.secure = False
        return resp

    def login(self, app: RunningApp, username: str, password: str = people.PASSWORD) -> requests.Response:
        page = self.get(app.base + "/login")
        if 'id="kc-form-login"' not in page.text:
            return page
        action = html.unescape(re.search(r'action="([^"]+)"', page.text).group(1))
        resp = self._trust(self.http.post(action, allow_redirects=False,
                                          data={"username": username, "password": password, "credentialId": ""}))
        resp = answer_second_factor(self.http, resp, username)  # a validator's TOTP (devstack/totp.py)
        if resp.status_code in (302, 303):
            return self.get(resp.headers["Location"])
        return resp

    def logout(self, app: RunningApp) -> requests.Response:
        page = self.get(app.base + "/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        resp = self.http.post(app.base + "/logout", data={"csrf": csrf}, allow_redirects=False)
        return self.get(resp.headers["Location"])


def test_login_shows_the_user_their_adherent_roles_type_and_categories(apps, adherent, admin_gw):
    app = apps("teledeclaration")
    _, login = people.create_user(admin_gw, adherent, "teledeclaration", ("fichier-preetabli", "formulaire-saisie"),
                                  user_type="externe", provider="Fiduciaire Atlas", categories=["cadres", "employes"])
    visitor = Visitor()
    page = visitor.login(app, login)
    text = visible_text(page.text)
    assert page.url == app.base + "/" and "Vous êtes connecté(e)" in text, text[:500]
    assert login in text and adherent.numero in text
    assert "fichier-preetabli" in text and "formulaire-saisie" in text
    assert "Externe (fiduciaire ou prestataire)" in text and "cadres, employes" in text

    # The cookie holds a random id only; the tokens stay on the server, indexed by Keycloak's sid.
    cookie = visitor.http.cookies.get("teledeclaration_session")
    assert cookie and "." not in cookie and len(cookie) < 64
    stored = app.store.load(cookie)
    assert stored["access_token"].startswith("eyJ") and stored["kc_sid"]


def test_every_page_says_what_the_browser_may_load_and_frame(apps, adherent, admin_gw):
    """What wapiti found missing on the reference teleservices (docs/security.md, "Scanners"): a content security
    policy allowing the page's own inline style only, no framing, no sniffing. The style's hash is the one the
    browser computes from the page it renders, else the page would lose its layout."""
    import base64
    import hashlib
    import re

    app = apps("compte-adherent")
    _, login = people.create_user(admin_gw, adherent, "compte-adherent", ("utilisateur",))
    visitor = Visitor()
    for page in (visitor.get(app.base + "/"), visitor.login(app, login)):
        headers = page.headers
        style = re.search(r"<style>(.*?)</style>", page.text, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in headers["Content-Security-Policy"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert "Strict-Transport-Security" not in headers  # plain HTTP here; https sets it


def test_easypaiement_shows_what_ordonnateur_and_validateur_may_do(apps, adherent, admin_gw):
    app = apps("easypaiement")
    _, login = people.create_user(admin_gw, adherent, "easypaiement", ("ordonnateur", "validateur"))
    text = visible_text(Visitor().login(app, login).text)
    assert "Ordonnateur" in text and "Saisir un ordre de paiement" in text
    assert "Validateur" in text and "Confirmer ou rejeter un ordre de paiement" in text


def test_easypaiement_shows_the_adherents_confirmations_and_whether_its_validators_suffice(apps, make_adherent,
                                                                                           admin_gw, service_gw,
                                                                                           services):
    from provisioner.adherents import set_easypaiement_confirmations
    from provisioner.tenancy import Actor

    app = apps("easypaiement")
    company = people.adherent_of(admin_gw, make_adherent())
    set_easypaiement_confirmations(Context(service_gw, services, Actor.delegate(company.numero), company.numero), 2)
    _, first = people.create_user(admin_gw, company, "easypaiement", ("ordonnateur", "validateur"))
    page = Visitor().login(app, first)
    assert re.search(r'id="confirmations">2<', page.text) and re.search(r'id="enough-validators">non / no<', page.text)
    assert "aucun paiement ne peut être confirmé" in visible_text(page.text)
    people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    page = Visitor().login(app, first)
    assert re.search(r'id="enough-validators">oui / yes<', page.text) and 'id="incomplete"' not in page.text


def test_an_ordonnateur_sees_only_the_ordonnateur_powers(apps, adherent, admin_gw):
    app = apps("easypaiement")
    _, login = people.create_user(admin_gw, adherent, "easypaiement", ("ordonnateur",))
    text = visible_text(Visitor().login(app, login).text)
    assert "Saisir un ordre de paiement" in text and "Confirmer ou rejeter" not in text


def test_a_user_of_another_teleservice_never_gets_an_app_session(apps, adherent, admin_gw):
    app = apps("teledeclaration")
    _, login = people.create_user(admin_gw, adherent, "compte-adherent", ("utilisateur",))
    visitor = Visitor()
    page = visitor.login(app, login)
    assert "Accès refusé" in visible_text(page.text)
    pending = app.store.load(visitor.http.cookies.get("teledeclaration_session"))  # only authlib's login state
    assert "user" not in pending and "access_token" not in pending


def test_back_channel_logout_ends_the_app_session_of_a_disabled_user(apps, adherent, admin_gw, service_gw,
                                                                   services):
    app = apps("teledeclaration")
    user_id, login = people.create_user(admin_gw, adherent, "teledeclaration", ("fichier-preetabli",),
                                        user_type="interne", categories=["cadres"])
    visitor = Visitor()
    assert "Vous êtes connecté(e)" in visible_text(visitor.login(app, login).text)
    disable_user(Context(service_gw, services, Actor.delegate(adherent.numero), adherent.numero), login)
    text = visible_text(visitor.get(app.base + "/").text)
    assert "Vous n'êtes pas connecté(e)" in text


def test_rp_initiated_logout_ends_both_the_app_and_keycloak_sessions(apps, adherent, admin_gw):
    app = apps("teledeclaration")
    _, login = people.create_user(admin_gw, adherent, "teledeclaration", ("formulaire-saisie",),
                                  user_type="interne", categories=["cadres"])
    visitor = Visitor()
    visitor.login(app, login)
    cookie = visitor.http.cookies.get("teledeclaration_session")
    back = visitor.logout(app)
    assert back.url.split("?")[0] == app.base + "/" and "Vous n'êtes pas connecté(e)" in visible_text(back.text)
    assert app.store.load(cookie) is None
    # No SSO session left: logging in again asks for the password.
    assert 'id="kc-form-login"' in visitor.get(app.base + "/login").text


def test_a_forged_logout_token_ends_nothing(apps, adherent, admin_gw):
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    app = apps("teledeclaration")
    _, login = people.create_user(admin_gw, adherent, "teledeclaration", ("fichier-preetabli",),
                                  user_type="interne", categories=["cadres"])
    visitor = Visitor()
    visitor.login(app, login)
    sid = app.store.load(visitor.http.cookies.get("teledeclaration_session"))["kc_sid"]
    forged = jwt.encode({"alg": "RS256"}, {"iss": app.config.issuer, "aud": "teledeclaration", "sid": sid,
                                           "iat": 1, "jti": "x", "events": {
                                               "http://schemas.openid.net/event/backchannel-logout": {}}},
                        RSAKey.generate_key(2048))
    resp = requests.post(app.base + "/backchannel-logout", data={"logout_token": forged})
    assert resp.status_code == 400
    assert "Vous êtes connecté(e)" in visible_text(visitor.get(app.base + "/").text)
