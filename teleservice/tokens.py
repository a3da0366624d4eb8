"""Validation of the tokens Keycloak gives a teleservice: access tokens and back-channel logout tokens.

Pure functions over a token string and the realm's public keys (JWKS): signature, issuer,
audience/azp, expiry, and for logout tokens the OpenID Back-Channel Logout rules.
"""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALGORITHMS = ("RS256", "PS256", "ES256")
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """The token must not be trusted; ``reason`` says why (for logs, never shown with the token)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _decode(token: str, keys: KeySet, issuer: str, now: int | None, **options: Any) -> dict:
    try:
        claims = jwt.decode(token, keys, algorithms=list(ALGORITHMS)).claims
        JWTClaimsRegistry(now=now or int(time.time()), leeway=LEEWAY_SECONDS,
                          iss={"essential": True, "value": issuer}, **options).validate(claims)
    except JoseError as exc:
        raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
    return claims


def _audiences(claims: dict) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else list(aud or [])


def validate_access_token(token: str, keys: KeySet, issuer: str, client_id: str, now: int | None = None) -> dict:
    """Claims of an access token issued by our realm to this teleservice, for it; raises InvalidToken.

    ``azp`` must be this client (the token was requested by us) and ``aud`` must name it (realm/ gives
    every client an audience mapper that adds itself): a token meant for another service is refused.
    """
    claims = _decode(token, keys, issuer, now, exp={"essential": True}, iat={"essential": True})
    if claims.get("typ", "Bearer") != "Bearer":
        raise InvalidToken(f"typ is {claims.get('typ')!r}, not an access token")
    if claims.get("azp") != client_id:
        raise InvalidToken(f"azp is {claims.get('azp')!r}, not {client_id!r}")
    if client_id not in _audiences(claims):
        raise InvalidToken(f"aud {_audiences(claims)} does not include {client_id!r}")
    return claims


def validate_logout_token(token: str, keys: KeySet, issuer: str, client_id: str, now: int | None = None) -> dict:
    """Claims of a back-channel logout token for this client (OIDC Back-Channel Logout 1.0, 2.6)."""
    claims = _decode(token, keys, issuer, now, iat={"essential": True}, jti={"essential": True})
    if client_id not in _audiences(claims):
        raise InvalidToken(f"aud {_audiences(claims)} does not include {client_id!r}")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise InvalidToken("events claim lacks the back-channel logout event")
    if "nonce" in claims:
        raise InvalidToken("a logout token must not carry a nonce")
    if not claims.get("sid") and not claims.get("sub"):
        raise InvalidToken("neither sid nor sub")
    return claims
