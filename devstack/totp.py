"""TOTP as RFC 6238 computes it, and the parts of Keycloak's TOTP pages a program needs: what a person's
authenticator app does, for the tests (tests/totp.py) and the scanners (devstack/scan.py).

Keycloak's setup page shows the secret (hidden field ``totpSecret``, the HMAC key as text); the realm's policy is
HMAC-SHA1, 6 digits, 30 s (realm/realm.yaml ``second_factor.otp``).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import struct
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
