"""The systemd units for CIMR's own servers (devstack/systemd.py): generated from the production shape's settings,
accepted by `systemd-analyze verify`, restarting what crashes, ordered after PostgreSQL without being stopped by its
restart, their secrets in environment files only root reads; and the helper they run once a node's process is gone
deletes exactly that node's discovery row — as does the program compose's Keycloak containers run when they start
again (docker/forget-node/ForgetNode.java)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import pytest

from devstack.systemd import DB_OPTIONS, HELPER, write
from provisioner.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def units(stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    files = write(stack, out, keycloak_home=stack.home, app_root=PROJECT_ROOT, python=sys.executable,
                  etc=out / "etc", helper_dir=out)
    return {p.name: p for p in files}


def test_the_units_pass_systemd_analyze_verify(units):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd (.ci/run and scripts/test install it)"
    paths = [str(p) for name, p in units.items() if name.endswith((".service", ".target"))]
    result = subprocess.run([analyze, "verify", "--man=no", *paths], capture_output=True, text=True, timeout=120)
    # verify exits 0 on unknown keys and bad values too, with a warning on stderr: any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result.stderr


def test_every_service_restarts_and_keycloak_follows_postgresql_without_being_stopped_by_it(stack, units):
    services = {name: p.read_text() for name, p in units.items() if name.endswith(".service")}
    assert {f"cimr-keycloak-node{i + 1}.service" for i in range(len(stack.nodes))} | {"cimr-portal.service"} <= set(
        services)
    for name, text in services.items():
        assert "Restart=always" in text and "After=network-online.target postgresql.service" in text, name
        assert "Requires=postgresql" not in text and "BindsTo=" not in text, name  # a restart of PostgreSQL is not ours
        assert "EnvironmentFile=" in text and "PASSWORD" not in text and "SECRET" not in text, name
    for i in range(len(stack.nodes)):
        text = services[f"cimr-keycloak-node{i + 1}.service"]
        assert " ".join(o for o in stack.node_options_of(i) if not o.startswith(DB_OPTIONS)) in text
        assert f"ExecStopPost={units[HELPER]} forget {stack.node_name(i)}" in text
    target = units["cimr.target"].read_text()
    assert all(name in target for name in services) and "haproxy.service" in target
    for env in ("keycloak.env", "cimr.env"):
        assert units[env].stat().st_mode & 0o777 == 0o600
    assert stack.secrets["KC_DB_PASSWORD"] in units["keycloak.env"].read_text()
    assert stack.secrets["PORTAL_CLIENT_SECRET"] in units["cimr.env"].read_text()


def dead_row(stack) -> tuple[str, list]:
    """A row as a node that died would leave it; returns its name and the other rows."""
    dead = f"kc9-{uuid.uuid4().hex[:6]}"
    with stack.postgres.connect("keycloak") as conn:
        cluster = conn.execute("SELECT cluster_name FROM jgroups_ping LIMIT 1").fetchone()[0]
        conn.execute("INSERT INTO jgroups_ping (address, name, cluster_name, ip, coord, last_update, coordinated_by) "
                     "VALUES (%s, %s, %s, '127.0.0.1:1', false, extract(epoch from now())::bigint, NULL)",
                     (f"uuid://{uuid.uuid4()}", dead, cluster))
        others = conn.execute("SELECT name FROM jgroups_ping WHERE name <> %s ORDER BY name", (dead,)).fetchall()
    return dead, others


def rows(stack) -> list:
    with stack.postgres.connect("keycloak") as conn:
        return conn.execute("SELECT name FROM jgroups_ping ORDER BY name").fetchall()


def test_the_helper_forgets_a_dead_nodes_row_and_nothing_else(stack, units):
    dead, before = dead_row(stack)
    env = dict(line.split("=", 1) for line in units["keycloak.env"].read_text().splitlines())
    env = {k: v.strip("'") for k, v in env.items()}
    result = subprocess.run([str(units[HELPER]), "forget", dead], env={"PATH": "/usr/bin:/bin", **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert rows(stack) == before  # the dead node's row gone, the live nodes' rows untouched
    assert subprocess.run([str(units[HELPER]), "forget", "x'; DROP TABLE jgroups_ping; --"], env=env,
                          capture_output=True).returncode == 2


def test_compose_keycloak_containers_forget_their_dead_node_the_same_way(stack, tmp_path):
    javac = shutil.which("javac")
    assert javac, "a JDK is needed (it compiles keycloak-extension/ too)"
    source = PROJECT_ROOT / "docker" / "forget-node" / "ForgetNode.java"
    subprocess.run([javac, "--release", "17", "-d", str(tmp_path), str(source)], check=True, capture_output=True)
    dead, before = dead_row(stack)
    env = {"PATH": "/usr/bin:/bin", "KC_DB_URL": stack.postgres.jdbc_url("keycloak"), "KC_DB_USERNAME": "keycloak",
           "KC_DB_PASSWORD": stack.secrets["KC_DB_PASSWORD"]}
    classpath = f"{tmp_path}:{stack.home / 'lib' / 'lib' / 'main'}/*"  # the PostgreSQL driver of the distribution
    result = subprocess.run([shutil.which("java") or "java", "-cp", classpath, "ForgetNode", dead], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "forgot 1 discovery row" in result.stderr, result.stderr
    assert rows(stack) == before
