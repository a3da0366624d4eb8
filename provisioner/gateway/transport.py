"""The only module that speaks HTTP to Keycloak (httpx): tokens, error translation, paging, bounded concurrency.

Paths are relative to the realm's Admin API (``/admin/realms/<realm>``) unless a ``base`` under Keycloak's root
is given. Failures are translated once, here: 404 -> NotFound (None for reads), 409 -> Conflict, 401 ->
SessionExpired (a Forbidden), 403 -> Forbidden, 400 -> KeycloakRejected with Keycloak's own message, 5xx and
transport errors -> KeycloakUnavailable.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import httpx

from provisioner.errors import (Conflict, Forbidden, KeycloakRejected, KeycloakUnavailable, NotFound,
                                ProvisionerError, SessionExpired)
from provisioner.settings import Settings

PAGE = 500          # page size for listings; never one request per user
TIMEOUT = 30        # seconds per call
BULK_TIMEOUT = 60   # seconds per read of a batch (pages of 1,000 users) and per creation of post_each
POOL = 16           # keep-alive connections per gateway: at most this many reads at once
RENEW_AT = 0.9      # a token is renewed at this fraction of its lifetime (clock skew, slow calls)
_JSON = {"Content-Type": "application/json"}
_NO_BODY = object()
_calls: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("keycloak_calls", default=None)


def count_calls() -> Callable[[], int]:
    """Count from now on the calls to Keycloak made in this context (a portal request, say): the function returned
    gives the count so far. Calls made by worker threads (``get_many``) are not counted."""
    box = [0]
    _calls.set(box)
    return lambda: box[0]


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for the process: building one per client costs ~20 ms (the portal builds a gateway per
    request)."""
    return httpx.create_ssl_context()


def trust_again() -> None:
    """Forget the cached TLS context and pooled clients: the next ones read the trusted CAs again (SSL_CERT_FILE
    changed, as the production-shape tests and benches do once their local CA exists)."""
    _tls.cache_clear()
    _pooled.cache_clear()


def _client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, verify=_tls(), headers={"Accept": "application/json"},
                        limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL))


@functools.cache
def _pooled(pid: int) -> httpx.Client:
    return _client()


def pooled_client() -> httpx.Client:
    """One client per process whose keep-alive connections short-lived gateways share (the portal builds one per
    request for the delegate's own token: a new client each time would open a connection and a TLS session to
    Keycloak per page). It carries no credentials: each call sends its gateway's own token."""
    return _pooled(os.getpid())  # a forked worker gets its own, never its parent's sockets


def refusal(status: int, body: bytes) -> ProvisionerError:
    """The error, named by meaning, for Keycloak's HTTP answer ``status`` with ``body``."""
    code = None
    try:
        detail = json.loads(body)
        message = detail.get("errorMessage") or detail.get("error_description") or detail.get("error") or str(detail)
        code = detail.get("error") if isinstance(detail.get("error"), str) else None
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 401:
        return SessionExpired(message or "unauthorized")
    if status == 403:
        return Forbidden(message or "forbidden")
    if status == 400:
        return KeycloakRejected(message, code)
    if status >= 500:
        return KeycloakUnavailable(f"Keycloak error {status}: {message}")
    return KeycloakRejected(f"HTTP {status}: {message}")


def unreachable(exc: httpx.TransportError) -> KeycloakUnavailable:
    return KeycloakUnavailable(f"Keycloak unreachable: {exc}")


def result(resp: httpx.Response, none_on_404: bool = False) -> Any:
    """The answer's JSON (or text; None when empty); raises the translated error for a status >= 400."""
    if resp.status_code == 404 and none_on_404:
        return None
    if resp.status_code >= 400:
        raise refusal(resp.status_code, resp.content)
    if resp.status_code == 204 or not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return resp.text


def location_id(resp: httpx.Response) -> str | None:
    """The created object's id, from the Location header."""
    location = resp.headers.get("Location")
    return location.rstrip("/").rsplit("/", 1)[-1] if location else None


class Tokens:
    """Access tokens from one source, thread-safe: a grant at a token endpoint (renewed before expiry, and at
    once when Keycloak refuses the current one), or a person's own token, used as given and never renewed."""

    def __init__(self, token_url: str | None = None, grant: dict[str, str] | None = None,
                 access_token: str | None = None):
        self._url, self._grant = token_url, grant
        self._access, self._refresh = access_token, None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def password(cls, settings: Settings, realm: str, client_id: str, username: str, password: str) -> "Tokens":
        """A user's password grant (the master admin, client ``admin-cli`` of its realm)."""
        return cls(_token_url(settings, realm), {"grant_type": "password", "client_id": client_id,
                                                 "username": username, "password": password})

    @classmethod
    def client_credentials(cls, settings: Settings, client_id: str, secret: str) -> "Tokens":
        """A service account of the realm (client-credentials grant, secret in the body)."""
        return cls(_token_url(settings, settings.realm), {"grant_type": "client_credentials", "client_id": client_id,
                                                          "client_secret": secret})

    @property
    def renewable(self) -> bool:
        return self._grant is not None

    def header(self, http: httpx.Client, refused: str | None = None) -> str:
        """``Bearer <token>``; a new token first when the current one is due, or is ``refused`` (Keycloak just
        answered 401 to it)."""
        with self._lock:  # one renewal for every thread of a batch
            current = f"Bearer {self._access}" if self._access else None
            if self.renewable and (current is None or refused == current or time.monotonic() >= self._renew_at):
                self._renew(http)
            return f"Bearer {self._access}"

    def _renew(self, http: httpx.Client) -> None:
        client = {k: v for k, v in self._grant.items() if k in ("client_id", "client_secret")}
        token = None
        if self._refresh:
            try:
                token = self._post(http, {**client, "grant_type": "refresh_token", "refresh_token": self._refresh})
            except (KeycloakRejected, Forbidden):  # the session ended or the refresh token expired: grant anew
                pass
        self._store(token or self._post(http, self._grant))

    def _post(self, http: httpx.Client, form: dict[str, str]) -> dict:
        for attempt in (0, 1):  # a token request may be sent again (a keep-alive connection Keycloak dropped)
            try:
                return result(http.post(self._url, data=form, timeout=TIMEOUT))
            except httpx.TransportError as exc:
                if attempt:
                    raise unreachable(exc) from exc
        raise AssertionError("not reached: the second attempt returns or raises")

    def _store(self, token: dict) -> None:
        self._access, self._refresh = token["access_token"], token.get("refresh_token")
        self._renew_at = time.monotonic() + RENEW_AT * int(token.get("expires_in") or 60)


def _token_url(settings: Settings, realm: str) -> str:
    return f"{settings.keycloak_url}/realms/{realm}/protocol/openid-connect/token"


class Transport:
    """Admin API calls for one realm over one pool of keep-alive connections, with one source of tokens."""

    confined = False  # True for a person's own token (Gateway.with_token): see GroupAdmin.group_by_path

    def __init__(self, settings: Settings, tokens: Tokens, http: httpx.Client | None = None):
        self.settings = settings
        self.realm = settings.realm
        self.bulk_reads = 0  # reads made through at_once / get_many (the audit reports them)
        self._reads: dict | None = None  # see remember_reads
        self._tokens = tokens
        self._http = http or _client()

    # --- addresses and credentials ---------------------------------------------------------------
    def admin_url(self, path: str = "") -> str:
        """The absolute URL of ``path`` under the realm's Admin API."""
        return f"{self.settings.keycloak_url}/admin/realms/{self.realm}{path}"

    def _url(self, path: str, base: str | None = None) -> str:
        return self.admin_url(path) if base is None else f"{self.settings.keycloak_url}/{base}{path}"

    def auth_headers(self, refused: str | None = None) -> dict[str, str]:
        """The Authorization header for a call made elsewhere (bench/, tests), renewed when due or ``refused``."""
        return {"Authorization": self._tokens.header(self._http, refused)}

    def remember_reads(self) -> None:
        """From now on, answer a GET this gateway already made from its first answer: for a gateway that only reads
        while it lives (a portal page view), so that the page's parts share one read of each thing. Never for a
        gateway that writes: it would read its own writes stale."""
        self._reads = {}

    # --- one call ----------------------------------------------------------------------------------
    def _send(self, method: str, url: str, params: dict | None = None, body: Any = _NO_BODY,
              timeout: float = TIMEOUT) -> httpx.Response:
        """One call, sent again once: after a 401 with a renewed token, or after a connection Keycloak dropped
        (a stale keep-alive; a timed-out write is not sent twice)."""
        if self._reads is not None and method == "GET":
            key = (url, tuple(sorted((params or {}).items())))
            if key not in self._reads:
                self._reads[key] = self._call(method, url, params, body, timeout)
            return self._reads[key]
        return self._call(method, url, params, body, timeout)

    def _call(self, method: str, url: str, params: dict | None, body: Any, timeout: float) -> httpx.Response:
        content = None if body is _NO_BODY else json.dumps(body)
        refused = None
        counter = _calls.get()
        for attempt in (0, 1):
            auth = self.auth_headers(refused)
            if counter is not None:
                counter[0] += 1
            try:
                resp = self._http.request(method, url, params=params, content=content, timeout=timeout,
                                          headers={**_JSON, **auth} if content is not None else auth)
            except httpx.TransportError as exc:
                if attempt or (isinstance(exc, httpx.TimeoutException) and method != "GET"):
                    raise unreachable(exc) from exc
                continue
            if resp.status_code == 401 and not attempt and self._tokens.renewable:
                refused = auth["Authorization"]
                continue
            return resp
        raise AssertionError("not reached: the second attempt returns or raises")

    def get(self, path: str, **params: Any) -> Any:
        """GET; None when Keycloak answers 404."""
        return result(self._send("GET", self.admin_url(path), params), none_on_404=True)

    def post(self, path: str, body: Any) -> str | None:
        """POST; the created object's id (from the Location header), if any."""
        resp = self._send("POST", self.admin_url(path), body=body)
        result(resp)
        return location_id(resp)

    def post_json(self, path: str, body: Any) -> Any:
        """POST; the answer's JSON."""
        return result(self._send("POST", self.admin_url(path), body=body))

    def put(self, path: str, body: Any) -> Any:
        return result(self._send("PUT", self.admin_url(path), body=body))

    def delete(self, path: str, body: Any = None) -> None:
        result(self._send("DELETE", self.admin_url(path), body=_NO_BODY if body is None else body))

    def paged(self, path: str, **params: Any) -> list[dict]:
        """Every item of a listing, PAGE at a time."""
        out: list[dict] = []
        first = 0
        while True:
            page = self.get(path, **params, first=first, max=PAGE) or []
            out.extend(page)
            if len(page) < PAGE:
                return out
            first += PAGE

    # --- bounded concurrency: a few keep-alive connections at once -----------------------------------
    def at_once(self, *calls: Callable[[], Any], workers: int = 4) -> list[Any]:
        """Run gateway reads ``workers`` at a time (at most POOL); their results in order. Raises the error of the
        first call that failed. Each call counts as one read in ``bulk_reads``: give it one request."""
        self.bulk_reads += len(calls)
        with ThreadPoolExecutor(max_workers=max(1, min(workers, POOL))) as pool:
            return list(pool.map(lambda call: call(), calls))

    def get_many(self, requests_: list[str | tuple[str, dict]], workers: int = 4, base: str | None = None) -> list[Any]:
        """GET each (path, params) relative to the realm's Admin API (or ``base``, a path under Keycloak's root),
        ``workers`` at a time; results in order, None for 404. Raises the translated error of the first failure
        (Forbidden for a read the caller may not do)."""
        def read(path: str, params: dict) -> Any:
            return result(self._send("GET", self._url(path, base), params, timeout=BULK_TIMEOUT), none_on_404=True)

        items = [(item, {}) if isinstance(item, str) else item for item in requests_]
        return self.at_once(*(functools.partial(read, path, params) for path, params in items), workers=workers)

    def get_pages(self, listings: list[tuple[str, dict]], page: int = 100, workers: int = 4) -> list[list]:
        """Every item of several paged listings, in rounds: one page of each still-open listing per round.

        ``page`` must not exceed what Keycloak serves per call (role -> groups/users listings stop at 100).
        """
        out: list[list] = [[] for _ in listings]
        still, first = list(range(len(listings))), 0
        while still:
            batch = self.get_many([(listings[i][0], {**listings[i][1], "first": first, "max": page}) for i in still],
                                  workers=workers)
            for i, items in zip(still, batch):
                out[i].extend(items or [])
            still = [i for i, items in zip(still, batch) if len(items or []) >= page]
            first += page
        return out

    async def post_each(self, path: str, bodies: list[Any], concurrency: int,
                        on_done: Callable[[int, str | ProvisionerError], None] | None = None
                        ) -> list[str | ProvisionerError]:
        """POST each body, ``concurrency`` at a time over as many keep-alive connections; each result is the new
        object's id or the translated error (a creation is never sent twice, except after a 401)."""
        url = self.admin_url(path)
        auth = await asyncio.to_thread(self.auth_headers)
        sem = asyncio.Semaphore(concurrency)

        async def one(client: httpx.AsyncClient, i: int, body: Any) -> str | ProvisionerError:
            nonlocal auth
            async with sem:
                for attempt in (0, 1):
                    sent = auth
                    try:
                        resp = await client.post(url, content=json.dumps(body), headers={**_JSON, **sent})
                    except httpx.TransportError as exc:
                        outcome: str | ProvisionerError = unreachable(exc)
                        break
                    if resp.status_code == 401 and not attempt and self._tokens.renewable:
                        auth = await asyncio.to_thread(self.auth_headers, sent["Authorization"])
                        continue
                    try:
                        result(resp)
                        outcome = location_id(resp) or ""
                    except ProvisionerError as exc:
                        outcome = exc
                    break
            if on_done:
                on_done(i, outcome)
            return outcome

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=BULK_TIMEOUT, limits=limits, verify=_tls(),
                                     headers={"Accept": "application/json"}) as client:
            return await asyncio.gather(*(one(client, i, body) for i, body in enumerate(bodies)))
