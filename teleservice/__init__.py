"""Reference teleservice: one Flask app, configured per teleservice client, logging in through Keycloak.

Authorization code + PKCE via authlib; tokens validated (signature, issuer, audience/azp, expiry);
server-side sessions keyed by Keycloak ``sid``; RP-initiated and back-channel logout.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import time
from urllib.parse import urlparse

from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, Response, abort, redirect, render_template_string, request, session, url_for
from joserfc.jwk import KeySet

from provisioner.errors import Message
from teleservice.config import TeleserviceConfig
from teleservice.powers import USER_TYPES, Identity, easypaiement_powers, role_labels
from teleservice.sessions import ServerSessionInterface, SessionStore
from teleservice.templates import PAGE
from teleservice.tokens import InvalidToken, validate_access_token, validate_logout_token

log = logging.getLogger(__name__)

LOGIN_FAILED = Message("La connexion a échoué. Veuillez réessayer.", "Login failed. Please try again.")
NOT_ALLOWED = Message("Accès refusé : ce compte n'est pas autorisé pour ce téléservice.",
                      "Access denied: this login is not allowed for this teleservice.")
STEP_UP_FAILED = Message("Paiement non confirmé : la confirmation demande votre second facteur (code de "
                         "l'application d'authentification).", "Payment not confirmed: confirming asks for your "
                         "second factor (authenticator app code).")
CONFIRMED = Message("Paiement confirmé.", "Payment confirmed.")
VALIDATEUR = "validateur"


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
    """The reference app for one teleservice client."""
    app = Flask(__name__)
    app.config.update(SESSION_COOKIE_NAME=f"{config.client_id}_session",
                      SESSION_COOKIE_SECURE=config.base_url.startswith("https://"))
    app.session_interface = ServerSessionInterface(store or SessionStore(config.session_idle_seconds))
    app.extensions["teleservice"] = config
    app.after_request(security_headers(config))
    oauth = OAuth(app)
    kc = oauth.register("keycloak", client_id=config.client_id, client_secret=config.client_secret,
                        server_metadata_url=config.metadata_url,
                        client_kwargs={"scope": "openid", "code_challenge_method": "S256"})

    def keys(force: bool = False) -> KeySet:
        return KeySet.import_key_set(kc.fetch_jwk_set(force=force))

    def checked(validate, token: str) -> dict:
        try:
            return validate(token, keys(), config.issuer, config.client_id)
        except InvalidToken:  # keys may have rotated: fetch them once more
            return validate(token, keys(force=True), config.issuer, config.client_id)

    def page(status: int = 200, **ctx):
        return render_template_string(PAGE, cfg=config, **ctx), status

    @app.get("/")
    def home():
        me = Identity(**session["user"]) if "user" in session else None
        descriptions = dict(config.role_descriptions)
        return page(me=me, labels=role_labels(descriptions, me.roles) if me else [],
                    user_types=USER_TYPES, csrf=session.get("csrf"),
                    powers=easypaiement_powers(descriptions, me.roles) if me and config.client_id == "easypaiement"
                    else [])

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200, {"Content-Type": "text/plain"}  # the proxy's and compose's check: the process answers

    @app.get("/login")
    def login():
        return kc.authorize_redirect(config.base_url + "/callback", ui_locales="fr")

    def _confirm_page():
        """Confirm the payment if this session's token proves a fresh second factor; a proof serves once."""
        me = Identity(**session["user"]) if "user" in session else None
        if me is None:
            abort(401)
        if VALIDATEUR not in me.roles:
            abort(403)
        if not step_up_satisfied(session.get("token_claims") or {}, config.acr_second_factor,
                                 config.step_up_seconds):
            return None
        session["token_claims"] = {**session["token_claims"], "acr": None}  # the next payment asks again
        log.info("payment confirmed by %s (acr %s)", me.username, config.acr_second_factor)
        return page(message=CONFIRMED)

    @app.post("/paiements/confirmer")
    def confirm_payment():
        """A validator confirms a payment: only with a second factor entered just now. Otherwise, back through
        Keycloak asking for it (acr_values), and the confirmation resumes at the callback."""
        if not session.get("csrf") or request.form.get("csrf") != session["csrf"]:
            abort(400)
        done = _confirm_page()
        if done is not None:
            return done
        session["pending_payment"] = True
        return kc.authorize_redirect(config.base_url + "/callback", ui_locales="fr",
                                     acr_values=config.acr_second_factor)

    @app.get("/paiements/confirmer")
    def confirm_pending():
        """After the step-up: the token must carry the second factor's acr (Keycloak issues a lower one when the
        factor was not given: the relying party checks it, Keycloak does not refuse)."""
        if not session.pop("pending_payment", False):
            return redirect(url_for("home"))
        return _confirm_page() or page(403, error=STEP_UP_FAILED)

    @app.get("/callback")
    def callback():
        try:
            token = kc.authorize_access_token()  # ID token: signature, iss, aud, exp, nonce
            claims = checked(validate_access_token, token["access_token"])
        except (OAuthError, InvalidToken) as exc:
            log.warning("login refused for %s: %s", config.client_id, exc)
            return page(400, error=LOGIN_FAILED)
        me = Identity.from_claims({**token["userinfo"], **claims}, config.client_id)
        if not set(me.roles) & set(config.roles):  # Keycloak refuses these already; defence in depth
            return page(403, error=NOT_ALLOWED)
        pending = session.get("pending_payment") and session.get("user", {}).get("sub") == me.sub
        session.clear()
        session.regenerate()
        session.update(user=me.to_json(), kc_sid=token["userinfo"].get("sid"), id_token=token["id_token"],
                       access_token=token["access_token"], refresh_token=token.get("refresh_token"),
                       token_claims={"acr": claims.get("acr"), "iat": claims.get("iat")},
                       csrf=secrets.token_urlsafe(16))
        if pending:
            session["pending_payment"] = True
            return redirect(url_for("confirm_pending"))
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout():
        if not session.get("csrf") or request.form.get("csrf") != session["csrf"]:
            abort(400)
        id_token = session.get("id_token")
        session.clear()
        end = kc.create_logout_url(post_logout_redirect_uri=config.base_url + "/", id_token_hint=id_token)
        return redirect(end["url"])

    @app.post("/backchannel-logout")
    def backchannel_logout():
        try:
            claims = checked(validate_logout_token, request.form.get("logout_token", ""))
        except InvalidToken as exc:
            log.warning("back-channel logout refused: %s", exc.reason)
            return {"error": "invalid_request"}, 400, {"Cache-Control": "no-store"}
        ended = app.session_interface.store.end_keycloak_session(claims.get("sid"), claims.get("sub"))
        log.info("back-channel logout: %d session(s) ended", ended)
        return "", 200, {"Cache-Control": "no-store"}

    return app
