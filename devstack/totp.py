"""TOTP as RFC 6238 computes it, and the parts of Keycloak's TOTP pages a program needs: what a person's
authenticator app does, for the tests, the benchmarks and the scanners (devstack/scan.py); pyotp is not installed.

Keycloak's setup page shows the secret (hidden field ``totpSecret``, the HMAC key as text); the realm's policy is
HMAC-SHA1, 6 digits, 30 s (realm/realm.yaml ``second_factor.otp``), one period either side, and **a code is accepted
once**. ``AUTHENTICATORS`` plays each test account's phone: it keeps the secret from enrolment and hands out codes
never used before, waiting for the next period when the three valid ones are spent.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import struct
import threading
import time

PERIOD = 30
DIGITS = 6


def totp(secret: str, at: float | None = None, period: int = PERIOD, digits: int = DIGITS) -> str:
    """The code of ``secret`` (Keycloak's raw secret: its UTF-8 bytes are the key) at time ``at``."""
    counter = int((time.time() if at is None else at) // period)
    return hotp(secret, counter, digits)


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226: HMAC-SHA1 of the counter, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(secret.encode(), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


SETUP_FORM, OTP_FORM = "kc-totp-settings-form", "kc-otp-login-form"


def form_action(page: str, form_id: str) -> str | None:
    """The action URL of the form ``form_id`` on a Keycloak page, or None when the page has no such form."""
    tag = re.search(r'<form\b[^>]*\bid="%s"[^>]*>' % re.escape(form_id), page)
    return html.unescape(re.search(r'action="([^"]+)"', tag.group(0)).group(1)) if tag else None


def setup_secret(page: str) -> str | None:
    """The TOTP secret Keycloak's setup page offers (None when the page is not the setup page)."""
    found = re.search(r'name="totpSecret" value="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


class Authenticators:
    """The test accounts' phones: username -> TOTP secret, and the codes Keycloak has already seen."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self._used: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def enrol(self, username: str, secret: str) -> None:
        with self._lock:
            self.secrets[username.lower()] = secret

    def knows(self, username: str | None) -> bool:
        return bool(username) and username.lower() in self.secrets

    def code(self, username: str) -> str:
        """A code Keycloak accepts now and has not seen: this period's, the next one's, or the previous one's while
        it is safely valid; else wait for the next period."""
        secret = self.secrets[username.lower()]
        while True:
            with self._lock:
                now = time.time()
                counter, left = int(now // PERIOD), PERIOD - now % PERIOD
                for candidate in (counter, counter + 1) + ((counter - 1,) if left > 5 else ()):
                    if (secret, candidate) not in self._used:
                        self._used.add((secret, candidate))
                        return hotp(secret, candidate)
            time.sleep(left + 0.5)


AUTHENTICATORS = Authenticators()


def answer_second_factor(session, resp, username: str):
    """Go through Keycloak's TOTP pages like the account's owner with their phone: on the setup page, enrol with
    the secret shown; on the OTP form, give a fresh code. Returns the first response that is neither (Keycloak's
    own redirects to its required-action pages are followed)."""
    while resp.status_code in (200, 302, 303):
        if resp.status_code != 200:
            if "/login-actions/" not in resp.headers.get("Location", ""):
                return resp
            resp = session.get(resp.headers["Location"], allow_redirects=False)
            continue
        page = resp.text
        if (action := form_action(page, SETUP_FORM)) is not None:
            secret = setup_secret(page)
            AUTHENTICATORS.enrol(username, secret)
            data = {"totp": AUTHENTICATORS.code(username), "totpSecret": secret, "userLabel": "Téléphone"}
        elif (action := form_action(page, OTP_FORM)) is not None and AUTHENTICATORS.knows(username):
            data = {"otp": AUTHENTICATORS.code(username)}
        else:
            return resp
        resp = session.post(action, data=data, allow_redirects=False)
        for cookie in session.cookies:
            cookie.secure = False
    return resp
