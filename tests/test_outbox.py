"""SMTP down during an action: the action holds, its mail waits in the outbox with the error (the agent sees it
« non envoyé »), and goes out exactly once when the server is back — through the agent's « Renvoyer », the cron
verb `provisioner mail flush`, or the next mail sent. Against the real SMTP sink (devstack/smtp_sink.py), stopped and
started here on a port of its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD, numero, subscription_form
from devstack.ports import free_port
from portal import create_app
from provisioner import outbox
from provisioner.cli import cli
from provisioner.core import Services
from provisioner.db import mail_outbox
from provisioner.mailer import notice_mail
from provisioner.settings import PROJECT_ROOT, Settings
from provisioner.subscriptions import get_subscription, submit_subscription
from provisioner.tenancy import Actor
from tests.conftest import MailBox
from tests.portal_support import Portal, csrf_token, login_client, text


class Sink:
    """devstack/smtp_sink.py in its own process, on a fixed port, that a test stops and starts."""

    def __init__(self, directory, port: int):
        self.box, self.port, self.proc = MailBox(directory, port), port, None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "devstack" / "smtp_sink.py"),
                                      str(self.box.directory), str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", "the SMTP sink did not start"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    sink = Sink(tmp_path_factory.mktemp("outbox-mail"), free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def sink_down(sink):
    """The SMTP server is down for the test's first part; the test starts it again (or this does at the end)."""
    sink.stop()
    yield sink
    if sink.proc is None:
        sink.start()


# --- the outbox alone: no Keycloak needed ------------------------------------------------------------------------

@pytest.fixture
def lone_services(tmp_path, sink) -> Services:
    return Services.from_settings(Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'cimr.db'}",
                                                     "SMTP_PORT": str(sink.port), "PATH": ""}))


def test_a_mail_the_server_did_not_take_waits_with_its_error_then_goes_exactly_once(lone_services, sink_down):
    to = f"delegue.{numero()}@atlas-textile.ma"
    mail = outbox.post(lone_services, notice_mail(to, "12345678", "Bonjour", "Hello"), "12345678",
                       Actor.agent("agent.x"))
    assert not mail.sent and mail.attempts == 1 and "unreachable" in mail.last_error
    assert [m.id for m in outbox.unsent(lone_services)] == [mail.id]
    assert outbox.flush(lone_services).unsent == 1  # still down: still waiting, attempts counted
    assert outbox.get(lone_services, mail.id).attempts == 2

    sink_down.start()
    result = outbox.flush(lone_services)
    assert result.sent == (mail.id,) and result.unsent == 0
    assert outbox.flush(lone_services).sent == ()  # nothing twice
    assert len(sink_down.box.messages(to=to)) == 1
    done = outbox.get(lone_services, mail.id)
    assert done.sent and done.last_error is None and done.attempts == 3


def test_the_next_mail_sent_also_sends_the_ones_waiting(lone_services, sink_down):
    first = f"a.{numero()}@atlas-textile.ma"
    waiting = outbox.post(lone_services, notice_mail(first, "1", "un", "one"), "1", None)
    assert not waiting.sent
    sink_down.start()
    second = f"b.{numero()}@atlas-textile.ma"
    assert outbox.post(lone_services, notice_mail(second, "1", "deux", "two"), "1", None).sent
    assert outbox.get(lone_services, waiting.id).sent  # opportunistic retry
    assert len(sink_down.box.messages(to=first)) == 1 and len(sink_down.box.messages(to=second)) == 1


def test_a_mail_leased_by_another_sender_is_not_sent_twice(lone_services, sink):
    """Cron and the portal retrying at once: the one holding the lease sends, the other skips."""
    from datetime import datetime, timedelta, timezone
    from sqlalchemy import update

    to = f"c.{numero()}@atlas-textile.ma"
    with lone_services.db.begin() as conn:
        mail_id = outbox.queue(conn, notice_mail(to, "1", "trois", "three"), "1", None)
        conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(
            claimed_until=datetime.now(timezone.utc) + timedelta(minutes=1)))
    assert outbox.flush(lone_services).sent == ()
    assert sink.box.messages(to=to) == []


# --- an agent approves while the SMTP server is down (real Keycloak, the portal, the CLI) -------------------------

@pytest.fixture(scope="module")
def outbox_env(test_env, sink) -> dict:
    return {**test_env, "SMTP_PORT": str(sink.port)}


@pytest.fixture(scope="module")
def sink_portal(portal, outbox_env) -> Portal:
    """The portal as in production, sending through the stoppable sink (same URL and database as `portal`)."""
    settings = Settings.from_env({**outbox_env, "PORTAL_URL": portal.url,
                                  "PORTAL_SECRET_KEY": "portal-tests-secret-key"})
    return Portal(portal.url, create_app({"SETTINGS": settings, "CONFIGURE_LOGGING": False}), settings)


@pytest.fixture(scope="module")
def agent_client(sink_portal, staff):
    return login_client(sink_portal, staff["agent"], STAFF_PASSWORD)


def test_approval_with_smtp_down_holds_the_agent_sees_the_mail_unsent_and_resends_it_once(
        sink_portal, agent_client, service_gw, services, sink_down):
    form = subscription_form()
    sub = submit_subscription(service_gw, services, form)
    page = f"/agent/abonnements/{sub.id}"
    paper = agent_client.post(f"{page}/papier", data={"csrf_token": csrf_token(agent_client, page)})
    assert paper.status_code == 302  # the signed form arrived (approval needs it)
    resp = agent_client.post(f"{page}/valider", data={"csrf_token": csrf_token(agent_client, page)},
                             follow_redirects=True)
    assert resp.status_code == 200
    assert "validé" in text(resp) and f"Courriel non envoyé à {form.delegate.email}" in text(resp)
    # The approval holds: approved, the delegate enabled and able to log in.
    assert get_subscription(services, sub.id).status == "approved"
    assert service_gw.user_by_username(sub.adherent).enabled

    listing = agent_client.get("/agent/courriels")
    mine = outbox.unsent(services, sub.adherent)
    assert len(mine) == 1 and mine[0].recipient == form.delegate.email
    assert "Courriel non envoyé" in text(listing) and form.delegate.email in text(listing)
    assert "unreachable" in text(listing) and "Renvoyer" in text(listing)
    resend = f"/agent/courriels/{mine[0].id}/renvoyer"
    assert agent_client.post(resend).status_code == 400  # no CSRF token: refused, nothing sent
    assert outbox.get(services, mine[0].id).attempts == 1

    sink_down.start()
    done = agent_client.post(resend, data={"csrf_token": csrf_token(agent_client, "/agent/courriels")},
                             follow_redirects=True)
    assert f"Courriel envoyé à {form.delegate.email}" in text(done)
    assert form.delegate.email not in text(agent_client.get("/agent/courriels"))
    again = agent_client.post(resend, data={"csrf_token": csrf_token(agent_client, "/agent/courriels")},
                              follow_redirects=True)
    assert "déjà été envoyé" in text(again)
    mails = sink_down.box.messages(to=form.delegate.email)
    assert len(mails) == 1 and sub.adherent in mails[0]["Subject"]
    assert DELEGATE_PASSWORD not in mails[0].get_content()
    # The agent's resend is in the trail under their name.
    from provisioner.trail import events
    assert [(e.actor_role, e.outcome) for e in events(services.db, action="mail.resend",
                                                       target=f"mail:{mine[0].id}")] == [("agent", "refused"),
                                                                                         ("agent", "ok")]


def test_cli_approval_with_smtp_down_warns_and_mail_flush_sends_once(outbox_env, cli_agent, service_gw, services,
                                                                    sink_down):
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, list(args), env=outbox_env, catch_exceptions=False)

    form = subscription_form()
    sub = submit_subscription(service_gw, services, form)
    assert run("subscription", "receive", str(sub.id), "--as", cli_agent).exit_code == 0  # the signed form arrived
    out = run("subscription", "approve", str(sub.id), "--as", cli_agent)
    assert out.exit_code == 0 and f"adherent {sub.adherent} is active" in out.stdout
    assert "warning: mail" in out.stderr and form.delegate.email in out.stderr and "mail flush" in out.stderr
    listed = run("--json", "mail", "list", "--adherent", sub.adherent)
    assert listed.exit_code == 3 and [m["recipient"] for m in json.loads(listed.stdout)] == [form.delegate.email]
    assert run("mail", "flush").exit_code == 3  # still down: exit 3, run again later

    sink_down.start()
    flushed = run("--json", "mail", "flush")
    assert flushed.exit_code == 0, flushed.output
    assert json.loads(flushed.stdout)["unsent"] == 0
    assert run("mail", "flush").exit_code == 0
    assert len(sink_down.box.messages(to=form.delegate.email)) == 1
    with services.db.connect() as conn:
        bodies = conn.execute(select(mail_outbox.c.body).where(mail_outbox.c.adherent == sub.adherent)).scalars()
        assert all(DELEGATE_PASSWORD not in b for b in bodies)  # no password in the outbox either
