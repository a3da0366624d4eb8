"""Login through Keycloak, the callback that opens the portal session, RP-initiated logout."""

from __future__ import annotations

import logging

from authlib.integrations.base_client.errors import OAuthError
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from portal.auth import HOME, end_session_url, identity_from_token, keycloak
from portal.security import safe_next
from portal.services import core_services
from portal.sessions import purge_expired

bp = Blueprint("auth", __name__, url_prefix="/auth")
log = logging.getLogger(__name__)


def redirect_uri() -> str:
    return current_app.config["SETTINGS"].portal_url + "/auth/callback"


@bp.get("/login")
def login():
    session["next"] = safe_next(request.args.get("next"), "")
    return keycloak().authorize_redirect(redirect_uri(), ui_locales=request.args.get("lang") or
                                             session.get("lang") or "fr")


@bp.get("/callback")
def callback():
    if request.args.get("error"):
        return render_template("auth_error.html", error=request.args.get("error")), 401
    try:
        token = keycloak().authorize_access_token()
    except OAuthError as exc:
        log.warning("login failed at the code exchange", extra={"error": exc.error})
        return render_template("auth_error.html", error="state"), 400
    ident = identity_from_token(token)
    next_url = session.pop("next", "")
    lang = session.get("lang")
    session.clear()
    session.regenerate()
    if lang:
        session["lang"] = lang
    session["id_token"] = token.get("id_token")
    if not ident["roles"]:
        # A teleservice user: Keycloak knows them, the portal has nothing for them. End their SSO too.
        log.warning("login refused: no portal role", extra={"user": ident["username"]})
        return render_template("auth_error.html", error="no_role", logout_url=end_session_url(),
                               teleservices=[t for t in core_services().catalogue if t.url]), 403
    session["user"] = ident
    purge_expired(current_app.extensions["cimr"].engine)  # housekeeping, once per login
    session["tokens"] = {k: token.get(k) for k in ("access_token", "refresh_token", "expires_at")}
    session.permanent = True
    log.info("login", extra={"user": ident["username"], "roles": ident["roles"], "adherent": ident["adherent"]})
    return redirect(next_url or url_for(HOME[ident["roles"][0]]))


@bp.post("/logout")
def logout():
    url = end_session_url()
    log.info("logout", extra={"user": (session.get("user") or {}).get("username")})
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url)
