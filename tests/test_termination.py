"""The end of a subscription (résiliation, provisioner/termination.py): everything disabled, the delegation gone,
reversible for the grace period, then purged — accounts and groups deleted, our records anonymised, the trail kept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from devstack.builders import DELEGATE_PASSWORD, USER_PASSWORD, make_user, new_user
from provisioner import permissions
from provisioner.cli import cli
from provisioner.context import Context
from provisioner.db import delegate_history, secret_questions, subscriptions
from provisioner.errors import RuleViolation, TenantViolation
from provisioner.tenancy import Actor
from provisioner.termination import due_for_purge, purge_adherent, reinstate_adherent, terminate_adherent
from provisioner.trail import events
from provisioner.users import create_user
from provisioner.teleservice_users import disable_user
from tests.oidc_flow import password_login

pytestmark = pytest.mark.usefixtures("password_grant_client")
LATER = timedelta(days=31)  # past the 30-day grace period


def ready(gw, login: str) -> None:
    user = gw.user_by_username(login)
    gw.update_user(user.id, {**gw.user_rep(user.id), "requiredActions": []})


def delegation_exists(admin_gw, numero: str) -> bool:
    return admin_gw.authz_find("permission", permissions.permission_name(numero)) is not None


def test_a_termination_cuts_everyone_off_and_can_be_undone_within_the_grace_period(
        service_gw, services, agent, make_adherent, settings, admin_gw):
    n = make_adherent()
    me = Actor.delegate(n)
    active = make_user(service_gw, services, me, n, "eliquidation")
    departed = make_user(service_gw, services, me, n, "compte-adherent")
    ready(service_gw, active.login)
    disable_user(Context(service_gw, services, me, n), departed.login)
    assert delegation_exists(admin_gw, n)

    with pytest.raises(TenantViolation):  # a signed letter goes through CIMR
        terminate_adherent(Context(service_gw, services, me, n), "Lettre du 01/12")
    assert terminate_adherent(Context(service_gw, services, agent, n), "Lettre du 01/12") == 2  # delegate + active user
    for username, password in ((n, DELEGATE_PASSWORD), (active.login, USER_PASSWORD)):
        assert password_login(settings, username, password).json()["error_description"] == "Account disabled"
    assert not delegation_exists(admin_gw, n)  # a delegate's token still alive can no longer touch anything
    with pytest.raises(RuleViolation):
        create_user(Context(service_gw, services, me, n), new_user())
    entry = events(services.db, adherent=n, action="adherent.terminate")[0]
    assert entry.detail == "Lettre du 01/12" and entry.after["disabled"] == 2

    assert reinstate_adherent(Context(service_gw, services, agent, n)) == 2
    assert delegation_exists(admin_gw, n)
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code == 200
    assert password_login(settings, active.login, USER_PASSWORD).status_code == 200
    assert not service_gw.user_by_username(departed.login).enabled  # disabled before: stays disabled
    assert not [f for f in permissions.check_delegation(admin_gw, n)]


def test_after_the_grace_period_it_cannot_be_undone_and_the_purge_erases_the_people(
        service_gw, services, agent, make_adherent, admin_gw):
    n = make_adherent()
    user = make_user(service_gw, services, Actor.delegate(n), n, "compte-adherent")
    user_id = service_gw.user_by_username(user.login).id
    terminate_adherent(Context(service_gw, services, agent, n), "Lettre du 02/12")
    now = datetime.now(timezone.utc)
    with pytest.raises(RuleViolation) as early:
        purge_adherent(Context(service_gw, services, agent, n), now=now)
    assert "peut encore être annulée" in early.value.message.fr
    assert n not in due_for_purge(service_gw, services, now) and n in due_for_purge(service_gw, services, now + LATER)
    with pytest.raises(RuleViolation) as late:
        reinstate_adherent(Context(service_gw, services, agent, n), now=now + LATER)
    assert "ne peut plus être annulée" in late.value.message.fr

    purged = purge_adherent(Context(service_gw, services, agent, n), now=now + LATER)
    assert (purged.users, purged.groups) == (2, 2)  # the delegate and the user; /adherents/n and /delegates/n
    assert service_gw.user_by_username(n) is None and service_gw.user_by_username(user.login) is None
    assert admin_gw.group_by_path(f"/adherents/{n}") is None and admin_gw.group_by_path(f"/delegates/{n}") is None
    assert not delegation_exists(admin_gw, n)
    with services.db.connect() as conn:
        form = conn.execute(select(subscriptions.c.form).where(subscriptions.c.adherent == n)).scalar_one()
        terms = conn.execute(select(delegate_history).where(delegate_history.c.adherent == n)).all()
        questions = conn.execute(select(secret_questions).where(secret_questions.c.user_id == user_id)).all()
    assert form == {"company": {"numero": n, "raison_sociale": "Atlas Textile SARL"}, "erased": True}
    assert "Bennani" not in repr(form) and all(t.nom == "[effacé]" and t.email is None for t in terms)
    assert questions == []
    kept = {e.action for e in events(services.db, adherent=n)}  # the trail is kept whole
    assert {"subscription.submit", "user.create", "adherent.terminate", "adherent.purge"} <= kept


def test_the_cli_and_the_audit_know_a_terminated_adherent(test_env, service_gw, services, agent, make_adherent,
                                                          cli_agent, admin_gw):
    n = make_adherent()
    runner = CliRunner()
    no_reason = runner.invoke(cli, ["adherent", "terminate", n, "--as", cli_agent], env=test_env)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    done = runner.invoke(cli, ["adherent", "terminate", n, "--reason", "Lettre du 03/12", "--as", cli_agent],
                         env=test_env)
    assert done.exit_code == 0 and "terminated: 1 account(s) disabled" in done.output, done.output
    assert n not in permissions.adherent_numbers(admin_gw)  # no "delegation missing" for it: removed on purpose
    both = runner.invoke(cli, ["adherent", "purge", n, "--due", "--as", cli_agent], env=test_env)
    assert both.exit_code == 2 and "either NUMERO or --due" in both.output
    refused = runner.invoke(cli, ["adherent", "purge", n, "--as", cli_agent], env=test_env)
    assert refused.exit_code != 0 and service_gw.user_by_username(n) is not None
    due = runner.invoke(cli, ["--json", "adherent", "purge", "--due", "--as", cli_agent],
                        env={**test_env, "TERMINATION_GRACE_DAYS": "0"})
    assert due.exit_code == 0 and n in due.output, due.output
    assert service_gw.user_by_username(n) is None
