"""The portal's metrics (/metrics, Prometheus text, restricted) and logs (JSON lines, no password, token or code)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from devstack.builders import DELEGATE_PASSWORD, login
from portal import create_app, observability
from portal.sessions import _hash, _serializer, portal_sessions
from provisioner.errors import ConfigError
from provisioner.settings import Settings
from tests.portal_support import csrf_token, login_client

TOKEN = "metrics-token-for-the-tests"


def app_with(tmp_path, **env):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'cimr.db'}", "KEYCLOAK_URL":
                                  "http://127.0.0.1:9", "PATH": "", **env})
    return create_app({"SETTINGS": settings, "CONFIGURE_LOGGING": False})


@pytest.fixture
def captured_logs():
    """Our log handler, as in production (JSON, redaction), writing to a buffer; removed afterwards."""
    buf = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = observability.configure_logging(Settings.from_env({"LOG_LEVEL": "DEBUG", "PATH": ""}), buf)
    yield buf
    root.removeHandler(handler)
    root.setLevel(level)


def test_metrics_answer_loopback_in_prometheus_text(tmp_path):
    client = app_with(tmp_path).test_client()
    assert client.get("/").status_code == 200
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain; version=")
    body = resp.get_data(as_text=True)
    assert 'cimr_portal_requests_total{endpoint="public.home",method="GET",status="200"} 1.0' in body
    assert 'cimr_portal_request_duration_seconds_count{endpoint="public.home"} 1.0' in body
    assert "cimr_portal_database_up 1.0" in body and "cimr_mail_outbox_unsent 0.0" in body
    assert "process_resident_memory_bytes" in body
    assert 'endpoint="metrics"' not in body  # scrapes are not counted as traffic


@pytest.mark.parametrize("environ, headers", [
    ({"REMOTE_ADDR": "203.0.113.9"}, {}),                       # the Internet
    ({"REMOTE_ADDR": "10.1.2.3"}, {}),                          # another host of the network
    ({}, {"X-Forwarded-For": "203.0.113.9"}),                   # relayed by a proxy on this host
    ({}, {"Forwarded": "for=203.0.113.9"}),
])
def test_metrics_are_not_shown_to_anyone_else_without_a_token(tmp_path, environ, headers):
    resp = app_with(tmp_path).test_client().get("/metrics", environ_base=environ, headers=headers)
    assert resp.status_code == 404 and "cimr_portal" not in resp.get_data(as_text=True)


def test_with_a_token_metrics_need_it_from_everywhere(tmp_path):
    client = app_with(tmp_path, PORTAL_METRICS_TOKEN=TOKEN).test_client()
    assert client.get("/metrics").status_code == 401  # loopback too
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-of-the-same-size"}).status_code == 401
    resp = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                      headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "10.9.9.9"})
    assert resp.status_code == 200 and "cimr_portal_database_up" in resp.get_data(as_text=True)
    with pytest.raises(ConfigError, match="PORTAL_METRICS_TOKEN"):
        Settings.from_env({"PORTAL_METRICS_TOKEN": "short"})


def test_each_request_is_one_json_line_without_its_query_string(tmp_path, captured_logs):
    client = app_with(tmp_path).test_client()
    client.get("/auth/callback?code=c0de-that-must-not-be-logged&state=s7ate")
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    access = [r for r in lines if r["logger"] == "portal.access"]
    assert access and access[-1]["path"] == "/auth/callback" and access[-1]["endpoint"] == "auth.callback"
    assert {"time", "level", "status", "duration_ms", "method"} <= access[-1].keys()
    assert "c0de-that-must-not-be-logged" not in captured_logs.getvalue()


def test_secrets_in_any_record_are_blanked(captured_logs):
    logging.getLogger("some.library").warning(
        "POST token body client_secret=s3cr3t-value&code=abc123 Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2ln",
        extra={"password": "Deleg2026"})
    out = captured_logs.getvalue()
    for secret in ("s3cr3t-value", "abc123", "eyJhbGciOi", "Deleg2026"):
        assert secret not in out
    assert json.loads(out.splitlines()[-1])["password"] == "[redacted]"


def test_a_login_and_a_user_creation_log_no_secret(portal, make_adherent, captured_logs, settings):
    n = make_adherent()
    client = login_client(portal, n, DELEGATE_PASSWORD)
    new_login, new_password, answers = login("obs"), "Obsv2026", ("Ouarzazate", "Filou")
    page = "/delegue/t/compte-adherent/nouveau"
    token = csrf_token(client, page)
    created = client.post(page, data={
        "csrf_token": token, "login": new_login, "nom": "Journal", "prenom": "Jamal", "email": "j.journal@atlas.ma",
        "civilite": "M", "password": new_password, "password_confirm": new_password,
        "question1": "Ville de naissance de votre père ?", "answer1": answers[0],
        "question2": "Nom de votre premier animal de compagnie ?", "answer2": answers[1]})
    assert created.status_code == 302, created.get_data(as_text=True)[:300]

    # Everything the session holds that must stay secret: its id, the tokens Keycloak gave the portal.
    sid = client.get_cookie("cimr_portal").value
    engine = portal.app.extensions["cimr"].engine
    with engine.connect() as conn:
        data = _serializer.loads(conn.execute(portal_sessions.select().where(
            portal_sessions.c.id_hash == _hash(sid))).one().data)
    secrets = {DELEGATE_PASSWORD, new_password, *answers, sid, token, data["tokens"]["access_token"],
               data["tokens"]["refresh_token"], data["id_token"], settings.portal_client_secret,
               settings.provisioner_client_secret, settings.delegations_client_secret}

    out = captured_logs.getvalue()
    records = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object
    assert any(r["message"] == "login" and r.get("user") == n for r in records)
    assert any(r.get("path") == page and r.get("method") == "POST" and r.get("status") == 302 for r in records)
    leaked = [s for s in secrets if s and s in out]
    assert not leaked, f"{len(leaked)} secret(s) in the logs"


def test_under_gunicorn_with_two_workers_metrics_add_up_every_workers_requests(tmp_path):
    """The production shape: gunicorn, several workers, PROMETHEUS_MULTIPROC_DIR; one scrape sees every request."""
    import os
    import subprocess
    import sys
    import time

    import requests

    from devstack.ports import free_port

    port, metrics_dir, log = free_port(), tmp_path / "metrics", tmp_path / "portal.log"
    metrics_dir.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": f"sqlite:///{tmp_path / 'cimr.db'}",
           "KEYCLOAK_URL": "http://127.0.0.1:9", "PORTAL_URL": f"http://127.0.0.1:{port}",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                 "portal:create_app()"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/metrics", timeout=15)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.3)
        sent, pids = 0, set()
        while len(pids) < 2 and sent < 300:  # until both workers have answered some
            with requests.Session() as s:  # a new connection each time: either worker may take it
                assert s.get(base + "/", timeout=10).status_code == 200
            sent += 1
            if sent % 10 == 0:
                pids = {json.loads(line)["pid"] for line in log.read_text().splitlines()
                        if line.startswith("{") and '"portal.access"' in line}
        assert len(pids) == 2, "one worker answered everything"
        body = requests.get(base + "/metrics", timeout=10).text
        assert f'cimr_portal_requests_total{{endpoint="public.home",method="GET",status="200"}} {float(sent)}' in body
        assert "cimr_portal_database_up 1.0" in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# What each page may cost Keycloak, per request (docs/benchmarks.md, "Every page"). A delegate's page makes one read
# of the adherent's tree (our extension): the listing, the E@syPaiement banner, the categories and a user's lockout
# state share it. Before: 4, 4 and 10 calls for the home, a tab and a user's page, each part reading what it needed.
CALL_BUDGET = {
    "public.home": 0, "public.subscribe": 0, "public.letter": 0, "reset.start": 0,
    "delegate.dashboard": 1, "delegate.tab": 1, "delegate.create": 1,
    # a validator's page also reads whether it enrolled its second factor (its credentials): 2
    "delegate.detail": 2, "delegate.edit": 1, "delegate.journal": 1, "delegate.find_logins": 1,
    "delegate.bulk_import": 1, "review.delegate_home": 1, "public.letter@delegate": 1,
    "agent.pending": 0, "agent.subscription": 0, "agent.adherent": 2, "agent.replace": 2, "agent.unsent_mail": 0,
    "auditor.home": 0, "auditor.report": 90, "review_audit.campaigns": 0, "review_audit.campaign": 0,
}


@pytest.fixture(scope="module")
def world(portal, service_gw, services, agent, staff):
    from devstack.portal_pages import build_world
    from tests.portal_support import auditor_secret

    with auditor_secret(portal):
        yield build_world(service_gw, services, agent, staff["auditor"])


def test_every_page_stays_within_its_keycloak_call_budget(portal, staff, world, captured_logs):
    from devstack.portal_pages import agent_pages, auditor_pages, delegate_pages, public_pages
    from devstack.builders import STAFF_PASSWORD

    people = [("", portal.client(), public_pages()),
              ("@delegate", login_client(portal, world.numero, world.password), delegate_pages(world)),
              ("", login_client(portal, staff["agent"], STAFF_PASSWORD), agent_pages(world)),
              ("", login_client(portal, staff["auditor"], STAFF_PASSWORD), auditor_pages(world))]
    seen = set()
    for suffix, client, paths in people:
        for path in paths:
            resp = client.get(path)
            assert resp.status_code in (200, 404), (path, resp.status_code)
            seen.add(path.split("?")[0])
    records = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    spent: dict[str, int] = {}
    for r in records:
        if r.get("message") == "request" and r.get("path") in seen:
            key = r["endpoint"] + ("@delegate" if r["endpoint"] == "public.letter" and r.get("user") else "")
            spent[key] = max(spent.get(key, 0), r["keycloak_calls"])
    over = {page: (calls, CALL_BUDGET.get(page)) for page, calls in spent.items()
            if calls > CALL_BUDGET.get(page, 0)}
    print({page: calls for page, calls in sorted(spent.items())})
    assert set(spent) >= set(CALL_BUDGET) - {"public.subscribe", "reset.start"}, set(CALL_BUDGET) - set(spent)
    assert not over, over
    metrics = portal.client().get("/metrics").get_data(as_text=True)
    assert 'cimr_portal_keycloak_calls_count{endpoint="delegate.dashboard"}' in metrics
