"""Logins through Keycloak's pages as a browser makes them (form posts, cookies, the TOTP pages answered as the
account's owner would: devstack/totp.py), for the tests and the benchmarks.

``keycloak_login`` follows the login page once. ``PinnedBrowser`` logs in through the production shape's proxy,
pinned to one Keycloak node by HAProxy's route cookie: HAProxy keeps a client on one node with the cookie
``KC_ROUTE`` (kc1, kc2) and names the node that answered in ``X-Served-By``; a dead node's clients go to the other
node. A browser session here records every answer's node.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import urlparse

import requests

from devstack.totp import answer_second_factor

PASSWORD_UPDATE_FORM = "kc-passwd-update-form"


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def keycloak_login(auth_url: str, username: str, password: str) -> str:
    """Follow Keycloak's login page like a browser (form post, cookies); returns the redirect to the callback."""
    s = requests.Session()
    resp = s.get(auth_url, allow_redirects=False)
    assert resp.status_code == 200 and 'id="kc-form-login"' in resp.text, resp.text[:500]
    action = html.unescape(re.search(r'action="([^"]+)"', resp.text).group(1))
    for cookie in s.cookies:
        cookie.secure = False
    resp = s.post(action, data={"username": username, "password": password, "credentialId": ""},
                  allow_redirects=False)
    # Delegates, agents and auditors have a second factor: enrolled at their first login, asked at every one.
    resp = answer_second_factor(s, resp, username)
    assert resp.status_code in (302, 303), f"login refused for {username}: {resp.status_code}"
    return resp.headers["Location"]


class LoopbackSession(requests.Session):
    """Sends the Secure cookies of http://127.0.0.1 back to it, as browsers do (loopback is a secure context);
    requests alone drops them (the portal's session cookie is always Secure)."""

    def send(self, request, **kwargs):
        resp = super().send(request, **kwargs)
        for cookie in self.cookies:
            if cookie.domain == "127.0.0.1":
                cookie.secure = False
        return resp


class PinnedBrowser:
    """A requests session through the proxy, pinned to node ``node`` (1-based) by the route cookie."""

    def __init__(self, public_url: str, node: int):
        self.session = LoopbackSession()
        # What a browser asks for when it follows a link or sends a form (Keycloak and the proxy answer HTML then).
        self.session.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        self.served_by: list[tuple[str, str]] = []  # (method path, node) of every Keycloak answer
        self.session.hooks["response"].append(self._record)
        host = urlparse(public_url).hostname
        # The cookie jar files a dotless host such as localhost under "localhost.local" (RFC 2965).
        self.session.cookies.set("KC_ROUTE", f"kc{node}", domain=host if "." in host else f"{host}.local", path="/")

    def _record(self, resp: requests.Response, *args, **kwargs) -> None:
        if "X-Served-By" in resp.headers:
            self.served_by.append((f"{resp.request.method} {urlparse(resp.url).path}", resp.headers["X-Served-By"]))

    def nodes_since(self, start: int) -> set[str]:
        return {node for _, node in self.served_by[start:]}

    def login(self, auth_url: str, username: str, password: str, new_password: str | None = None) -> str:
        """Go through Keycloak's login page (then its TOTP pages, then a forced password change with
        ``new_password``); returns the redirect Keycloak sends back to the application."""
        s = self.session
        resp = s.get(auth_url, allow_redirects=False)
        assert resp.status_code == 200 and 'id="kc-form-login"' in resp.text, resp.text[:500]
        action = html.unescape(re.search(r'action="([^"]+)"', resp.text).group(1))
        resp = s.post(action, data={"username": username, "password": password, "credentialId": ""},
                      allow_redirects=False)
        while resp.status_code in (302, 303) and "/login-actions/" in resp.headers.get("Location", ""):
            resp = s.get(resp.headers["Location"], allow_redirects=False)
        if resp.status_code == 200 and PASSWORD_UPDATE_FORM in resp.text and new_password:
            tag = re.search(r'<form\b[^>]*id="%s"[^>]*>' % PASSWORD_UPDATE_FORM, resp.text).group(0)
            action = html.unescape(re.search(r'action="([^"]+)"', tag).group(1))
            resp = s.post(action, data={"password-new": new_password, "password-confirm": new_password},
                          allow_redirects=False)
        resp = answer_second_factor(s, resp, username)
        assert resp.status_code in (302, 303), f"login refused for {username}: {resp.status_code} {resp.text[:300]}"
        return resp.headers["Location"]
