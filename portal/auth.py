"""Login through Keycloak (authorization code + PKCE, client `portal`), RP-initiated logout, role checks.

Tokens stay in the server-side session; the browser only ever holds the session id.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request, session, url_for

from portal.security import safe_next
from portal.sessions import purge_expired

bp = Blueprint("auth", __name__, url_prefix="/auth")
PORTAL_ROLES = ("delegate", "agent", "auditor")
HOME = {"delegate": "delegate.dashboard", "agent": "agent.pending", "auditor": "auditor.home"}


def init_app(app: Flask) -> None:
    s = app.config["SETTINGS"]
    oauth = OAuth(app)  # one per app: each app has its own Keycloak
    app.extensions["portal_oauth"] = oauth
    oauth.register(
        "keycloak",
        client_id=s.portal_client_id,
        client_secret=s.portal_client_secret,
        server_metadata_url=f"{s.keycloak_url}/realms/{s.realm}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid", "code_challenge_method": "S256", "timeout": 10},
    )

    @app.before_request
    def load_user() -> None:
        g.user = session.get("user")

    @app.context_processor
    def user_context() -> dict:
        return {"user": g.get("user")}


def keycloak():
    """This app's OIDC client of the realm (server metadata fetched on first use, retried after a failure)."""
    return current_app.extensions["portal_oauth"].keycloak


def _claims(jwt: str) -> dict:
    """The payload of a token we received directly from Keycloak's token endpoint (back channel)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def identity_from_token(token: dict) -> dict:
    claims = _claims(token["access_token"])
    roles = [r for r in (claims.get("realm_access") or {}).get("roles", []) if r in PORTAL_ROLES]
    username = claims.get("preferred_username", "")
    name = " ".join(p for p in (claims.get("given_name"), claims.get("family_name")) if p) or username
    adherent = claims.get("adherent") or (username if "delegate" in roles else None)
    return {"sub": claims["sub"], "username": username, "name": name, "roles": roles, "adherent": adherent}


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
    except OAuthError:
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
        return render_template("auth_error.html", error="no_role", logout_url=end_session_url()), 403
    session["user"] = ident
    purge_expired(current_app.extensions["cimr"].engine)  # housekeeping, once per login
    session["tokens"] = {k: token.get(k) for k in ("access_token", "refresh_token", "expires_at")}
    session.permanent = True
    return redirect(next_url or url_for(HOME[ident["roles"][0]]))


def end_session_url() -> str:
    """Keycloak's RP-initiated logout, coming back to the portal's home page."""
    s = current_app.config["SETTINGS"]
    params = {"post_logout_redirect_uri": s.portal_url + "/", "client_id": s.portal_client_id}
    if session.get("id_token"):
        params["id_token_hint"] = session["id_token"]
    return f"{s.keycloak_url}/realms/{s.realm}/protocol/openid-connect/logout?{urlencode(params)}"


@bp.post("/logout")
def logout():
    url = end_session_url()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url)


def access_token() -> str:
    """The logged-in person's access token, refreshed when needed; aborts 401 when the session is over.

    Keycloak accepts each refresh token once and ends the client session when one is replayed (rotation,
    realm/realm.yaml): concurrent requests of one session must not both refresh. The session store refreshes
    under a lock on the session's record; a request that waited takes the tokens the first one saved.
    """
    tokens = session.get("tokens") or {}
    if _due(tokens):
        def refresh(current: dict) -> dict:
            fresh = keycloak().fetch_access_token(grant_type="refresh_token",
                                                      refresh_token=current.get("refresh_token"))
            return {k: fresh.get(k) for k in ("access_token", "refresh_token", "expires_at")}
        try:
            tokens = current_app.session_interface.refresh_value(session, "tokens", refresh)
        except OAuthError:
            session.clear()
            abort(401)
    return tokens["access_token"]


def _due(tokens: dict) -> bool:
    return bool(tokens.get("expires_at")) and tokens["expires_at"] - 30 < time.time()


def guard_space(blueprint: Blueprint, role: str) -> None:
    """Every view of the blueprint belongs to one space: anonymous → login (then back); wrong role → 403."""
    @blueprint.before_request
    def _guard():
        g.space = role
        if not g.get("user"):
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if role not in g.user["roles"]:
            abort(403)
        return None
