"""The paper step: the signed and stamped form arrives, an agent records it (day, who), and only then may the
subscription be approved; CIMR's 48-hour promise counts from that arrival. Pure tests on a database of their own
first, then the real Keycloak through the provisioner, the CLI and the portal."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, inspect, text as sql, update

from devstack.builders import STAFF_PASSWORD, numero, subscription_form
from provisioner.cli import cli
from provisioner.context import Context
from provisioner.core import Services
from provisioner.db import Database, subscriptions
from provisioner.errors import RuleViolation, TenantViolation, ValidationError
from provisioner.settings import Settings
from provisioner.subscriptions import (approve_subscription, get_subscription, list_subscriptions, receive_paper,
                                       submit_subscription)
from provisioner.tenancy import Actor
from provisioner.trail import events
from tests.portal_support import csrf_token, login_client, text

AGENT = Actor.agent("agent.papier")
NOW = datetime.now(timezone.utc)


# --- pure: our database only ------------------------------------------------------------------------------------

@pytest.fixture
def lone(tmp_path) -> Services:
    return Services.from_settings(Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'cimr.db'}"}))


def pending(services: Services, submitted: datetime = NOW) -> int:
    """A pending subscription row, as submit_subscription leaves it (without Keycloak)."""
    with services.db.begin() as conn:
        return conn.execute(insert(subscriptions).values(
            adherent=numero(), status="pending", submitted_at=submitted,
            form=subscription_form().public())).inserted_primary_key[0]


def test_the_receipt_is_recorded_with_who_and_when_and_in_the_trail(lone):
    sub_id = pending(lone)
    sub = receive_paper(lone, AGENT, sub_id)
    assert sub.paper_recorded_by == "agent.papier"
    assert abs((sub.paper_received_at - datetime.now(timezone.utc)).total_seconds()) < 60
    assert sub.paper_age_hours is not None and sub.paper_age_hours < 0.1
    [ev] = events(lone.db, target=f"subscription:{sub_id}", action="subscription.receive_paper")
    assert (ev.actor, ev.outcome, ev.before) == ("agent.papier", "ok", {"paper_received_at": None})
    assert ev.after["paper_recorded_by"] == "agent.papier" and ev.after["paper_received_at"]


def test_an_earlier_day_counts_from_its_start_but_never_before_the_submission(lone):
    submitted = NOW - timedelta(days=4)
    sub = receive_paper(lone, AGENT, pending(lone, submitted), (NOW - timedelta(days=2)).date().isoformat())
    assert sub.paper_received_at == datetime.combine((NOW - timedelta(days=2)).date(), datetime.min.time(),
                                                     timezone.utc)
    same_day = receive_paper(lone, AGENT, pending(lone, submitted), submitted.date())
    assert same_day.paper_received_at == submitted


@pytest.mark.parametrize("day, message", [
    ("2026-13-01", "Date de réception invalide : écrivez-la AAAA-MM-JJ"),
    ("29/11/2026", "Date de réception invalide : écrivez-la AAAA-MM-JJ"),
    ((NOW + timedelta(days=2)).date().isoformat(), "La date de réception ne peut pas être dans le futur."),
    ((NOW - timedelta(days=10)).date().isoformat(), "Le papier ne peut pas être arrivé avant le dépôt du formulaire"),
])
def test_a_bad_date_of_receipt_is_refused_with_a_precise_message(lone, day, message):
    sub_id = pending(lone, NOW - timedelta(days=1))
    with pytest.raises(ValidationError) as exc:
        receive_paper(lone, AGENT, sub_id, day)
    assert message in exc.value.errors["date"].fr and exc.value.errors["date"].en
    assert get_subscription(lone, sub_id).paper_received_at is None
    assert events(lone.db, target=f"subscription:{sub_id}")[0].outcome == "refused"


def test_the_receipt_is_recorded_once_and_only_by_an_agent(lone):
    sub_id = pending(lone)
    for actor in (Actor.delegate("12345678"), Actor("auditor.x", "auditor")):
        with pytest.raises(TenantViolation):
            receive_paper(lone, actor, sub_id)
    receive_paper(lone, AGENT, sub_id)
    with pytest.raises(RuleViolation) as exc:
        receive_paper(lone, Actor.agent("agent.autre"), sub_id, NOW.date())
    assert exc.value.field == "paper" and "déjà enregistrée" in exc.value.message.fr
    assert "agent.papier" in exc.value.message.fr  # who recorded it first
    assert get_subscription(lone, sub_id).paper_recorded_by == "agent.papier"


def test_the_promise_counts_from_the_paper_not_from_the_submission(lone):
    sub_id = pending(lone, NOW - timedelta(hours=100))
    listed = {s.id: s for s in list_subscriptions(lone)}[sub_id]
    assert listed.age_hours >= 100 and listed.paper_age_hours is None and not listed.overdue  # no paper, no clock
    receive_paper(lone, AGENT, sub_id)
    assert not {s.id: s for s in list_subscriptions(lone)}[sub_id].overdue
    later = {s.id: s for s in list_subscriptions(lone, now=NOW + timedelta(hours=49))}[sub_id]
    assert later.overdue and later.paper_age_hours >= 48 and later.age_hours >= 149


OLD_SUBSCRIPTIONS = ("CREATE TABLE subscriptions (id INTEGER PRIMARY KEY, adherent VARCHAR(20) NOT NULL, "
                     "status VARCHAR(10) NOT NULL, form JSON NOT NULL, delegate_user_id VARCHAR(64), "
                     "submitted_at TIMESTAMP NOT NULL, decided_at TIMESTAMP, decided_by VARCHAR(120), reason TEXT)")


@pytest.fixture
def postgres_url(tmp_path):
    """A database on a PostgreSQL cluster of our own (devstack/postgres.py), started for the test."""
    import shutil
    import tempfile
    from pathlib import Path

    from devstack.postgres import PostgresServer
    from devstack.ports import free_port

    base = Path(tempfile.mkdtemp(prefix="cimr-pg-"))
    base.chmod(0o755)  # the server runs as `postgres` when we are root: it must reach its data directory
    server = PostgresServer(base / "data", free_port()).start()
    server.create_database("cimr_old")
    try:
        yield server.url("cimr_old")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_older_database_gets_the_new_nullable_columns_at_start(kind, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'old.db'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as conn:  # the subscriptions table as an earlier version created it, with a row
        conn.execute(sql(OLD_SUBSCRIPTIONS))
        conn.execute(sql("INSERT INTO subscriptions (id, adherent, status, form, submitted_at) "
                         "VALUES (1, '1234', 'pending', '{}', '2026-11-01 10:00:00')"))
    engine.dispose()
    db = Database(url)
    columns = {c["name"] for c in inspect(db.engine).get_columns("subscriptions")}
    assert {"paper_received_at", "paper_recorded_at", "paper_recorded_by"} <= columns
    with db.connect() as conn:
        row = conn.execute(sql("SELECT adherent, paper_received_at FROM subscriptions")).one()
    assert tuple(row) == ("1234", None)  # the row is kept, its paper not received
    services = Services.from_settings(Settings.from_env({"DATABASE_URL": url}))
    assert receive_paper(services, AGENT, 1).paper_recorded_by == "agent.papier"  # the new columns work
    Database(url).engine.dispose()  # a second start finds nothing to add
    db.engine.dispose()
    services.db.engine.dispose()


# --- the real Keycloak -------------------------------------------------------------------------------------------

def test_approval_is_refused_until_the_paper_is_recorded(service_gw, services, agent):
    sub = submit_subscription(service_gw, services, subscription_form())
    with pytest.raises(RuleViolation) as exc:
        approve_subscription(Context(service_gw, services, agent), sub.id)
    assert exc.value.field == "paper"
    assert exc.value.message.fr.startswith("Le formulaire signé et cacheté n'est pas encore enregistré comme reçu")
    assert exc.value.message.en.startswith("The signed and stamped form is not recorded as received yet")
    assert get_subscription(services, sub.id).status == "pending"
    assert not service_gw.user_by_username(sub.adherent).enabled  # nothing was done in Keycloak
    assert service_gw.group_by_path(f"/adherents/{sub.adherent}") is None
    assert events(services.db, target=f"subscription:{sub.id}", action="subscription.approve")[0].outcome == "refused"
    receive_paper(services, agent, sub.id)
    assert approve_subscription(Context(service_gw, services, agent), sub.id).status == "approved"


def test_cli_receive_then_approve(test_env, cli_agent, tmp_path, services):
    runner = CliRunner()
    run = lambda *args: runner.invoke(cli, list(args), env=test_env)  # noqa: E731
    n = numero()
    form = tmp_path / "form.json"
    form.write_text(json.dumps({k: v for k, v in subscription_form(n).public().items() if k != "categories"}))
    out = runner.invoke(cli, ["--json", "subscription", "submit", str(form)], env=test_env, input="Sahara26\nSahara26\n")
    assert out.exit_code == 0, out.output
    sub_id = str(json.loads(out.stdout)["id"])

    refused = run("subscription", "approve", sub_id, "--as", cli_agent)
    assert refused.exit_code == 1
    assert ("error: paper: Le formulaire signé et cacheté n'est pas encore enregistré comme reçu" in refused.stderr
            and "/ The signed and stamped form is not recorded as received yet" in refused.stderr), refused.stderr
    listed = run("subscription", "list")
    assert any(n in line and "no paper" in line for line in listed.stdout.splitlines()), listed.stdout

    bad = run("subscription", "receive", sub_id, "--date", "30/11/2026", "--as", cli_agent)
    assert bad.exit_code == 1 and "error: date: Date de réception invalide" in bad.stderr
    ok = run("--json", "subscription", "receive", sub_id, "--as", cli_agent)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["paper_recorded_by"] == cli_agent
    listed = run("subscription", "list")
    assert any(n in line and "paper 0.0 h" in line for line in listed.stdout.splitlines()), listed.stdout
    assert run("subscription", "approve", sub_id, "--as", cli_agent).exit_code == 0


@pytest.fixture(scope="module")
def agent_client(portal, staff):
    return login_client(portal, staff["agent"], STAFF_PASSWORD)


def test_the_agent_records_the_paper_in_the_portal_before_approving(agent_client, service_gw, services, staff):
    sub = submit_subscription(service_gw, services, subscription_form())
    with services.db.begin() as conn:  # deposited 30 hours ago
        conn.execute(update(subscriptions).where(subscriptions.c.id == sub.id).values(
            submitted_at=datetime.now(timezone.utc) - timedelta(hours=30)))
    listing = text(agent_client.get("/agent/"))
    row = listing[listing.index(sub.adherent):][:200]
    assert "déposé il y a 30 h" in row and "papier non reçu" in row, row

    page = f"/agent/abonnements/{sub.id}"
    assert "Formulaire signé et cacheté non reçu" in text(agent_client.get(page))
    refused = agent_client.post(f"{page}/valider", data={"csrf_token": csrf_token(agent_client, page)},
                                follow_redirects=True)
    assert "n'est pas encore enregistré comme reçu : enregistrez d'abord sa réception" in text(refused)
    assert get_subscription(services, sub.id).status == "pending"

    assert agent_client.post(f"{page}/papier", data={}).status_code == 400  # no CSRF token
    future = (date.today() + timedelta(days=3)).isoformat()
    bad = agent_client.post(f"{page}/papier", data={"csrf_token": csrf_token(agent_client, page),
                                                    "received_on": future})
    assert bad.status_code == 422 and "ne peut pas être dans le futur" in text(bad)
    assert f'value="{future}"' in bad.get_data(as_text=True)  # what was typed stays
    done = agent_client.post(f"{page}/papier", data={"csrf_token": csrf_token(agent_client, page),
                                                     "received_on": ""}, follow_redirects=True)
    assert "Réception du formulaire signé enregistrée" in text(done)
    assert f"enregistré par {staff['agent']}" in text(done)
    listing = text(agent_client.get("/agent/"))
    row = listing[listing.index(sub.adherent):][:200]
    assert "déposé il y a 30 h" in row and "papier reçu il y a moins d'1 h" in row, row

    ok = agent_client.post(f"{page}/valider", data={"csrf_token": csrf_token(agent_client, page)},
                           follow_redirects=True)
    assert "validé" in text(ok) and get_subscription(services, sub.id).status == "approved"
