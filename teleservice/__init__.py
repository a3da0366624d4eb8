"""Reference teleservice: one Flask app, configured per teleservice client, logging in through Keycloak.

Authorization code + PKCE via authlib; tokens validated (signature, issuer, audience/azp, expiry);
server-side sessions keyed by Keycloak ``sid``; RP-initiated and back-channel logout.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from urllib.parse import urlparse

from authlib.integrations.flask_client import OAuth
from flask import Flask, Response

from teleservice.config import TeleserviceConfig
from teleservice.sessions import ServerSessionInterface, SessionStore
from teleservice.templates import PAGE


def step_up_satisfied(claims: dict, acr: str, max_age: int, now: float | None = None) -> bool:
    """The access token proves a second factor entered within ``max_age`` seconds: its ``acr`` is the second
    factor's level and it was issued that recently (Keycloak asks the factor again at each step-up request)."""
    issued = claims.get("iat") or 0
    return claims.get("acr") == acr and (now or time.time()) - issued <= max_age


def security_headers(config: TeleserviceConfig):
    """What every answer of the reference teleservice says to the browser: its page's own inline style only, forms
    posted to itself or to Keycloak (a logout ends there), never in a frame, HSTS over https."""
    style = re.search(r"<style>(.*?)</style>", PAGE, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    keycloak = "{0.scheme}://{0.netloc}".format(urlparse(config.issuer))
    csp = (f"default-src 'none'; style-src 'sha256-{digest}'; form-action 'self' {keycloak}; "
           "frame-ancestors 'none'; base-uri 'none'")

    def add(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = csp
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        if config.base_url.startswith("https://"):
            resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return resp
    return add


def create_app(config: TeleserviceConfig, store: SessionStore | None = None) -> Flask:
    """The reference app for one teleservice client: its session cookie and server-side sessions, its OIDC client
    of the realm, the security headers; the pages are teleservice/views.py's."""
    from teleservice.views import bp

    app = Flask(__name__)
    app.config.update(SESSION_COOKIE_NAME=f"{config.client_id}_session",
                      SESSION_COOKIE_SECURE=config.base_url.startswith("https://"))
    app.session_interface = ServerSessionInterface(store or SessionStore(config.session_idle_seconds))
    app.extensions["teleservice"] = config
    app.after_request(security_headers(config))
    oauth = OAuth(app)  # one per app: each app is its own client of the realm
    app.extensions["teleservice_oauth"] = oauth
    oauth.register("keycloak", client_id=config.client_id, client_secret=config.client_secret,
                   server_metadata_url=config.metadata_url,
                   client_kwargs={"scope": "openid", "code_challenge_method": "S256"})
    app.register_blueprint(bp)
    return app
