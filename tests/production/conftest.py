"""The production shape, started once for this package (devstack/production.py): PostgreSQL, two clustered
Keycloak nodes (`start --optimized`) behind HAProxy with TLS, the portal under gunicorn, one teleservice.

Everything on loopback, on ports found free in fixed ranges (8400-8499 HTTP, 9400-9499 management and proxy
statistics, 55400-55499 PostgreSQL, 7850-7899 JGroups); state and logs under test-output/production/ (kept for
reading after a failure). Package-scoped: it is stopped before the rest of the suite starts its own Keycloak.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from dataclasses import replace

import pytest

from devstack.production import NodePorts, ProductionStack
from provisioner.gateway import Gateway
from provisioner.realm.spec import RealmSpec
from provisioner.settings import PROJECT_ROOT, Settings
from provisioner.tenancy import Actor
from tests.ports import free_port, port_is_free

STATE = PROJECT_ROOT / "test-output" / "production"
TELESERVICE_HOST = "127.0.0.2"  # realm/ fixes the teleservices' ports; another loopback address avoids clashes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.keycloak)
            item.add_marker(pytest.mark.production)


def _free_on(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortPicker:
    """Free loopback ports from fixed ranges, never the same one twice."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def pick(self, low: int, high: int, also=lambda p: True) -> int:
        for port in range(low, high + 1):
            if port not in self.taken and port_is_free(port) and also(port):
                self.taken.add(port)
                return port
        raise RuntimeError(f"no free port in {low}-{high}")


def production_stack(state=STATE) -> ProductionStack:
    """A ProductionStack on free test ports (not started)."""
    ports = PortPicker()
    proxy = ports.pick(8400, 8499, lambda p: port_is_free(p + 1000))  # + 1000: its statistics page
    ports.taken.add(proxy + 1000)
    nodes = tuple(NodePorts(ports.pick(8400, 8499), ports.pick(9400, 9499),
                            # JGroups' failure detection listens on bind port + 50000
                            ports.pick(7850, 7899, lambda p: port_is_free(p + 50000)))
                  for _ in range(2))
    teleservices = {"compte-adherent": 8102} if _free_on(TELESERVICE_HOST, 8102) else {}
    return ProductionStack(state=state, proxy_port=proxy, nodes=nodes, postgres_port=ports.pick(55400, 55499),
                           portal_port=ports.pick(8400, 8499), smtp_port=free_port(), teleservices=teleservices,
                           teleservices_host=TELESERVICE_HOST)


@pytest.fixture(scope="package")
def stack() -> ProductionStack:
    """The production shape, fresh (new database), started once for the package; stopped at its end."""
    from devstack.postgres import PostgresServer

    PostgresServer(STATE / "postgres", 0).stop()  # a crashed run's server, by the PID in its data directory
    shutil.rmtree(STATE, ignore_errors=True)
    stack = production_stack()
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
    return RealmSpec.from_settings(settings)


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
    from tests.provisioning import approved_adherent

    return lambda: approved_adherent(service_gw, services, Actor.agent("agent.production-tests"))


@pytest.fixture
def both_nodes(stack: ProductionStack):
    """Both nodes up before the test; a node the test killed is started again after it (and the cluster
    is whole again: two members)."""
    deadline = time.monotonic() + 90  # a previous test's restarted node may still be settling
    while time.monotonic() < deadline and not all(stack.node_ready(i) for i in range(len(stack.nodes))):
        time.sleep(2)
    assert all(stack.node_ready(i) for i in range(len(stack.nodes)))
    yield stack
    stack.start_nodes([i for i in range(len(stack.nodes)) if f"keycloak-node{i + 1}" not in stack.processes])


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
