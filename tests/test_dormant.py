"""Dormant teleservice users (provisioner/dormant.py): no login for DORMANT_DAYS, disabled by `provisioner dormant
--apply`, their delegate told and able to enable them again. Accounts are laid out with Keycloak's partialImport,
which keeps the creation time we give (an account "created 200 days ago"); logins are real."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from click.testing import CliRunner

from provisioner import dormant
from provisioner.cli import cli
from provisioner.context import Context
from provisioner.errors import ConfigError
from provisioner.tenancy import Actor
from provisioner.trail import events
from provisioner.users import enable_user
from tests.oidc_flow import password_login

pytestmark = pytest.mark.usefixtures("password_grant_client")
PASSWORD = "Dorm2026"
DAY_MS = 86400 * 1000


def lay_out(admin_gw, numero: str, days_ago: int, enabled: bool = True, teleservice: str = "compte-adherent",
            role: str = "utilisateur") -> str:
    login = f"dorm{uuid.uuid4().hex[:8]}"
    admin_gw.partial_import({"ifResourceExists": "FAIL", "users": [{
        "username": login, "enabled": enabled, "email": f"{login}@atlas.ma", "firstName": "Test", "lastName": "Dormant",
        "createdTimestamp": int(time.time() * 1000) - days_ago * DAY_MS,
        "attributes": {"adherent": [numero], "teleservice": [teleservice]},
        "groups": [f"/adherents/{numero}/{teleservice}/{role}"],
        "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]}]})
    return login


@pytest.fixture(scope="module")
def company(make_adherent, admin_gw, settings):
    n = make_adherent()
    logins = {"old": lay_out(admin_gw, n, 200), "old_but_active": lay_out(admin_gw, n, 200),
              "recent": lay_out(admin_gw, n, 3), "old_disabled": lay_out(admin_gw, n, 400, enabled=False)}
    assert password_login(settings, logins["old_but_active"], PASSWORD).status_code == 200  # a LOGIN event, now
    return n, logins


def mine(found, numero: str) -> list[str]:
    return [d.login for d in found if d.adherent == numero]


def test_only_teleservice_users_without_a_recent_login_are_dormant(admin_gw, service_gw, services, company, spec):
    n, logins = company
    created = admin_gw.user_rep(admin_gw.user_by_username(logins["old"]).id)["createdTimestamp"]
    assert created < (time.time() - 199 * 86400) * 1000  # partialImport kept the creation time we gave
    found = dormant.find(service_gw, services, spec.events.retention_days, days=180)
    assert mine(found, n) == [logins["old"]]  # not the one who logged in, nor the recent, nor the disabled one
    assert n not in {d.login for d in found}  # delegates are never listed (their account was made just now anyway)
    # A shorter threshold catches the 3-day-old account too, oldest activity first; a login today still counts.
    assert mine(dormant.find(service_gw, services, 180, days=2), n) == [logins["old"], logins["recent"]]


def test_the_realm_must_remember_logins_longer_than_the_threshold(service_gw, services):
    with pytest.raises(ConfigError, match="DORMANT_DAYS"):
        dormant.find(service_gw, services, retention=90, days=180)


def test_apply_disables_them_tells_the_delegate_and_the_delegate_can_enable_again(
        admin_gw, service_gw, services, company, spec, smtp_server, settings, test_env):
    n, logins = company
    runner = CliRunner()
    dry = runner.invoke(cli, ["--json", "dormant"], env=test_env)
    assert dry.exit_code == 3, dry.output
    assert logins["old"] in [d["login"] for d in json.loads(dry.stdout)["dormant"]]
    assert admin_gw.user_by_username(logins["old"]).enabled  # a dry run changes nothing

    applied = runner.invoke(cli, ["--json", "dormant", "--apply"], env=test_env)
    assert applied.exit_code == 0, applied.output
    assert logins["old"] in [d["login"] for d in json.loads(applied.stdout)["disabled"]]
    user = admin_gw.user_by_username(logins["old"])
    assert not user.enabled and user.attr(dormant.MARK)
    assert password_login(settings, logins["old"], PASSWORD).status_code != 200
    assert admin_gw.user_by_username(logins["old_but_active"]).enabled
    entry = events(services.db, adherent=n, action="user.disable_dormant")[0]
    assert (entry.target, entry.actor_role, entry.outcome) == (logins["old"], "system", "ok")
    delegate_email = admin_gw.user_by_username(n).email
    (mail,) = [b for b in smtp_server.bodies(delegate_email) if "désactivés par sécurité" in b]
    assert logins["old"] in mail and logins["old_but_active"] not in mail

    again = runner.invoke(cli, ["--json", "dormant"], env=test_env)  # nothing left of this adherent
    assert logins["old"] not in [d["login"] for d in json.loads(again.stdout)["dormant"]]

    enable_user(Context(service_gw, services, Actor.delegate(n), n), logins["old"])  # still needed: the delegate decides
    user = admin_gw.user_by_username(logins["old"])
    assert user.enabled and user.attr(dormant.MARK) is None
    assert password_login(settings, logins["old"], PASSWORD).status_code == 200
