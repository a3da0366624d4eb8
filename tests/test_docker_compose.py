"""docker-compose.yml is checked statically (no Docker engine here): the same stack, pinned, healthy."""

from __future__ import annotations

import re

import pytest
import yaml

from devstack.keycloak_server import KEYCLOAK_VERSION
from provisioner.settings import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_stack_has_every_part():
    assert {"postgres", "keycloak", "provisioner", "portal", "mailpit"} <= set(SERVICES)


def test_keycloak_image_is_the_version_the_tests_run_with_our_extension():
    build = SERVICES["keycloak"]["build"]
    assert build["args"]["KEYCLOAK_IMAGE"] == f"quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}"
    assert SERVICES["keycloak"]["image"] == f"cimr-keycloak:{KEYCLOAK_VERSION}"
    dockerfile = (PROJECT_ROOT / build["dockerfile"]).read_text()
    assert f"ARG KEYCLOAK_IMAGE=quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}" in dockerfile
    assert "COPY keycloak-extension/src/main" in dockerfile and "/opt/keycloak/providers/" in dockerfile
    assert "--db=postgres" in SERVICES["keycloak"]["command"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    image = SERVICES[name].get("image", "")
    if "build" in SERVICES[name] or image.startswith("cimr-teleservices:"):
        return  # built from this repository
    assert re.match(r"^[\w./-]+:[\w.-]+$", image) and not image.endswith(":latest"), image


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("restart") != "no"))
def test_long_running_services_have_healthchecks(name):
    assert SERVICES[name]["healthcheck"]["test"]


def test_realm_is_applied_once_keycloak_is_healthy_and_before_the_portal():
    assert SERVICES["provisioner"]["command"] == ["provisioner", "apply"]
    assert SERVICES["provisioner"]["depends_on"]["keycloak"]["condition"] == "service_healthy"
    assert SERVICES["portal"]["depends_on"]["provisioner"]["condition"] == "service_completed_successfully"


def test_ports_are_published_on_loopback_only():
    for service in SERVICES.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def _environment():
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            yield name, key, str(value)


DEV_DEFAULT = re.compile(r"^\$\{[A-Z_]+:-(dev-[\w-]+|admin)\}$")


def test_no_secret_in_clear_beyond_overridable_dev_defaults():
    for service, key, value in _environment():
        if "PASSWORD" in key or "SECRET" in key:
            assert DEV_DEFAULT.match(value), f"{service}.{key} must come from the environment, got {value}"
        for embedded in re.findall(r"://[^:/]+:([^@]+)@", value):
            assert DEV_DEFAULT.match(embedded), f"{service}.{key} embeds a password in clear: {embedded}"
