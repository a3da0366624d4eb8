"""The reference teleservice's pages, one blueprint for every teleservice: home, login and Keycloak's callback, an
E@syPaiement validator's payment confirmation (step-up), RP-initiated and back-channel logout.

Which teleservice an app is, and its OIDC client of the realm, are the current app's (``create_app``).
"""

from __future__ import annotations

import logging
import secrets

from authlib.integrations.flask_client import OAuthError
from flask import Blueprint, abort, current_app, redirect, render_template_string, request, session, url_for
from joserfc.jwk import KeySet

from provisioner.errors import Message
from teleservice import step_up_satisfied
from teleservice.config import TeleserviceConfig
from teleservice.powers import USER_TYPES, Identity, easypaiement_powers, role_labels
from teleservice.templates import PAGE
from teleservice.tokens import InvalidToken, validate_access_token, validate_logout_token

log = logging.getLogger("teleservice")

bp = Blueprint("teleservice", __name__)

LOGIN_FAILED = Message("La connexion a échoué. Veuillez réessayer.", "Login failed. Please try again.")
NOT_ALLOWED = Message("Accès refusé : ce compte n'est pas autorisé pour ce téléservice.",
                      "Access denied: this login is not allowed for this teleservice.")
STEP_UP_FAILED = Message("Paiement non confirmé : la confirmation demande votre second facteur (code de "
                         "l'application d'authentification).", "Payment not confirmed: confirming asks for your "
                         "second factor (authenticator app code).")
CONFIRMED = Message("Paiement confirmé.", "Payment confirmed.")
VALIDATEUR = "validateur"


def config() -> TeleserviceConfig:
    """The teleservice this app is."""
    return current_app.extensions["teleservice"]


def keycloak():
    """This app's OIDC client of the realm (server metadata and keys fetched on first use)."""
    return current_app.extensions["teleservice_oauth"].keycloak


def keys(force: bool = False) -> KeySet:
    return KeySet.import_key_set(keycloak().fetch_jwk_set(force=force))


def checked(validate, token: str) -> dict:
    cfg = config()
    try:
        return validate(token, keys(), cfg.issuer, cfg.client_id)
    except InvalidToken:  # keys may have rotated: fetch them once more
        return validate(token, keys(force=True), cfg.issuer, cfg.client_id)


def page(status: int = 200, **ctx):
    return render_template_string(PAGE, cfg=config(), **ctx), status


def current_user() -> Identity | None:
    return Identity(**session["user"]) if "user" in session else None


@bp.get("/")
def home():
    cfg, me = config(), current_user()
    descriptions = dict(cfg.role_descriptions)
    return page(me=me, labels=role_labels(descriptions, me.roles) if me else [],
                user_types=USER_TYPES, csrf=session.get("csrf"),
                powers=easypaiement_powers(descriptions, me.roles) if me and cfg.client_id == "easypaiement"
                else [])


@bp.get("/healthz")
def healthz():
    return "ok\n", 200, {"Content-Type": "text/plain"}  # the proxy's and compose's check: the process answers


@bp.get("/login")
def login():
    return keycloak().authorize_redirect(config().base_url + "/callback", ui_locales="fr")


def _confirm_page():
    """Confirm the payment if this session's token proves a fresh second factor; a proof serves once."""
    cfg, me = config(), current_user()
    if me is None:
        abort(401)
    if VALIDATEUR not in me.roles:
        abort(403)
    if not step_up_satisfied(session.get("token_claims") or {}, cfg.acr_second_factor, cfg.step_up_seconds):
        return None
    session["token_claims"] = {**session["token_claims"], "acr": None}  # the next payment asks again
    log.info("payment confirmed by %s (acr %s)", me.username, cfg.acr_second_factor)
    return page(message=CONFIRMED)


@bp.post("/paiements/confirmer")
def confirm_payment():
    """A validator confirms a payment: only with a second factor entered just now. Otherwise, back through
    Keycloak asking for it (acr_values), and the confirmation resumes at the callback."""
    if not session.get("csrf") or request.form.get("csrf") != session["csrf"]:
        abort(400)
    done = _confirm_page()
    if done is not None:
        return done
    session["pending_payment"] = True
    cfg = config()
    return keycloak().authorize_redirect(cfg.base_url + "/callback", ui_locales="fr",
                                         acr_values=cfg.acr_second_factor)


@bp.get("/paiements/confirmer")
def confirm_pending():
    """After the step-up: the token must carry the second factor's acr (Keycloak issues a lower one when the
    factor was not given: the relying party checks it, Keycloak does not refuse)."""
    if not session.pop("pending_payment", False):
        return redirect(url_for("teleservice.home"))
    return _confirm_page() or page(403, error=STEP_UP_FAILED)


@bp.get("/callback")
def callback():
    cfg = config()
    try:
        token = keycloak().authorize_access_token()  # ID token: signature, iss, aud, exp, nonce
        claims = checked(validate_access_token, token["access_token"])
    except (OAuthError, InvalidToken) as exc:
        log.warning("login refused for %s: %s", cfg.client_id, exc)
        return page(400, error=LOGIN_FAILED)
    me = Identity.from_claims({**token["userinfo"], **claims}, cfg.client_id)
    if not set(me.roles) & set(cfg.roles):  # Keycloak refuses these already; defence in depth
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
        return redirect(url_for("teleservice.confirm_pending"))
    return redirect(url_for("teleservice.home"))


@bp.post("/logout")
def logout():
    if not session.get("csrf") or request.form.get("csrf") != session["csrf"]:
        abort(400)
    id_token = session.get("id_token")
    session.clear()
    end = keycloak().create_logout_url(post_logout_redirect_uri=config().base_url + "/", id_token_hint=id_token)
    return redirect(end["url"])


@bp.post("/backchannel-logout")
def backchannel_logout():
    try:
        claims = checked(validate_logout_token, request.form.get("logout_token", ""))
    except InvalidToken as exc:
        log.warning("back-channel logout refused: %s", exc.reason)
        return {"error": "invalid_request"}, 400, {"Cache-Control": "no-store"}
    ended = current_app.session_interface.store.end_keycloak_session(claims.get("sid"), claims.get("sub"))
    log.info("back-channel logout: %d session(s) ended", ended)
    return "", 200, {"Cache-Control": "no-store"}
