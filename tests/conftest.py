"""Shared fixtures: one real Keycloak per test session, a fresh realm per session, our database."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from provisioner.gateway import Gateway
from provisioner.keycloak_server import KeycloakServer
from provisioner.realm_apply import apply_plan, plan_realm
from provisioner.realm_spec import load_realm_spec
from provisioner.settings import PROJECT_ROOT, Settings

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
def test_env(keycloak_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment our code reads, pointing at the test Keycloak, a fresh realm and database."""
    realm = f"cimr-test-{uuid.uuid4().hex[:8]}"
    db = tmp_path_factory.mktemp("db") / "cimr.db"
    return {
        "KEYCLOAK_URL": keycloak_url,
        "KEYCLOAK_REALM": realm,
        "KEYCLOAK_ADMIN_USER": os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
        "KEYCLOAK_ADMIN_PASSWORD": os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
        "PROVISIONER_CLIENT_SECRET": "dev-provisioner-secret",
        "DATABASE_URL": f"sqlite:///{db}",
        "REALM_DIR": str(PROJECT_ROOT / "realm"),
        "PATH": os.environ.get("PATH", ""),
    }


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    return Settings.from_env(test_env)


@pytest.fixture(scope="session")
def spec(settings: Settings):
    return load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)


@pytest.fixture(scope="session")
def admin_gw(settings: Settings) -> Gateway:
    """Master-admin gateway on the session's realm."""
    return Gateway.as_master_admin(settings)


@pytest.fixture(scope="session")
def realm(settings: Settings, spec, admin_gw: Gateway) -> str:
    """The session's realm, applied from realm/; deleted at the end."""
    apply_plan(admin_gw, spec, plan_realm(admin_gw, spec))
    yield settings.realm
    if not os.environ.get("KEEP_TEST_REALM"):
        admin_gw.delete_realm()


@pytest.fixture(scope="session")
def service_gw(settings: Settings, realm: str) -> Gateway:
    """The provisioner's least-privilege service account on the applied realm."""
    return Gateway.as_service_account(settings)
