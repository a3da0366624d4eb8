"""A Keycloak patch without downtime: the shape, started on the previous pin (PREVIOUS_KEYCLOAK_VERSION), is rolled
to the pin (KEYCLOAK_VERSION) node by node under delegates' pages and teleservice logins, as
`scripts/upgrade-keycloak` does (ProductionStack.roll_to): Keycloak's own `kc.sh update-compatibility check` first,
then each node drained, stopped gracefully, started on the new version, warmed and given traffic again before the
next one stops. Not one login or page fails; `provisioner plan` shows no drift after; the audit the same holdings.

This file runs first in the package (conftest.py orders it): the other tests then run on the pin.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from devstack.keycloak_server import KEYCLOAK_VERSION
from devstack.production import PREVIOUS_KEYCLOAK_VERSION
from provisioner.settings import PROJECT_ROOT
from tests.production.load import Load
from tests.production.test_production_backup import holdings


def without_logins(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "last_login"} for row in rows]


def server_version(stack, i: int) -> str:
    """The version node ``i`` says it runs (master admin, asked on the node itself)."""
    token = requests.post(f"{stack.node_url(i)}/realms/master/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin",
        "password": stack.secrets["KEYCLOAK_ADMIN_PASSWORD"]}).json()["access_token"]
    info = requests.get(f"{stack.node_url(i)}/admin/serverinfo", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    info.raise_for_status()
    return info.json()["systemInfo"]["version"]


def test_a_rolling_update_from_the_previous_pin_fails_no_login(stack, settings, spec, services, service_gw,
                                                               make_adherent):
    if stack.keycloak_version == KEYCLOAK_VERSION:
        pytest.skip(f"the pin is the previous version ({PREVIOUS_KEYCLOAK_VERSION}): nothing to roll")
    load = Load.prepared(stack, settings, spec, service_gw, services, make_adherent, delegates=1, logins=2)
    before = holdings(stack)
    load.begin()
    log: list[str] = []
    try:
        steps = stack.roll_to(KEYCLOAK_VERSION, log=log.append)
    finally:
        load.end()

    assert "Rolling Update is available" in log[0], log  # Keycloak's own verdict, before anything stopped
    assert load.count("login") >= 10 and load.count("page") >= 20, (load.count("login"), load.count("page"))
    assert not load.failed("login"), load.failed("login")
    assert not load.failed("page"), load.failed("page")
    # Each node in turn, the coordinator last; each step waited until the proxy sent traffic to the node it started
    # (and, before that, until it was warm) before stopping the next one.
    assert len(steps) == len(stack.nodes), steps
    assert all(s["ready_s"] <= s["warm_s"] <= s["routed_s"] for s in steps), steps
    assert {server_version(stack, i) for i in range(len(stack.nodes))} == {KEYCLOAK_VERSION}
    assert all(home.name.startswith(f"keycloak-{KEYCLOAK_VERSION}-") for home in stack.homes.values()), stack.homes

    plan = subprocess.run([sys.executable, "-m", "provisioner", "--json", "plan"], env=stack.env(), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]  # 3 would be drift
    assert json.loads(plan.stdout)["empty"], plan.stdout[-2000:]
    assert without_logins(holdings(stack)) == without_logins(before)  # the load's users logged in meanwhile
    print(f"\nrolled {PREVIOUS_KEYCLOAK_VERSION} -> {KEYCLOAK_VERSION}: {log[0]}; {load.count('login')} logins and "
          f"{load.count('page')} pages during the roll, none failed; steps {steps}")


def test_the_running_shape_answers_on_its_control_socket(stack, capsys):
    """`scripts/upgrade-keycloak` talks to the process that owns the nodes through this socket (devstack/control.py)."""
    from devstack.control import ControlServer, request

    control = ControlServer(stack).begin()
    try:
        assert oct(control.path.stat().st_mode & 0o777) == "0o600"
        assert request("status", stack.state) == 0
        said = capsys.readouterr().out
        assert request("roll", stack.state) == 1  # no version: refused, nothing touched
    finally:
        control.end()
    status = json.loads(said[: said.rindex("}") + 1])
    assert status["keycloak_version"] == stack.keycloak_version
    assert [n["ready"] for n in status["nodes"]] == [True] * len(stack.nodes)
