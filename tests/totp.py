"""The second factors of the test accounts (TOTP itself: devstack/totp.py, pyotp is not installed).

The realm's policy accepts one period either side, and **a code is accepted once**. ``AUTHENTICATORS`` plays each
test account's phone: it keeps the secret from enrolment and hands out codes never used before, waiting for the
next period when the three valid ones are spent.
"""

from __future__ import annotations

import threading
import time

from devstack.totp import DIGITS, OTP_FORM, PERIOD, SETUP_FORM, form_action, hotp, setup_secret, totp  # noqa: F401


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
