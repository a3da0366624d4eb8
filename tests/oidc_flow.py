"""A browser-flow login over plain HTTP (form posts, cookies kept), for tests of Keycloak's flows."""

from __future__ import annotations

import base64
import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from devstack.logins import pkce_pair
from devstack.totp import answer_second_factor


@dataclass
class LoginResult:
    code: str | None
    page: str  # the last HTML page Keycloak showed (error or login form)
    status: int
    verifier: str = ""


class Browser:
    """Keeps Keycloak's cookies across logins, like one browser would (SSO)."""

    def __init__(self, keycloak_url: str, realm: str):
        self.base = f"{keycloak_url}/realms/{realm}/protocol/openid-connect"
        self.session = requests.Session()
        self.username: str | None = None  # who logged in last (whose phone answers a step-up)

    def login(self, client_id: str, redirect_uri: str, username: str | None = None,
              password: str | None = None, pkce: bool = True, second_factor: bool = True,
              **extra: str) -> LoginResult:
        """Start an authorization-code (+ PKCE) request; post the form if one is shown, then (``second_factor``)
        Keycloak's TOTP setup or OTP page as the account's owner would (devstack/totp.py). ``extra``: more
        parameters of the request (``prompt="none"``, ``scope=...``, ``acr_values=...``)."""
        verifier, challenge = pkce_pair()
        params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                  "scope": "openid", "state": secrets.token_hex(8)}
        if pkce:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        params.update(extra)
        resp = self.session.get(f"{self.base}/auth?{urlencode(params)}", allow_redirects=False)
        self._trust_loopback_cookies()
        if resp.status_code == 200 and username is not None and 'id="kc-form-login"' in resp.text:
            action = html.unescape(re.search(r'action="([^"]+)"', resp.text).group(1))
            resp = self.session.post(action, data={"username": username, "password": password,
                                                   "credentialId": ""}, allow_redirects=False)
        self._trust_loopback_cookies()
        while resp.status_code in (302, 303) and "/login-actions/" in resp.headers.get("Location", ""):
            resp = self.session.get(resp.headers["Location"], allow_redirects=False)  # e.g. a required action
        self.username = username or self.username
        if second_factor and self.username:
            resp = answer_second_factor(self.session, resp, self.username)
        location = resp.headers.get("Location", "")
        if resp.status_code in (302, 303) and location.startswith(redirect_uri):
            query = parse_qs(urlparse(location).query)
            return LoginResult(query.get("code", [None])[0], query.get("error", [""])[0], resp.status_code, verifier)
        return LoginResult(None, resp.text, resp.status_code, verifier)

    def _trust_loopback_cookies(self) -> None:
        # Keycloak marks its cookies Secure; browsers send them to http://127.0.0.1 (a secure context),
        # requests does not, so do what the browser does.
        for cookie in self.session.cookies:
            cookie.secure = False

    def exchange(self, client_id: str, secret: str | None, redirect_uri: str, code: str, verifier: str) -> dict:
        """Redeem a code (a public client passes ``secret=None``)."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": client_id, "code_verifier": verifier}
        if secret is not None:
            data["client_secret"] = secret
        return requests.post(f"{self.base}/token", data=data).json()

    def refresh(self, client_id: str, secret: str, refresh_token: str) -> requests.Response:
        return requests.post(f"{self.base}/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
            "client_secret": secret})


# A public client with direct grants, created by the `password_grant_client` fixture for the modules that need
# Keycloak's verdict on a password outside every flow of ours (the realm's own admin-cli is closed).
PASSWORD_CLIENT = "tests-password-grant"


def password_login(settings, username: str, password: str, totp: str | None = None) -> requests.Response:
    """A password grant on the tests' own client (``password_grant_client`` must be in use)."""
    data = {"grant_type": "password", "client_id": PASSWORD_CLIENT, "username": username, "password": password}
    return requests.post(f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
                         data=data | ({"otp": totp, "totp": totp} if totp else {}), timeout=30)


def password_token(settings, username: str, password: str) -> str:
    """The access token of a password grant on the tests' own client; fails the test when refused."""
    resp = password_login(settings, username, password)
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def redirect_uri(spec, client_id: str) -> str:
    """The client's redirect URI as realm/ declares it (its first one)."""
    client = spec.client(client_id)
    return client.url + client.redirect_paths[0]


def direct_grant(keycloak_url: str, realm: str, client_id: str, secret: str, username: str,
                 password: str) -> requests.Response:
    return requests.post(f"{keycloak_url}/realms/{realm}/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": client_id, "client_secret": secret,
        "username": username, "password": password, "scope": "openid"})


def visible_text(page: str) -> str:
    """The text a person would read on a Keycloak page (for assertion messages)."""
    text = re.sub(r"<(script|style).*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))).strip()


def decode_unverified(jwt: str) -> dict:
    """A JWT's payload, for asserting on claims (signature checks belong to the applications)."""
    import json

    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
