"""The production shape on this machine, without containers: PostgreSQL, two clustered Keycloak nodes, HAProxy.

    PostgreSQL (devstack/postgres.py, our own cluster under var/)
        databases `keycloak` (Keycloak's) and `cimr` (ours: trail, secret answers, sessions)
    Keycloak, built once (`kc.sh build`: PostgreSQL, our extension, health, metrics) into a copy of the
        pinned distribution, run as two nodes (`start --optimized`) on loopback, one Infinispan cluster
        (JGroups, `jdbc-ping` discovery through the shared database)
    HAProxy (devstack/proxy.py): TLS (a certificate made at first start, signed by a local CA) in front of both
        nodes, the portal and the teleservices; health checks on each node's management port (/health/ready),
        sticky by cookie, failover on a dead node, our French page when nothing can answer
    the portal under gunicorn, the reference teleservices, the SMTP sink; all of them reach Keycloak through
        the proxy's public URL and trust the local CA (SSL_CERT_FILE / REQUESTS_CA_BUNDLE)
    a supervisor (devstack/supervisor.py) restarting what crashes, as systemd does for the units
        devstack/systemd.py generates from the same settings

Used by `scripts/start --production`, tests/production/ and bench/; never by production code. Every process is
started here, in a process group of its own, and stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.artifacts import SECRET_NAMES, load_secrets, make_certificates, optimized_keycloak
from devstack.keycloak_server import KEYCLOAK_VERSION
from devstack.nodes import KeycloakNodes
from devstack.postgres import PostgresServer
from devstack.processes import tail, wait_http
from devstack.proxy import Runtime, Site, haproxy_config

ROOT = Path(__file__).resolve().parent.parent
TELESERVICES = {"teledeclaration": 8101, "compte-adherent": 8102, "easypaiement": 8103, "eliquidation": 8104}
# The pin before KEYCLOAK_VERSION: tests/production/ start the shape on it and roll it to the pin (docs/operations.md).
PREVIOUS_KEYCLOAK_VERSION = "26.7.0"


@dataclass(frozen=True)
class NodePorts:
    http: int
    management: int
    jgroups: int


@dataclass
class ProductionStack(KeycloakNodes):
    """The production shape under ``state`` (var/production by default); ports on 127.0.0.1."""

    state: Path = ROOT / "var" / "production"
    proxy_port: int = 8443
    nodes: tuple[NodePorts, ...] = (NodePorts(8481, 9481, 7801), NodePorts(8482, 9482, 7802))
    postgres_port: int = 5544
    portal_port: int = 8000  # the proxy's (TLS); gunicorn listens on portal_backend_port, on loopback only
    portal_backend_port: int = 18000
    smtp_port: int = 2525
    # The teleservices' public ports (TLS, the proxy), as realm/clients.yaml has them; each app listens on its
    # public port + 10000 unless teleservice_backends says otherwise.
    teleservices: dict[str, int] = field(default_factory=lambda: dict(TELESERVICES))
    teleservice_backends: dict[str, int] = field(default_factory=dict)
    teleservices_host: str = "127.0.0.1"
    hostname: str = "localhost"
    realm: str = "cimr"
    # As docker-compose.yml: a sync worker waits on Keycloak for part of each page, so two per core (at CIMR's size,
    # 153 delegate pages/s against 146 with 2 workers: docs/benchmarks.md).
    portal_workers: int = 4
    portal_threads: int = 1  # > 1: gunicorn's threaded workers (a page's wait on Keycloak leaves the CPU to another)
    node_heap: str = "-Xms256m -Xmx768m"
    # More `kc.sh start` options for every node, e.g. the cache sizes docs/operations.md gives for CIMR's size
    # (runtime options: no rebuild).
    node_options: tuple[str, ...] = ()
    keycloak_version: str = KEYCLOAK_VERSION  # every node's at start; roll_to() moves them one by one
    # A stopping node answers "not ready" this long before it closes (Keycloak's --shutdown-delay): longer than the
    # proxy takes to see it (two checks a second apart), so no request is sent to a node that is going.
    shutdown_delay: str = "3s"
    supervise: bool = True   # restart what crashes (devstack/supervisor.py)
    warm_up: bool = True     # a (re)started node takes traffic once warm (devstack/warmup.py)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = Path(self.state).resolve()
        self.logs = self.state / "logs"
        self.postgres = PostgresServer(self.state / "postgres", self.postgres_port,
                                       log_file=self.logs / "postgres.log")
        self.secrets: dict[str, str] = {}
        self.homes: dict[int, Path] = {}  # each node's build copy (two versions during a rolling update)
        self.teleservice_backends = {c: self.teleservice_backends.get(c, p + 10000) for c, p in self.teleservices.items()}
        self.lock = threading.RLock()  # the process table: the supervisor's thread and ours
        self.runtime = Runtime(self.state / "haproxy.sock")
        self.supervisor = None
        self.postgres_wanted = False  # False while PostgreSQL is stopped on purpose: the supervisor leaves it
        self.stopping = False  # stop() ran: nothing new is started (a supervisor's restart in flight) until start()

    # --- addresses ----------------------------------------------------------------------------------------
    @property
    def public_url(self) -> str:
        """Keycloak's public URL: the proxy (KC_HOSTNAME, KEYCLOAK_URL of every client)."""
        return f"https://{self.hostname}:{self.proxy_port}"

    @property
    def portal_url(self) -> str:
        """The portal's public URL: the proxy (TLS)."""
        return f"https://{self.hostname}:{self.portal_port}"

    def teleservice_url(self, client_id: str) -> str:
        """A teleservice's public URL: the proxy (TLS), as realm/clients.yaml builds it."""
        return f"https://{self.teleservices_host}:{self.teleservices[client_id]}"

    @property
    def home(self) -> Path:
        """The build copy of the first node (every node's, but during a rolling update)."""
        return self.homes[0]

    @property
    def ca_file(self) -> Path:
        return self.state / "tls" / "ca.pem"

    def node_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.nodes[i].http}"

    def management_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.nodes[i].management}"

    def app_settings(self) -> dict[str, str]:
        """The settings of our processes (provisioner, portal, teleservices): Keycloak via the proxy, secrets."""
        s = self.secrets
        settings = {
            "KEYCLOAK_URL": self.public_url,
            "KEYCLOAK_REALM": self.realm,
            "KEYCLOAK_ADMIN_USER": "admin",
            "KEYCLOAK_ADMIN_PASSWORD": s["KEYCLOAK_ADMIN_PASSWORD"],
            "DATABASE_URL": self.postgres.url("cimr", "cimr", s["CIMR_DB_PASSWORD"]),
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port),
            "PORTAL_URL": self.portal_url,
            "PORTAL_SECRET_KEY": s["PORTAL_SECRET_KEY"],
            "PORTAL_TRUSTED_PROXIES": "1",  # the TLS proxy: the client's address and https come from it
            # Our processes trust the local CA that signed the proxy's certificate (httpx, then requests).
            "SSL_CERT_FILE": str(self.ca_file), "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "REALM_VAR_PORTAL_URL": self.portal_url,
            "REALM_VAR_TELESERVICES_HOST": f"https://{self.teleservices_host}",
        }
        for name in SECRET_NAMES:
            if name.endswith("_CLIENT_SECRET"):
                settings[name] = s[name]
                settings[f"REALM_VAR_{name}"] = s[name]
        return settings

    def env(self) -> dict[str, str]:
        """The environment of our processes: ours (without Keycloak's or realm variables of the shell) + settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYCLOAK_", "REALM_VAR_", "KC_"))}
        return env | self.app_settings()

    def node_env(self) -> dict[str, str]:
        """The environment of a Keycloak node (its secrets and heap)."""
        env = {**os.environ,
               "KC_DB_PASSWORD": self.secrets["KC_DB_PASSWORD"],
               "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
               "KC_BOOTSTRAP_ADMIN_PASSWORD": self.secrets["KEYCLOAK_ADMIN_PASSWORD"],
               "JAVA_OPTS_KC_HEAP": self.node_heap}
        return {k: v for k, v in env.items() if k not in ("KEYCLOAK_HOME",)}

    # --- start / stop -------------------------------------------------------------------------------------
    def start(self, with_apps: bool = True, log=lambda msg: print(msg, file=sys.stderr)) -> "ProductionStack":
        """Everything, in order; each step waits for the previous one to be healthy. On failure, stops what
        it started and raises RuntimeError naming the log to read."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.secrets = load_secrets(self.state / "secrets.json")
        self.stopping = False
        try:
            log(f"» PostgreSQL on 127.0.0.1:{self.postgres_port} ({self.postgres.data_dir}) ...")
            self.start_postgres()
            self.postgres.create_database("keycloak", owner="keycloak", password=self.secrets["KC_DB_PASSWORD"])
            self.postgres.create_database("cimr", owner="cimr", password=self.secrets["CIMR_DB_PASSWORD"])
            home = optimized_keycloak(version=self.keycloak_version)
            self.homes = {i: home for i in range(len(self.nodes))}
            make_certificates(self.state / "tls", self.certificate_names)
            # The first node creates the schema; the second joins once it is there.
            for i in range(len(self.nodes)):
                log(f"» Keycloak {self.keycloak_version} node {i + 1} on 127.0.0.1:{self.nodes[i].http} "
                    f"(start --optimized) ...")
                self.start_nodes([i])
            if self.warm_up and self.realm_exists(0):  # the shape started again: warm before the proxy opens
                for i in range(len(self.nodes)):
                    log(f"» Warming node {i + 1} up ...")
                    self.warm_node(i)
            log(f"» HAProxy on https://{self.hostname}:{self.proxy_port} ...")
            self.start_proxy()
            if with_apps:
                self.start_apps(log)
            if self.supervise:
                from devstack.supervisor import Supervisor

                self.supervisor = Supervisor(self, log).begin()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def certificate_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.hostname, "127.0.0.1", self.teleservices_host)))

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        if self.stopping:
            raise RuntimeError(f"the shape is stopping: {name} is not started")
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, env=env or self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **kw)
        log.close()
        with self.lock:
            self.processes[name] = proc
        return proc

    def start_postgres(self) -> None:
        self.postgres.start()
        self.postgres_wanted = True

    def stop_postgres(self) -> None:
        """Stop PostgreSQL on purpose (the supervisor leaves it down until start_postgres)."""
        self.postgres_wanted = False
        self.postgres.stop()

    # --- the proxy ----------------------------------------------------------------------------------------
    def sites(self) -> list[Site]:
        """The portal and the teleservices behind the proxy (TLS there, plain HTTP on loopback behind it)."""
        sites = [Site("portal", f"127.0.0.1:{self.portal_port}", f"127.0.0.1:{self.portal_backend_port}",
                      branded_errors=False)]  # the portal's own 5xx pages are French already, and more precise
        for client_id, port in self.teleservices.items():
            sites.append(Site(f"teleservice_{client_id}", f"{self.teleservices_host}:{port}",
                              f"{self.teleservices_host}:{self.teleservice_backends[client_id]}"))
        return sites

    def haproxy_config(self, pem: Path) -> str:
        return haproxy_config(
            pem=pem, keycloak_bind=f"127.0.0.1:{self.proxy_port}", public_port=self.proxy_port,
            nodes=[(self.server_name(i), f"127.0.0.1:{n.http}", n.management) for i, n in enumerate(self.nodes)],
            sites=self.sites(), stats_port=self.proxy_port + 1000, admin_socket=self.runtime.path)

    def start_proxy(self, timeout: float = 30) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise RuntimeError("haproxy not found: apt-get install haproxy")
        _, pem = make_certificates(self.state / "tls", self.certificate_names)
        config = self.state / "haproxy.cfg"
        config.write_text(self.haproxy_config(pem))
        check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"haproxy refuses {config}:\n{check.stdout}{check.stderr}")
        self.runtime.path.unlink(missing_ok=True)
        proc = self._spawn("haproxy", [haproxy, "-db", "-f", str(config)], env=dict(os.environ))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {proc.returncode}:\n{tail(self.logs / 'haproxy.log')}")
            try:
                if requests.get(f"{self.public_url}/realms/master", timeout=2, verify=str(self.ca_file)).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the proxy did not answer within {timeout}s:\n{tail(self.logs / 'haproxy.log')}")

    # --- the applications ---------------------------------------------------------------------------------
    def app_commands(self) -> dict[str, list[str]]:
        """The SMTP sink, the portal (gunicorn) and the teleservices, each on its loopback port behind the proxy."""
        py = sys.executable
        commands = {
            "mail": [py, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.smtp_port}",
                     "-c", "aiosmtpd.handlers.Debugging"],
            "portal": [py, "-m", "gunicorn", "-w", str(self.portal_workers), "--threads", str(self.portal_threads),
                       "--timeout", "60", "-b", f"127.0.0.1:{self.portal_backend_port}", "portal:create_app()"]}
        for client_id in self.teleservices:
            commands[f"teleservice-{client_id}"] = [
                py, "-m", "teleservice", "--client-id", client_id, "--port", str(self.teleservice_backends[client_id]),
                "--host", self.teleservices_host]
        return commands

    def app_url(self, name: str) -> str | None:
        """Where an application answers, through the proxy (None for the SMTP sink)."""
        if name == "portal":
            return f"{self.portal_url}/healthz"
        if name.startswith("teleservice-"):
            return f"{self.teleservice_url(name.removeprefix('teleservice-'))}/"
        return None

    def start_app(self, name: str) -> subprocess.Popen:
        """Start one application and wait until it answers through the proxy."""
        proc = self._spawn(name, self.app_commands()[name])
        if url := self.app_url(name):
            wait_http(url, proc, self.logs / f"{name}.log", verify=str(self.ca_file))
        return proc

    def start_apps(self, log=lambda msg: print(msg, file=sys.stderr), teleservices: bool = True) -> None:
        """Realm applied, SMTP sink, portal (gunicorn), reference teleservices."""
        env = self.env()
        log("» Applying realm/ (through the proxy) ...")
        result = subprocess.run([sys.executable, "-m", "provisioner", "apply"], env=env, cwd=ROOT,
                                capture_output=True, text=True)
        (self.logs / "apply.log").write_text(result.stdout + result.stderr)
        if result.returncode:
            raise RuntimeError(f"provisioner apply failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        names = [n for n in self.app_commands() if teleservices or not n.startswith("teleservice-")]
        log(f"» SMTP sink on 127.0.0.1:{self.smtp_port} (mail in {self.logs / 'mail.log'}), portal under gunicorn "
            f"({self.portal_workers} workers × {self.portal_threads} threads) on {self.portal_url}"
            + (", teleservices" if teleservices else "") + " ...")
        procs = {name: self._spawn(name, self.app_commands()[name]) for name in names}
        for name, proc in procs.items():
            if url := self.app_url(name):
                wait_http(url, proc, self.logs / f"{name}.log", verify=str(self.ca_file))

    def stop(self) -> None:
        """Stop what we started, the supervisor first, then the apps, each by its PID (SIGTERM, SIGKILL after
        30 s), then PostgreSQL."""
        self.stopping = True
        if self.supervisor:
            self.supervisor.end()
            self.supervisor = None
        with self.lock:
            order = sorted(self.processes, key=lambda n: (n.startswith("keycloak"), n == "haproxy"))
            procs = [(name, self.processes.pop(name)) for name in order]
        for name, proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.postgres_wanted = False
        self.postgres.stop()

    def summary(self) -> str:
        teleservices = "  ".join(f"{self.teleservice_url(c)} ({c})" for c in self.teleservices)
        nodes = "  ".join(f"node {i + 1} {self.node_url(i)} (management {self.management_url(i)})"
                          for i in range(len(self.nodes)))
        return f"""CIMR teleservices are running in the production shape.

  Portal (delegates, agents, auditors)  {self.portal_url}  (through HAProxy, TLS; gunicorn, {self.portal_workers} workers)
  Keycloak (through HAProxy, TLS)       {self.public_url}/admin  (admin / see {self.state / 'secrets.json'})
  Keycloak nodes (one cluster)          {nodes}
  HAProxy statistics                    http://127.0.0.1:{self.proxy_port + 1000}/
  PostgreSQL                            127.0.0.1:{self.postgres_port} (databases keycloak, cimr; {self.postgres.data_dir})
  Local CA (trust it to browse)         {self.ca_file}
  Teleservices (through HAProxy, TLS)   {teleservices}
  Mail sink                             {self.logs / 'mail.log'}
  Logs                                  {self.logs}/*.log  (the supervisor's: supervisor.log)
"""
