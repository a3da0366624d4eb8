"""A small load through the proxy for the availability tests: delegates reading their pages in the portal and
teleservice users logging in to Compte Adherent (the login form, the code redeemed), every request recorded.
Bounded: a few threads, one login per user per 1.2 s at most (Keycloak's quick-login check is 1 s)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from devstack.builders import DELEGATE_PASSWORD
from devstack.logins import PinnedBrowser, pkce_pair
from provisioner.context import Context
from provisioner.rules import Access
from provisioner.teleservice_users import NewUser, UserDetails
from provisioner.tenancy import Actor
from provisioner.users import create_user
from tests.production.conftest import unique
from tests.production.test_production_cluster import ANSWERS
from tests.production.test_production_failover import portal_login

LOGIN_PACE = 1.2
PASSWORD, NEW_PASSWORD = "User2026", "Roll2026"


@dataclass
class Request:
    at: float
    kind: str
    ok: bool
    status: str
    ms: float


@dataclass
class Load:
    """``delegates`` portal sessions reading pages, ``logins`` teleservice users logging in, until ``stop``."""

    stack: object
    settings: object
    spec: object
    delegates: list = field(default_factory=list)    # (requests session, a user login of theirs)
    ts_users: list = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    @classmethod
    def prepared(cls, stack, settings, spec, service_gw, services, make_adherent, delegates: int = 1,
                 logins: int = 2) -> "Load":
        """Delegates logged in to the portal (a user each to look at), teleservice users past their first login."""
        load = cls(stack, settings, spec)
        for _ in range(delegates):
            n = make_adherent()
            login = unique("vu.")
            create_user(Context(service_gw, services, Actor.delegate(n), n), NewUser(
                login, UserDetails("Tazi", "Yasmine", f"{login}@atlas.ma"), Access("compte-adherent"), PASSWORD,
                secret_answers=ANSWERS))
            browser = PinnedBrowser(stack.public_url, node=1)
            portal_login(stack, browser, n, DELEGATE_PASSWORD)
            load.delegates.append((browser.session, login))
        n = make_adherent()
        for _ in range(logins):
            login = unique("ts.")
            create_user(Context(service_gw, services, Actor.delegate(n), n), NewUser(
                login, UserDetails("Tazi", "Omar", f"{login}@atlas.ma"), Access("compte-adherent"), PASSWORD,
                secret_answers=ANSWERS))
            load.login_once(login, PASSWORD, new_password=NEW_PASSWORD)  # the forced first change
            load.ts_users.append(login)
        return load

    def record(self, kind: str, fn) -> None:
        t0 = time.monotonic()
        try:
            ok, status = fn()
        except (requests.RequestException, AssertionError) as exc:
            ok, status = False, f"{type(exc).__name__}: {str(exc)[:80]}"
        with self.lock:
            self.requests.append(Request(time.monotonic(), kind, ok, str(status), (time.monotonic() - t0) * 1000))

    def login_once(self, login: str, password: str, new_password: str | None = None) -> tuple[bool, int | str]:
        client = self.spec.client("compte-adherent")
        callback = client.url + client.redirect_paths[0]
        base = f"{self.stack.public_url}/realms/{self.settings.realm}/protocol/openid-connect"
        browser = PinnedBrowser(self.stack.public_url, node=1)
        browser.session.cookies.clear()  # balanced by the proxy, as a new visitor
        verifier, challenge = pkce_pair()
        location = browser.login(f"{base}/auth?" + urlencode({
            "client_id": "compte-adherent", "redirect_uri": callback, "scope": "openid", "response_type": "code",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}), login, password,
            new_password=new_password)
        code = parse_qs(urlparse(location).query).get("code", [None])[0]
        if not code:
            return False, "no code"
        tokens = browser.session.post(f"{base}/token", timeout=60, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": callback, "client_id": "compte-adherent",
            "code_verifier": verifier, "client_secret": self.settings.realm_vars["COMPTE_ADHERENT_CLIENT_SECRET"]})
        return tokens.status_code == 200, tokens.status_code

    def _pages(self, session, login: str) -> None:
        portal = self.stack.portal_url
        urls = [f"{portal}/delegue/", f"{portal}/delegue/t/compte-adherent", f"{portal}/delegue/utilisateurs/{login}"]
        k = 0
        while not self.stop.is_set():
            url = urls[k % len(urls)]
            k += 1
            self.record("page", lambda: (lambda r: (r.status_code == 200, r.status_code))(
                session.get(url, allow_redirects=False, timeout=60)))
            self.stop.wait(0.1)

    def _logins(self, login: str) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            self.record("login", lambda: self.login_once(login, NEW_PASSWORD))
            self.stop.wait(max(0.0, LOGIN_PACE - (time.monotonic() - began)))

    def begin(self) -> "Load":
        self.threads = ([threading.Thread(target=self._pages, args=d, daemon=True) for d in self.delegates]
                        + [threading.Thread(target=self._logins, args=(u,), daemon=True) for u in self.ts_users])
        for t in self.threads:
            t.start()
        return self

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)

    def failed(self, kind: str | None = None) -> list[Request]:
        return [r for r in self.requests if not r.ok and (kind is None or r.kind == kind)]

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if r.kind == kind)
