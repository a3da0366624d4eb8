"""Shared fixtures: one real Keycloak per test session, a fresh realm per session, our database."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from devstack.ports import free_port, port_is_free
from provisioner.gateway import Gateway
from devstack.keycloak_server import KeycloakServer
from provisioner.permissions import repair_all
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.realm.schema import realm_spec
from provisioner.settings import PROJECT_ROOT, Settings

pytest_plugins = ["tests.portal_support"]  # the portal's fixtures: portal, staff


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test needs the real Keycloak exactly when one of its fixtures does: the `keycloak` mark is derived, so
    pure tests run without it (``-m "not keycloak"``) and no Keycloak test can forget the mark."""
    for item in items:
        if "keycloak_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.keycloak)


OUTPUT = PROJECT_ROOT / "test-output"


@pytest.fixture(scope="session")
def keycloak_url() -> str:
    """KEYCLOAK_URL if given (an already running Keycloak), else the pinned distribution started here."""
    if os.environ.get("KEYCLOAK_URL"):
        yield os.environ["KEYCLOAK_URL"].rstrip("/")
        return
    server = KeycloakServer(
        http_port=int(os.environ.get("TEST_KEYCLOAK_PORT", "8180")),
        management_port=int(os.environ.get("TEST_KEYCLOAK_MANAGEMENT_PORT", "9180")),
        admin_user=os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
        admin_password=os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
        database="cimr-tests",
        log_file=OUTPUT / "keycloak.log",
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def test_env(keycloak_url: str, smtp_server: "MailBox", tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment our code reads, pointing at the test Keycloak, a fresh realm and database."""
    realm = f"cimr-test-{uuid.uuid4().hex[:8]}"
    db = tmp_path_factory.mktemp("db") / "cimr.db"
    # The test portal's address is part of the realm (the portal client's redirect URIs), as in production: a
    # realm applied again during the run (`provisioner apply`) keeps it. 8000 when free, else any free port.
    portal_url = f"http://127.0.0.1:{8000 if port_is_free(8000) else free_port()}"
    return {
        "KEYCLOAK_URL": keycloak_url,
        "KEYCLOAK_REALM": realm,
        "KEYCLOAK_ADMIN_USER": os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
        "KEYCLOAK_ADMIN_PASSWORD": os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
        "PROVISIONER_CLIENT_SECRET": "dev-provisioner-secret",
        "DELEGATIONS_CLIENT_SECRET": "dev-delegations-secret",
        "DATABASE_URL": f"sqlite:///{db}",
        "REALM_DIR": str(PROJECT_ROOT / "realm"),
        "PORTAL_URL": portal_url,
        "REALM_VAR_PORTAL_URL": portal_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "PATH": os.environ.get("PATH", ""),
    }


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    return Settings.from_env(test_env)


@pytest.fixture(scope="session")
def spec(settings: Settings):
    return realm_spec(settings)


@pytest.fixture(scope="session")
def admin_gw(settings: Settings) -> Gateway:
    """Master-admin gateway on the session's realm."""
    return Gateway.as_master_admin(settings)


@pytest.fixture(scope="session")
def realm(settings: Settings, spec, admin_gw: Gateway) -> str:
    """The session's realm, applied from realm/; deleted at the end."""
    apply_plan(admin_gw, spec, plan_realm(admin_gw, spec))
    repair_all(admin_gw, deep=False)  # as `provisioner apply` does: the root permission every delegate needs
    yield settings.realm
    if not os.environ.get("KEEP_TEST_REALM"):
        admin_gw.delete_realm()


@pytest.fixture(scope="session")
def service_gw(settings: Settings, realm: str) -> Gateway:
    """The provisioner's least-privilege service account on the applied realm."""
    return Gateway.as_service_account(settings)


@pytest.fixture(scope="module")
def password_grant_client(admin_gw: Gateway, realm: str):
    """tests.oidc_flow.PASSWORD_CLIENT for one module: public, direct grants, full scope. Never a real client;
    deleted at the module's end (`plan` would report it as a client to delete)."""
    from tests.oidc_flow import PASSWORD_CLIENT

    admin_gw.post("/clients", {"clientId": PASSWORD_CLIENT, "publicClient": True, "directAccessGrantsEnabled": True,
                               "standardFlowEnabled": False, "fullScopeAllowed": True})
    yield PASSWORD_CLIENT
    admin_gw.delete(f"/clients/{admin_gw.client_uuid(PASSWORD_CLIENT)}")


# --- a real SMTP server (aiosmtpd in its own process); messages land in a directory ------------------------
class MailBox:
    """The messages the test SMTP server received, parsed."""

    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port

    def messages(self, to: str | None = None) -> list:
        import email
        from email import policy

        out = []
        for path in sorted(self.directory.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if to is None or to in (msg["To"] or ""):
                out.append(msg)
        return out

    def bodies(self, to: str | None = None) -> list[str]:
        return [m.get_content() for m in self.messages(to)]



@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> MailBox:
    """devstack/smtp_sink.py started once per session on a free port; stopped at the end."""
    import subprocess
    import sys

    directory = tmp_path_factory.mktemp("mail")
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "devstack" / "smtp_sink.py"), str(directory),
                             str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", "the test SMTP server did not start"
        yield MailBox(directory, port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- provisioner actions (issue 3): services, actors, approved adherents ------------------------------------
@pytest.fixture(scope="session")
def services(settings: Settings, spec, realm: str):
    """Our database, mailer and the realm's password policy, for the session's realm."""
    from provisioner.core import Services

    return Services.from_settings(settings, spec)


@pytest.fixture(scope="session")
def agent():
    from provisioner.tenancy import Actor

    return Actor.agent("agent.benali")


@pytest.fixture(scope="session")
def make_adherent(service_gw: Gateway, services, agent):
    """A factory: submit and approve a subscription; returns the new numéro d'adhérent."""
    from devstack.builders import approved_adherent

    return lambda **kw: approved_adherent(service_gw, services, agent, **kw)


@pytest.fixture(scope="module")
def adherent(make_adherent) -> str:
    """An approved adherent shared by a test module (tests that change its settings make their own)."""
    return make_adherent()


@pytest.fixture(scope="session")
def cli_agent(admin_gw: Gateway, realm: str) -> str:
    """A real CIMR agent in the realm, for CLI runs (`--as` is resolved in Keycloak)."""
    user_id = admin_gw.create_user({"username": "agent.cli", "enabled": True, "groups": ["/agents"],
                                    "firstName": "Amina", "lastName": "Agent", "email": "agent.cli@cimr.ma"})
    yield "agent.cli"
    admin_gw.delete_user(user_id)
