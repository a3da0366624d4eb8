"""The gateway's transport (python-keycloak underneath): what it adds to it, shown on the real Keycloak — a person's
token sent as given, one token renewal for a batch, a write never sent twice, the process's clients shared, the
async batches on one loop, Keycloak's answers named by meaning."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from dataclasses import replace

import pytest

from provisioner.errors import Conflict, Forbidden, KeycloakRejected, KeycloakUnavailable, SessionExpired
from provisioner.gateway import Gateway
from provisioner.gateway.transport import count_calls


def test_a_persons_refused_token_is_answered_at_once_not_resent(settings, realm):
    """python-keycloak alone "renews" a token it did not obtain by resending it: two requests per refusal."""
    gw = Gateway.with_token(settings, "not-a-token")
    calls = count_calls()
    with pytest.raises(SessionExpired):
        gw.get_realm()
    assert calls() == 1


def test_the_threads_of_a_batch_share_one_token_renewal(settings, service_gw):
    gw = Gateway.as_service_account(settings)
    gw.get_realm()  # a first token
    openid = gw._conn.keycloak_openid
    asked, token = [], openid.token
    openid.token = lambda *a, **k: asked.append(1) or token(*a, **k)  # count the token requests, made for real
    try:
        gw._conn.token = {**gw._conn.token, "expires_in": 0}  # due now
        gw.at_once(*[gw.get_realm] * 8, workers=8)
        assert len(asked) == 1
    finally:
        openid.token = token


def test_gateways_share_the_process_http_clients(settings, service_gw):
    """The portal builds a gateway per page for the delegate's own token: no new clients (a TLS context each)."""
    a, b = Gateway.with_token(settings, "x"), Gateway.with_token(settings, "y")
    assert a._conn._s is b._conn._s is service_gw._conn._s
    assert a._conn.async_s is service_gw._conn.async_s


def test_keycloaks_answers_are_named_by_meaning(settings, service_gw, admin_gw, realm):
    assert service_gw.user(str(uuid.uuid4())) is None  # a missing object: None for a read
    login = f"t{uuid.uuid4().hex[:8]}"
    user_id = service_gw.create_user({"username": login, "enabled": True})
    try:
        with pytest.raises(Conflict):
            service_gw.create_user({"username": login, "enabled": True})
        with pytest.raises(KeycloakRejected) as rejected:
            service_gw.set_password(user_id, "abc 12", temporary=False)  # a space: refused by the policy
        assert rejected.value.code == "invalidPasswordRegexPatternMessage"
        auditor = Gateway.as_auditor(replace(settings, auditor_client_secret="dev-auditor-secret"))
        with pytest.raises(Forbidden):
            auditor.delete_user(user_id)
    finally:
        admin_gw.delete_user(user_id)
    closed = replace(settings, keycloak_url=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(KeycloakUnavailable):
        Gateway.with_token(closed, "x").get_realm()


def test_batches_run_on_one_loop_whoever_awaits_them(settings, service_gw):
    """python-keycloak's async client belongs to the event loop that first used it: every batch runs on the
    process's loop, from plain code or from another loop, again and again."""
    for _ in range(2):
        assert service_gw.get_many(["/groups/count", "/users/count"])[1] >= 0

    async def from_another_loop() -> list:
        return await service_gw.post_each("/groups", [{"name": f"t{uuid.uuid4().hex[:8]}"}], concurrency=1)

    for _ in range(2):
        [created] = asyncio.run(from_another_loop())
        assert isinstance(created, str) and created
        service_gw.delete_group(created)


def test_a_write_is_never_sent_twice(settings):
    """python-keycloak's default resends a POST after a read timeout (a user created twice); ours never does."""
    received, server = [], socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def swallow() -> None:  # read each request, never answer
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            received.append(conn.recv(65536))

    threading.Thread(target=swallow, daemon=True).start()
    silent = replace(settings, keycloak_url=f"http://127.0.0.1:{server.getsockname()[1]}")
    gw = Gateway.with_token(silent, "x")
    gw._conn.timeout = 1
    try:
        with pytest.raises(KeycloakUnavailable):
            gw.post("/users", {"username": "once"})
        assert len(received) == 1
    finally:
        server.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_only_the_gateway_talks_to_keycloak():
    """python-keycloak (``import keycloak``) and raw HTTP to Keycloak stay under provisioner/gateway/."""
    import re

    from provisioner.settings import PROJECT_ROOT

    outside = [p for root in ("provisioner", "portal", "teleservice") for p in (PROJECT_ROOT / root).rglob("*.py")
               if "gateway" not in p.parts and re.search(r"^\s*(from|import) keycloak\b", p.read_text(), re.M)]
    assert outside == []


def test_threads_asking_first_at_once_get_one_loop_and_one_client():
    """The audit's threads start their first batches together: each process must make one loop (and one async
    client), or a client is used from two loops and fails (« bound to a different event loop »)."""
    import subprocess
    import sys

    from provisioner.settings import PROJECT_ROOT

    script = ("import os, threading\n"
              "from provisioner.gateway import connection\n"
              "start = threading.Barrier(16); seen = []\n"
              "def ask():\n"
              "    start.wait(); seen.append((id(connection._loop(os.getpid())), id(connection._clients(os.getpid())[1])))\n"
              "threads = [threading.Thread(target=ask) for _ in range(16)]\n"
              "[t.start() for t in threads]; [t.join() for t in threads]\n"
              "print(len(set(seen)))\n")
    for _ in range(3):  # a fresh process each time: the first ask is the one that races
        out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.strip() == "1", out.stderr
