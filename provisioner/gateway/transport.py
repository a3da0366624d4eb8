"""The calls to Keycloak, on python-keycloak's connection (provisioner.gateway.connection): its named calls
(``KeycloakAdmin``: users, groups, clients, roles, flows) for the gateway's modules, its raw calls for what it does not
name (fine-grained admin permissions, client policies, our extension), its async calls for batches; paging; bounded
concurrency; failures translated once: 404 -> NotFound (None for reads), 409 -> Conflict, 401 -> SessionExpired (a
Forbidden), 403 -> Forbidden, 400 -> KeycloakRejected with Keycloak's own message and error key, 5xx and transport
errors -> KeycloakUnavailable.

Paths are relative to the realm's Admin API (``/admin/realms/<realm>``) unless a ``base`` under Keycloak's root is
given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from provisioner.errors import (Conflict, Forbidden, KeycloakRejected, KeycloakUnavailable, NotFound,
                                ProvisionerError, SessionExpired)
from provisioner.gateway.connection import POOL, Connection, await_batch, count_calls, run_batch, trust_again
from provisioner.settings import Settings

PAGE = 500          # page size for listings; never one request per user
_NO_BODY = object()
__all__ = ["Connection", "Transport", "count_calls", "trust_again"]
# --- one place where Keycloak's answers become our errors -----------------------------------------------------------

def refusal(status: int, body: bytes | str | None) -> ProvisionerError:
    """The error, named by meaning, for Keycloak's HTTP answer ``status`` with ``body``."""
    body = body.encode() if isinstance(body, str) else (body or b"")
    code = None
    try:
        detail = json.loads(body)
        message = detail.get("errorMessage") or detail.get("error_description") or detail.get("error") or str(detail)
        code = detail.get("error") if isinstance(detail.get("error"), str) else None
    except (ValueError, AttributeError):
        message = body.decode(errors="replace").strip()
        if status >= 500 and (message.startswith("<") or len(message) > 200):
            # Not Keycloak's JSON: an error page of the proxy in front of it (no node could answer). The trail keeps
            # this sentence, not the page.
            return KeycloakUnavailable(f"Keycloak did not answer (HTTP {status} from its proxy: the service is "
                                       "restarting or down); retry shortly")
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


def unreachable(exc: BaseException) -> KeycloakUnavailable:
    return KeycloakUnavailable(f"Keycloak unreachable: {exc.__cause__ or exc}")


@contextlib.contextmanager
def translated(none_on_404: bool = False) -> Iterator[list]:
    """Around a python-keycloak call: its errors (named by HTTP verb) become ours. With ``none_on_404``, a missing
    object is no error: the list yielded stays empty, and the caller answers None."""
    try:
        yield []
    except KeycloakConnectionError as exc:
        raise unreachable(exc) from exc
    except KeycloakError as exc:
        if none_on_404 and exc.response_code == 404:
            return
        raise refusal(exc.response_code or 500, exc.response_body) from None


def result(resp: Any, none_on_404: bool = False) -> Any:
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


def location_id(resp: Any) -> str | None:
    """The created object's id, from the Location header."""
    location = resp.headers.get("Location")
    return location.rstrip("/").rsplit("/", 1)[-1] if location else None


class Transport:
    """Admin API calls for one realm over python-keycloak's connection for one source of tokens."""

    confined = False  # True for a person's own token (Gateway.with_token): see GroupAdmin.group_by_path

    def __init__(self, settings: Settings, connection: Connection):
        self.settings = settings
        self.realm = settings.realm
        self.bulk_reads = 0  # calls made through at_once / get_many / get_pages (the audit reports them)
        self._reads: dict | None = None  # see remember_reads
        self._conn = connection
        self.kc = KeycloakAdmin(connection=connection)  # python-keycloak's named calls, on the same connection

    def call(self, method: Callable[..., Any], *args: Any, none_on_404: bool = False, **kwargs: Any) -> Any:
        """A python-keycloak call (``self.kc.<method>``), its errors translated; None for a missing object when
        ``none_on_404``."""
        with translated(none_on_404):
            return method(*args, **kwargs)
        return None

    # --- addresses and credentials ---------------------------------------------------------------
    def admin_url(self, path: str = "") -> str:
        """The absolute URL of ``path`` under the realm's Admin API."""
        return f"{self.settings.keycloak_url}/admin/realms/{self.realm}{path}"

    def _relative(self, path: str, base: str | None = None) -> str:
        """``path`` as python-keycloak's raw calls take it: relative to Keycloak's root."""
        return f"admin/realms/{self.realm}{path}" if base is None else f"{base.strip('/')}{path}"

    def auth_headers(self, refused: str | None = None) -> dict[str, str]:
        """The Authorization header for a call made elsewhere (bench/, tests): the current token, renewed when due or
        when it is the ``refused`` one."""
        with translated():
            if refused is not None and self._conn.renewable and self._conn.headers.get("Authorization") == refused:
                self._conn.refresh_token()
            else:
                self._conn._refresh_if_required()
        return {"Authorization": self._conn.headers["Authorization"]}

    def remember_reads(self) -> None:
        """From now on, answer a GET this gateway already made from its first answer: for a gateway that only reads
        while it lives (a portal page view), so that the page's parts share one read of each thing. Never for a
        gateway that writes: it would read its own writes stale."""
        self._reads = {}

    # --- one call ----------------------------------------------------------------------------------
    def _send(self, method: str, path: str, params: dict | None = None, body: Any = _NO_BODY,
              base: str | None = None) -> Any:
        """One raw call of python-keycloak's connection; the response (errors are the caller's to translate)."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        if self._reads is not None and method == "GET":
            key = (path, base, tuple(sorted(params.items())))
            if key not in self._reads:
                self._reads[key] = self._raw(method, path, params, body, base)
            return self._reads[key]
        return self._raw(method, path, params, body, base)

    def _raw(self, method: str, path: str, params: dict, body: Any, base: str | None) -> Any:
        data = None if body is _NO_BODY else json.dumps(body)
        where = self._relative(path, base)
        try:
            if method == "GET":
                return self._conn.raw_get(where, **params)
            if method == "DELETE":
                return self._conn.raw_delete(where, data, **params)
            send = self._conn.raw_post if method == "POST" else self._conn.raw_put
            return send(where, data, **params)
        except KeycloakConnectionError as exc:
            raise unreachable(exc) from exc
        except KeycloakError as exc:  # the token itself refused (a grant's renewal)
            raise refusal(exc.response_code or 500, exc.response_body) from None

    def get(self, path: str, **params: Any) -> Any:
        """GET; None when Keycloak answers 404."""
        return result(self._send("GET", path, params), none_on_404=True)

    def post(self, path: str, body: Any) -> str | None:
        """POST; the created object's id (from the Location header), if any."""
        resp = self._send("POST", path, body=body)
        result(resp)
        return location_id(resp)

    def post_json(self, path: str, body: Any) -> Any:
        """POST; the answer's JSON."""
        return result(self._send("POST", path, body=body))

    def put(self, path: str, body: Any) -> Any:
        return result(self._send("PUT", path, body=body))

    def delete(self, path: str, body: Any = None) -> None:
        result(self._send("DELETE", path, body=_NO_BODY if body is None else body))

    def paged(self, path: str, **params: Any) -> list[dict]:
        """Every item of a listing, PAGE at a time."""
        return self.pages(lambda first, size: self.get(path, **params, first=first, max=size))

    @staticmethod
    def pages(read: Callable[[int, int], list | None]) -> list:
        """Every item of a listing read by ``read(first, max)``, PAGE at a time, until a short page."""
        out: list = []
        first = 0
        while True:
            page = read(first, PAGE) or []
            out.extend(page)
            if len(page) < PAGE:
                return out
            first += PAGE

    # --- bounded concurrency ----------------------------------------------------------------------------
    def at_once(self, *calls: Callable[[], Any], workers: int = 4) -> list[Any]:
        """Run gateway reads ``workers`` at a time (at most POOL) in threads; their results in order. Raises the
        error of the first call that failed. Each call counts as one read in ``bulk_reads``: give it one request."""
        self.bulk_reads += len(calls)
        with ThreadPoolExecutor(max_workers=max(1, min(workers, POOL))) as pool:
            return list(pool.map(lambda call: call(), calls))

    def get_many(self, requests_: list[str | tuple[str, dict]], workers: int = 4, base: str | None = None) -> list[Any]:
        """GET each (path, params) relative to the realm's Admin API (or ``base``, a path under Keycloak's root),
        ``workers`` at a time through python-keycloak's async calls; results in order, None for 404. Raises the
        translated error of the first failure (Forbidden for a read the caller may not do)."""
        items = [(item, {}) if isinstance(item, str) else item for item in requests_]
        self.bulk_reads += len(items)
        self.auth_headers()  # a token valid for the whole batch, renewed here once if due

        async def batch() -> list[Any]:
            sem = asyncio.Semaphore(max(1, min(workers, POOL)))

            async def read(path: str, params: dict) -> Any:
                async with sem:
                    resp = await self._conn.a_raw_get(self._relative(path, base),
                                                      **{k: v for k, v in params.items() if v is not None})
                return result(resp, none_on_404=True)
            return await asyncio.gather(*(read(path, params) for path, params in items))

        with translated():
            return run_batch(batch())

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
        """POST each body through python-keycloak's async calls, ``concurrency`` at a time; each result is the new
        object's id or the translated error (a creation is never sent twice, except after a 401 with a renewed
        token). Awaitable from any event loop: the calls run on the process's."""
        where = self._relative(path)
        await asyncio.to_thread(self.auth_headers)

        async def each() -> list[str | ProvisionerError]:
            sem = asyncio.Semaphore(max(1, concurrency))

            async def one(i: int, body: Any) -> str | ProvisionerError:
                async with sem:
                    try:
                        resp = await self._conn.a_raw_post(where, json.dumps(body))
                        result(resp)
                        outcome: str | ProvisionerError = location_id(resp) or ""
                    except KeycloakConnectionError as exc:
                        outcome = unreachable(exc)
                    except ProvisionerError as exc:
                        outcome = exc
                if on_done:
                    on_done(i, outcome)
                return outcome
            return await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))

        return await await_batch(each())
