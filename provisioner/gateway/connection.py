"""python-keycloak's connection as our gateway needs it: one token renewal at a time, a person's token sent as
given, one pair of HTTP clients per process, writes never sent twice, calls counted, batches on one event loop.

``KeycloakOpenIDConnection`` gets and renews the tokens (a service account's client credentials, the master admin's
password grant) and carries a person's own token; ``provisioner.gateway.transport`` makes the calls on it. What we add
to it, here only:

- one renewal of a token at a time (the threads of a batch share the connection), and a person's token used as
  given — never "renewed", never sent twice when Keycloak refuses it;
- one pair of HTTP clients (keep-alive) per process for every connection: the portal builds a connection per page
  for the delegate's own token, and a new pair would cost a TLS context (~20-30 ms) and new connections each time;
- a write is never sent twice (python-keycloak's default retries a POST after a read timeout); a read is, once,
  after a keep-alive connection Keycloak dropped;
- the async calls (batches) run on one event loop per process: python-keycloak's async client belongs to the loop
  that first used it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import ssl
import threading
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
import requests
from keycloak import KeycloakOpenIDConnection
from keycloak.connection import ConnectionManager
from keycloak.exceptions import KeycloakConnectionError
from requests.adapters import HTTPAdapter

from provisioner.settings import Settings

TIMEOUT = 30        # seconds per call
BULK_TIMEOUT = 60   # seconds per call of a batch (pages of 1,000 users, creations of post_each)
POOL = 16           # keep-alive connections per process: at most this many calls at once
_calls: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("keycloak_calls", default=None)
_bulk: contextvars.ContextVar[bool] = contextvars.ContextVar("keycloak_bulk", default=False)


def count_calls() -> Callable[[], int]:
    """Count from now on the calls to Keycloak made in this context (a portal request, say): the function returned
    gives the count so far. Calls made by batches (``at_once``, ``get_many``) are not counted."""
    box = [0]
    _calls.set(box)
    return lambda: box[0]


# --- the process's HTTP clients ----------------------------------------------------------------------------------

@functools.cache
def _tls() -> ssl.SSLContext:
    """The trusted CAs of httpx (the async calls): SSL_CERT_FILE's when set (the production shape's local CA). The
    sync calls (requests) read REQUESTS_CA_BUNDLE the same way: connections say ``verify=True``."""
    return httpx.create_ssl_context()


class _Session(requests.Session):
    """requests' session reading the environment once (the CA bundle, REQUESTS_CA_BUNDLE: the production shape's
    local CA), not at every call: reading it (proxies, bundles) cost ~0.15 ms per call, measured. Proxies from the
    environment are not used: Keycloak is reached directly."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.auth = lambda r: r  # python-keycloak sets the Authorization header itself
        self._bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings["verify"] is True:
            settings["verify"] = self._bundle
        return settings


_made = threading.Lock()  # threads may ask for the clients or the loop first at the same time: one of each is made


def _clients(pid: int) -> tuple[requests.Session, httpx.AsyncClient]:
    """One requests session (python-keycloak's sync calls) and one httpx client (its async calls) per process: a
    forked worker gets its own, never its parent's sockets."""
    with _made:
        return _new_clients(pid)


@functools.cache
def _new_clients(pid: int) -> tuple[requests.Session, httpx.AsyncClient]:
    session = _Session()
    adapter = HTTPAdapter(max_retries=0, pool_connections=POOL, pool_maxsize=POOL)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    bulk = httpx.AsyncClient(verify=_tls(), timeout=BULK_TIMEOUT,
                             limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL))
    return session, bulk


def _loop(pid: int) -> asyncio.AbstractEventLoop:
    """The process's event loop for python-keycloak's async calls, running in a thread of its own (one: an async
    client used from two loops fails)."""
    with _made:
        return _one_loop(pid)


@functools.cache
def _one_loop(pid: int) -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="keycloak-async", daemon=True).start()
    return loop


def run_batch(coro: Any) -> Any:
    """Run a batch (a coroutine of python-keycloak's async calls) on the process's loop, with the batches' timeout;
    its result, or its error, in the calling thread."""
    return asyncio.run_coroutine_threadsafe(_as_batch(coro), _loop(os.getpid())).result()


async def await_batch(coro: Any) -> Any:
    """``run_batch`` for a caller that runs an event loop of its own."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_as_batch(coro), _loop(os.getpid())))


async def _as_batch(coro: Any) -> Any:
    _bulk.set(True)  # seen by the calls of this task and of the tasks it starts: BULK_TIMEOUT
    return await coro


def trust_again() -> None:
    """Forget the cached TLS context and clients: the next ones read the trusted CAs again (SSL_CERT_FILE changed,
    as the production-shape tests and benches do once their local CA exists)."""
    _tls.cache_clear()
    _new_clients.cache_clear()


class _SharedClients(ConnectionManager):
    """python-keycloak's connection manager over the process's clients instead of a new pair for each connection;
    calls counted (``count_calls``); a read sent again once after a keep-alive connection Keycloak dropped."""

    def __init__(self, base_url: str, headers: dict | None = None, timeout: int | None = TIMEOUT,
                 verify: bool | str = True, proxies: dict | None = None, cert: Any = None, max_retries: int = 0,
                 pool_maxsize: int | None = POOL) -> None:
        self.base_url, self.headers, self.timeout, self.verify = base_url, headers, timeout, verify
        self.proxies, self.cert, self.max_retries, self.pool_maxsize = None, cert, 0, POOL
        self._s, self.async_s = _clients(os.getpid())

    def __del__(self) -> None:  # the clients are the process's: never closed with one connection
        pass

    @property
    def timeout(self) -> int | None:
        return BULK_TIMEOUT if _bulk.get() else self._timeout

    @timeout.setter
    def timeout(self, value: int | None) -> None:
        self._timeout = value

    def raw_get(self, path: str, **kwargs: Any) -> Any:
        _count()
        try:
            return super().raw_get(path, **kwargs)
        except KeycloakConnectionError as exc:
            if not isinstance(exc.__cause__, requests.ConnectionError) or isinstance(exc.__cause__,
                                                                                      requests.Timeout):
                raise
            return super().raw_get(path, **kwargs)  # a stale keep-alive connection: once more

    def raw_post(self, path: str, data: Any, **kwargs: Any) -> Any:
        _count()
        return super().raw_post(path, data, **kwargs)

    def raw_put(self, path: str, data: Any, **kwargs: Any) -> Any:
        _count()
        return super().raw_put(path, data, **kwargs)

    def raw_delete(self, path: str, data: Any = None, **kwargs: Any) -> Any:
        _count()
        return super().raw_delete(path, data, **kwargs)


def _count() -> None:
    counter = _calls.get()
    if counter is not None:
        counter[0] += 1


class Connection(KeycloakOpenIDConnection, _SharedClients):
    """python-keycloak's connection for one source of tokens: a grant it renews (one renewal at a time), or a
    person's own token (``token=``, no grant), sent as given: when Keycloak refuses it, the answer says so at once
    (python-keycloak would "renew" it by resending the same token)."""

    def __init__(self, settings: Settings, **kw: Any) -> None:
        self._renewal = threading.Lock()
        super().__init__(server_url=settings.keycloak_url.rstrip("/") + "/", realm_name=settings.realm,
                         verify=True, timeout=TIMEOUT, max_retries=0, pool_maxsize=POOL, **kw)

    @property
    def renewable(self) -> bool:
        return bool(self.grant_type)

    def refresh_token(self) -> None:
        with self._renewal:
            super().refresh_token()

    def _refresh_if_required(self) -> None:
        if self.renewable and self._due():
            with self._renewal:
                if self._due():  # another thread may have renewed it meanwhile
                    KeycloakOpenIDConnection.refresh_token(self)

    async def a__refresh_if_required(self) -> None:
        self._refresh_if_required()  # before a batch (run_async), in the caller's thread: one renewal for all

    def _due(self) -> bool:
        return self.expires_at is not None and datetime.now(tz=timezone.utc) >= self.expires_at

    def raw_get(self, *args: Any, **kwargs: Any) -> Any:
        return super().raw_get(*args, **kwargs) if self.renewable else _SharedClients.raw_get(self, *args, **kwargs)

    def raw_post(self, *args: Any, **kwargs: Any) -> Any:
        return super().raw_post(*args, **kwargs) if self.renewable else _SharedClients.raw_post(self, *args, **kwargs)

    def raw_put(self, *args: Any, **kwargs: Any) -> Any:
        return super().raw_put(*args, **kwargs) if self.renewable else _SharedClients.raw_put(self, *args, **kwargs)

    def raw_delete(self, *args: Any, **kwargs: Any) -> Any:
        return super().raw_delete(*args, **kwargs) if self.renewable else _SharedClients.raw_delete(self, *args,
                                                                                                   **kwargs)

    async def a_raw_get(self, *args: Any, **kwargs: Any) -> Any:
        return await (super().a_raw_get if self.renewable else ConnectionManager.a_raw_get.__get__(self))(*args,
                                                                                                       **kwargs)

    async def a_raw_post(self, *args: Any, **kwargs: Any) -> Any:
        return await (super().a_raw_post if self.renewable else ConnectionManager.a_raw_post.__get__(self))(*args,
                                                                                                         **kwargs)
