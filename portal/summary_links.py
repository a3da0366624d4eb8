"""The company's link to print its subscription summary again: signed with the portal's secret key and valid for
a few days (itsdangerous). It names one subscription and shows only its summary, never a password."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

VALID_DAYS = 7
_SALT = "subscription-summary"


class LinkExpired(Exception):
    """The link was genuine but is older than VALID_DAYS."""


class LinkForged(Exception):
    """The link was not made by this portal (forged, altered, truncated)."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)


def make_token(sub_id: int, adherent: str) -> str:
    return _serializer().dumps({"s": sub_id, "a": adherent})


def read_token(token: str) -> tuple[int, str]:
    """The (subscription id, numéro d'adhérent) a token names; raises LinkExpired or LinkForged."""
    try:
        data = _serializer().loads(token, max_age=VALID_DAYS * 24 * 3600)
    except SignatureExpired:
        raise LinkExpired() from None
    except BadSignature:
        raise LinkForged() from None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("a"), str):
        raise LinkForged()
    return data["s"], data["a"]
