"""docker-compose.yml is checked statically (no Docker engine here): the production shape (PostgreSQL, two
Keycloak nodes of one built image behind HAProxy), pinned, healthy, started in order, secrets from the outside."""

from __future__ import annotations

import re

import pytest
import yaml

from devstack.keycloak_server import KEYCLOAK_VERSION
from provisioner.settings import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


KEYCLOAKS = sorted(n for n in SERVICES if n.startswith("keycloak-"))


def test_the_stack_has_every_part():
    assert {"postgres", "proxy", "provisioner", "portal", "mailpit"} <= set(SERVICES)
    assert KEYCLOAKS == ["keycloak-1", "keycloak-2"]


def test_keycloak_is_one_image_built_once_for_production_with_our_extension():
    built = [n for n in KEYCLOAKS if "build" in SERVICES[n]]
    assert len(built) == 1, "one build, both nodes run its image"
    build = SERVICES[built[0]]["build"]
    assert build["args"]["KEYCLOAK_IMAGE"] == f"quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}"
    assert {SERVICES[n]["image"] for n in KEYCLOAKS} == {f"cimr-keycloak:{KEYCLOAK_VERSION}"}
    dockerfile = (PROJECT_ROOT / build["dockerfile"]).read_text()
    assert f"ARG KEYCLOAK_IMAGE=quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}" in dockerfile
    assert "COPY keycloak-extension/src/main" in dockerfile and "/opt/keycloak/providers/" in dockerfile
    # Built with the options devstack/production.py builds with, and started without rebuilding.
    from devstack.artifacts import BUILD_OPTIONS

    assert f"kc.sh build {' '.join(BUILD_OPTIONS)}" in dockerfile
    for name in KEYCLOAKS:
        assert SERVICES[name]["command"] == ["start", "--optimized"]


def test_the_keycloak_nodes_form_one_cluster_behind_the_proxy():
    for name in KEYCLOAKS:
        env = SERVICES[name]["environment"]
        assert env["KC_CACHE"] == "ispn" and env["KC_CACHE_STACK"] == "jdbc-ping"
        assert env["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"  # the shared database
        assert env["KC_HOSTNAME"].startswith("https://") and env["KC_PROXY_HEADERS"] == "xforwarded"
        assert env["KC_HTTP_ENABLED"] == "true"  # plain HTTP only behind the TLS proxy, never published
        assert "ports" not in SERVICES[name]
    assert len({SERVICES[n]["environment"]["KC_SPI_CACHE_EMBEDDED_DEFAULT_NODE_NAME"] for n in KEYCLOAKS}) == 2
    config = (PROJECT_ROOT / "docker" / "haproxy.cfg").read_text()
    assert "option httpchk GET /health/ready" in config and "default-server check " in config
    for i, name in enumerate(KEYCLOAKS, 1):
        assert f"server kc{i} {name}:8080 port 9000" in config  # health on the management port
    assert "ssl crt /certs/proxy.pem" in config
    assert any(v.endswith(":/usr/local/etc/haproxy/haproxy.cfg:ro") for v in SERVICES["proxy"]["volumes"])


def test_every_dependency_waits_for_health_or_completion():
    for name, service in SERVICES.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            expected = ("service_completed_successfully" if SERVICES[dependency].get("restart") == "no"
                        else "service_healthy")
            assert how["condition"] == expected, f"{name} -> {dependency}"
    assert set(SERVICES["proxy"]["depends_on"]) >= set(KEYCLOAKS)


def test_postgresql_keeps_its_data_in_a_volume():
    volumes = SERVICES["postgres"]["volumes"]
    assert any(v.split(":")[0] in COMPOSE["volumes"] and v.split(":")[1] == "/var/lib/postgresql/data"
               for v in volumes)


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
    assert SERVICES["provisioner"]["depends_on"]["proxy"]["condition"] == "service_healthy"
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


def test_the_proxy_is_configured_as_devstacks_proxy():
    """docker/haproxy.cfg is what devstack/proxy.py writes for compose's services: the same TLS profile, checks,
    retries and error pages as `scripts/start --production` (regenerate: python -m devstack.proxy)."""
    from devstack.proxy import compose_config

    assert (PROJECT_ROOT / "docker" / "haproxy.cfg").read_text() == compose_config()
    volumes = SERVICES["proxy"]["volumes"]
    assert "./docker/errors:/usr/local/etc/haproxy/errors:ro" in volumes  # our French page


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("restart") != "no"))
def test_long_running_services_restart_by_themselves(name):
    assert SERVICES[name]["restart"] in ("unless-stopped", "always")


def test_people_reach_the_portal_and_the_teleservices_through_the_proxy_with_tls():
    published = {n for n, s in SERVICES.items() if s.get("ports")}
    assert published == {"proxy", "mailpit"}, published  # the applications listen on the compose network only
    proxy_ports = {p.split(":")[1] for p in SERVICES["proxy"]["ports"]}
    assert {"8443", "8000", "8101", "8103"} <= proxy_ports
    env = COMPOSE["x-app-env"]
    assert env["PORTAL_URL"].startswith("https://")
    realm = SERVICES["provisioner"]["environment"]
    assert realm["REALM_VAR_PORTAL_URL"].startswith("https://") and realm["REALM_VAR_TELESERVICES_HOST"].startswith(
        "https://")
    assert SERVICES["portal"]["environment"]["PORTAL_TRUSTED_PROXIES"] == "1"


def test_a_keycloak_container_restarted_after_a_crash_forgets_its_dead_nodes_row():
    dockerfile = (PROJECT_ROOT / "docker" / "keycloak.Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/cimr/keycloak-start.sh"]' in dockerfile
    assert "javac --release 17 -d /cimr /forget-node/ForgetNode.java" in dockerfile
    start = (PROJECT_ROOT / "docker" / "keycloak-start.sh").read_text()
    assert "ForgetNode \"$KC_SPI_CACHE_EMBEDDED_DEFAULT_NODE_NAME\"" in start and 'exec /opt/keycloak/bin/kc.sh "$@"' in start
    for name in KEYCLOAKS:
        assert SERVICES[name]["environment"]["KC_SHUTDOWN_DELAY"] == "3s"
