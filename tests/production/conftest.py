"""The production shape, started once for this package (devstack/production.py): PostgreSQL, two clustered
Keycloak nodes (`start --optimized`) behind HAProxy with TLS, the portal under gunicorn, one teleservice.

Everything on loopback, on ports found free in fixed ranges (devstack/ports.py: 8400-8499 HTTP, 9400-9499
management and proxy statistics, 55400-55499 PostgreSQL, 7850-7899 JGroups); state and logs under
test-output/production/ (kept for reading after a failure). Package-scoped: it is stopped before the rest of the
suite starts its own Keycloak.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import replace

import pytest

from devstack.ports import production_stack
from devstack.production import PREVIOUS_KEYCLOAK_VERSION, ProductionStack
from provisioner.gateway import Gateway
from provisioner.realm.schema import realm_spec
from provisioner.settings import PROJECT_ROOT, Settings
from provisioner.tenancy import Actor

STATE = PROJECT_ROOT / "test-output" / "production"


ROLLING = "test_production_rolling.py"
ROLLING_TEST = "test_a_rolling_update_from_the_previous_pin_fails_no_login"  # the shape starts on the previous pin for it
PARTITION = "test_production_partition.py"  # last: its healing leaves the cluster unsettled for a while


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.keycloak)
            item.add_marker(pytest.mark.production)
    # The rolling update first: the shape starts on the previous pin, and the other tests run on the pin after it.
    # The partition last.
    ours = [i for i, item in enumerate(items) if str(item.fspath).startswith(here)]
    if not ours:
        return
    named = lambda name: [item for item in items if os.path.basename(str(item.fspath)) == name]  # noqa: E731
    rolling, partition = named(ROLLING), named(PARTITION)
    middle = [item for item in items[ours[0]:ours[-1] + 1] if item not in rolling and item not in partition]
    items[ours[0]:ours[-1] + 1] = rolling + middle + partition


@pytest.fixture(scope="package")
def stack(request: pytest.FixtureRequest) -> ProductionStack:
    """The production shape, fresh (new database), started once for the package; stopped at its end. On the
    previous pin when the rolling update is among the tests (it rolls the shape to the pin first)."""
    from devstack.postgres import PostgresServer

    PostgresServer(STATE / "postgres", 0).stop()  # a crashed run's server, by the PID in its data directory
    shutil.rmtree(STATE, ignore_errors=True)
    stack = production_stack(STATE)
    if any(item.name == ROLLING_TEST for item in request.session.items):
        stack.keycloak_version = PREVIOUS_KEYCLOAK_VERSION
    stack.start()
    # Our in-process clients (requests, httpx) trust the local CA, as the stack's processes do.
    saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    os.environ.update(SSL_CERT_FILE=str(stack.ca_file), REQUESTS_CA_BUNDLE=str(stack.ca_file))
    from provisioner.gateway import transport

    transport.trust_again()  # one TLS context per process, cached: rebuild it with the CA
    try:
        yield stack
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        transport.trust_again()


@pytest.fixture(scope="package")
def settings(stack: ProductionStack) -> Settings:
    """Settings of our processes in the production shape: Keycloak through the proxy (TLS), PostgreSQL."""
    return Settings.from_env(stack.env())


def node_settings(stack: ProductionStack, settings: Settings, i: int) -> Settings:
    """The same settings aimed at node ``i`` directly (its loopback HTTP port), bypassing the proxy."""
    return replace(settings, keycloak_url=stack.node_url(i))


@pytest.fixture(scope="package")
def spec(settings: Settings):
    return realm_spec(settings)


@pytest.fixture(scope="package")
def services(settings: Settings, spec):
    from provisioner.core import Services

    return Services.from_settings(settings, spec)


@pytest.fixture(scope="package")
def service_gw(settings: Settings) -> Gateway:
    return Gateway.as_service_account(settings)


@pytest.fixture(scope="package")
def admin_gw(settings: Settings) -> Gateway:
    return Gateway.as_master_admin(settings)


@pytest.fixture
def make_adherent(service_gw: Gateway, services):
    """A factory: an approved adherent (through the proxy); returns its numéro."""
    from devstack.builders import approved_adherent

    return lambda: approved_adherent(service_gw, services, Actor.agent("agent.production-tests"))


def whole(stack: ProductionStack, timeout: float = 180) -> None:
    """Wait until every node runs, is ready and in the cluster, and the supervisor has nothing left to restart; a
    node stopped on purpose (not supervised) is started again."""
    missing = [i for i in range(len(stack.nodes)) if stack.node_process(i) is None]
    if missing:
        stack.start_nodes(missing)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = stack.supervisor.busy if stack.supervisor else set()
        if not busy and all(stack.node_ready(i) and stack.cluster_size(i) == len(stack.nodes)
                            for i in range(len(stack.nodes))):
            return
        time.sleep(1)
    raise AssertionError(f"the cluster is not whole after {timeout}s: supervisor busy with {busy}")


@pytest.fixture
def both_nodes(stack: ProductionStack):
    """Both nodes up and in one cluster before the test, and again after it (the supervisor restarts a node the
    test killed; one the test stopped is started here)."""
    whole(stack)
    yield stack
    whole(stack)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
