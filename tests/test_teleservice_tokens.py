"""The reference teleservice trusts only tokens from our realm, for itself, unexpired, properly signed."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from teleservice.tokens import (BACKCHANNEL_LOGOUT_EVENT, InvalidToken, validate_access_token,
                                validate_logout_token)

ISSUER = "http://127.0.0.1:8080/realms/cimr"
CLIENT = "easypaiement"
REALM_KEY = RSAKey.generate_key(2048, parameters={"kid": "realm"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "realm"})  # same kid, wrong key
KEYS = KeySet.import_key_set({"keys": [REALM_KEY.as_dict(private=False)]})


def sign(claims: dict, key: RSAKey = REALM_KEY) -> str:
    return jwt.encode({"alg": "RS256", "kid": "realm"}, claims, key)


def access(**changes) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u1", "azp": CLIENT, "aud": CLIENT, "typ": "Bearer", "iat": now, "exp": now + 300,
              "resource_access": {CLIENT: {"roles": ["validateur"]}}, "adherent": "12345678"}
    return {k: v for k, v in {**claims, **changes}.items() if v is not None}


def logout(**changes) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "u1", "sid": "s1", "iat": now, "exp": now + 120,
              "jti": "j1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    return {k: v for k, v in {**claims, **changes}.items() if v is not None}


def test_a_good_access_token_is_accepted():
    assert validate_access_token(sign(access()), KEYS, ISSUER, CLIENT)["adherent"] == "12345678"


def test_an_access_token_naming_us_in_aud_is_accepted():
    assert validate_access_token(sign(access(aud=[CLIENT, "account"])), KEYS, ISSUER, CLIENT)


@pytest.mark.parametrize("token, why", [
    (sign(access(), OTHER_KEY), "signed by another key"),
    (sign(access(iss="http://127.0.0.1:8080/realms/other")), "another realm"),
    (sign(access(azp="teledeclaration")), "issued to another teleservice"),
    (sign(access(aud="compte-adherent")), "meant for another audience"),
    (sign(access(aud=None)), "no audience"),
    (sign(access(exp=int(time.time()) - 3600)), "expired"),
    (sign(access(exp=None)), "no expiry"),
    (sign(access(typ="Refresh")), "a refresh token"),
    (sign(access())[:-4] + "AAAA", "tampered signature"),
    ("not-a-jwt", "garbage"),
])
def test_bad_access_tokens_are_refused(token, why):
    with pytest.raises(InvalidToken):
        validate_access_token(token, KEYS, ISSUER, CLIENT)


def test_a_good_logout_token_is_accepted():
    assert validate_logout_token(sign(logout()), KEYS, ISSUER, CLIENT)["sid"] == "s1"


@pytest.mark.parametrize("token, why", [
    (sign(logout(), OTHER_KEY), "signed by another key"),
    (sign(logout(iss="http://evil.example/realms/cimr")), "another issuer"),
    (sign(logout(aud="teledeclaration")), "for another client"),
    (sign(logout(events=None)), "no events claim"),
    (sign(logout(events={"http://example.com/other": {}})), "not the back-channel logout event"),
    (sign(logout(nonce="n")), "carries a nonce"),
    (sign(logout(sid=None, sub=None)), "neither sid nor sub"),
    (sign(logout(jti=None)), "no jti"),
    (sign(logout(iat=None)), "no iat"),
    (sign(logout(exp=int(time.time()) - 3600)), "expired"),
])
def test_bad_logout_tokens_are_refused(token, why):
    with pytest.raises(InvalidToken):
        validate_logout_token(token, KEYS, ISSUER, CLIENT)
