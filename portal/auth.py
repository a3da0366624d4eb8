"""The portal's OIDC client of the realm (authorization code + PKCE, client `portal`), the logged-in person's
identity and access token, the role guard of each space. The login routes are in portal/views/auth.py.

Tokens stay in the server-side session; the browser only ever holds the session id.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, g, redirect, request, session, url_for

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


def end_session_url() -> str:
    """Keycloak's RP-initiated logout, coming back to the portal's home page."""
    s = current_app.config["SETTINGS"]
    params = {"post_logout_redirect_uri": s.portal_url + "/", "client_id": s.portal_client_id}
    if session.get("id_token"):
        params["id_token_hint"] = session["id_token"]
    return f"{s.keycloak_url}/realms/{s.realm}/protocol/openid-connect/logout?{urlencode(params)}"


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
