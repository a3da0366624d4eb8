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

import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.keycloak_server import CACHE_DIR, KEYCLOAK_VERSION, build_extension, EXTENSION_JAR, keycloak_home
from devstack.postgres import PostgresServer
from devstack.proxy import Runtime, Site, haproxy_config

ROOT = Path(__file__).resolve().parent.parent
# Build options: changing them (or the extension) makes a new build copy (keyed by their hash).
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--metrics-enabled=true")
TELESERVICES = {"teledeclaration": 8101, "compte-adherent": 8102, "easypaiement": 8103, "eliquidation": 8104}
# The pin before KEYCLOAK_VERSION: tests/production/ start the shape on it and roll it to the pin (docs/operations.md).
PREVIOUS_KEYCLOAK_VERSION = "26.7.0"
SECRET_NAMES = ("KEYCLOAK_ADMIN_PASSWORD", "KC_DB_PASSWORD", "CIMR_DB_PASSWORD", "PORTAL_SECRET_KEY",
                "PROVISIONER_CLIENT_SECRET", "AUDITOR_CLIENT_SECRET", "DELEGATIONS_CLIENT_SECRET",
                "PORTAL_CLIENT_SECRET", "TELEDECLARATION_CLIENT_SECRET", "COMPTE_ADHERENT_CLIENT_SECRET",
                "EASYPAIEMENT_CLIENT_SECRET", "ELIQUIDATION_CLIENT_SECRET")


def optimized_keycloak(options: tuple[str, ...] = BUILD_OPTIONS, version: str = KEYCLOAK_VERSION) -> Path:
    """A copy of the distribution of ``version`` (the pinned one by default) with our extension, built
    (`kc.sh build`) with ``options``.

    The cached distribution is never changed: the copy lives beside it, named by a hash of the options and the
    extension jar, so it is rebuilt only when they change. Built in a temporary directory, then renamed.
    """
    source = keycloak_home(version)
    jar = build_extension(source, version)
    digest = hashlib.sha256(version.encode() + "\0".join(options).encode() + jar.read_bytes())
    home = CACHE_DIR / f"keycloak-{version}-optimized-{digest.hexdigest()[:12]}"
    if (home / "lib" / "quarkus" / ".cimr-built").exists():
        return home
    tmp = home.with_name(f".{home.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, symlinks=True, ignore=shutil.ignore_patterns("data", "*.log"))
    for stale in (tmp / "providers").glob("*.jar"):
        stale.unlink()
    shutil.copyfile(jar, tmp / "providers" / EXTENSION_JAR)
    print(f"» Building Keycloak for production ({' '.join(options)}) in {home} ...", file=sys.stderr)
    result = subprocess.run([str(tmp / "bin" / "kc.sh"), "build", *options], capture_output=True, text=True)
    if result.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"kc.sh build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    (tmp / "lib" / "quarkus" / ".cimr-built").write_text(" ".join(options) + "\n")
    try:
        tmp.rename(home)
    except OSError:  # built meanwhile by another run
        shutil.rmtree(tmp, ignore_errors=True)
    # Each extension change makes a copy (~260 MB): keep the three newest (a running stack may use an older one).
    copies = sorted(CACHE_DIR.glob(f"keycloak-{version}-optimized-*"), key=lambda p: p.stat().st_mtime)
    for old in copies[:-3]:
        shutil.rmtree(old, ignore_errors=True)
    return home


def make_certificates(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
    """A local CA and the proxy's certificate signed by it (made once, again when ``names`` are not all in it);
    returns (ca.pem, proxy.pem cert+key)."""
    ca_file, proxy_file = directory / "ca.pem", directory / "proxy.pem"
    if ca_file.exists() and proxy_file.exists() and set(names) <= certificate_names(proxy_file):
        return ca_file, proxy_file
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CIMR devstack local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=825))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if re.fullmatch(r"[\d.]+", n) else x509.DNSName(n)
            for n in names]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            # At most 366 days (Mozilla's intermediate profile).
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    proxy_file.write_bytes(cert.public_bytes(pem) + key_pem)
    proxy_file.chmod(0o600)
    ca_file.write_bytes(ca.public_bytes(pem))
    return ca_file, proxy_file


def certificate_names(pem_file: Path) -> set[str]:
    """The DNS names and IP addresses a PEM certificate is valid for."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem_file.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(sans.get_values_for_type(x509.DNSName)) | {str(a) for a in sans.get_values_for_type(x509.IPAddress)}


def load_secrets(path: Path) -> dict[str, str]:
    """The stack's passwords and client secrets: generated at first start, kept in ``path`` (0600)."""
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in SECRET_NAMES if n not in known]
    if missing:
        known.update({n: secrets.token_urlsafe(24) for n in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2) + "\n")
        path.chmod(0o600)
    return known


@dataclass(frozen=True)
class NodePorts:
    http: int
    management: int
    jgroups: int


@dataclass
class ProductionStack:
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

    def node_options_of(self, i: int) -> list[str]:
        """Node ``i``'s `kc.sh start` options (the same for `update-compatibility`)."""
        ports = self.nodes[i]
        return ["--optimized",
                "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={ports.http}",
                f"--http-management-port={ports.management}",
                f"--hostname={self.public_url}", "--proxy-headers=xforwarded",
                "--proxy-trusted-addresses=127.0.0.1/32",
                f"--db-url={self.postgres.jdbc_url('keycloak')}", "--db-username=keycloak",
                "--db-pool-min-size=2", "--db-pool-max-size=25",
                "--cache=ispn", "--cache-stack=jdbc-ping",
                "--cache-embedded-network-bind-address=127.0.0.1",
                f"--cache-embedded-network-bind-port={ports.jgroups}",
                # The node's name in the cluster view, the metrics' `node` label, the logs, and the `name` of its
                # row in jgroups_ping (which the supervisor deletes once the node's process is gone).
                f"--spi-cache-embedded-default-node-name={self.node_name(i)}",
                f"--shutdown-delay={self.shutdown_delay}", *self.node_options]

    def node_command(self, i: int) -> list[str]:
        return [str(self.homes[i] / "bin" / "kc.sh"), "start", *self.node_options_of(i)]

    def start_node(self, i: int, timeout: float = 300, warm: bool | None = None) -> subprocess.Popen:
        """Start node ``i`` (0-based) and wait for its /health/ready (and, behind the proxy, its warm-up)."""
        self.start_nodes([i], timeout, warm)
        return self.processes[f"keycloak-node{i + 1}"]

    def start_nodes(self, indices: list[int], timeout: float = 300, warm: bool | None = None
                    ) -> dict[int, dict[str, float]]:
        """Start these nodes together (once the schema exists) and wait until each is ready. Once the proxy runs, a
        node gets traffic only when it is warm (``warm``, by default ``warm_up``): the proxy holds it in maintenance
        until then, and this returns once the proxy sends it requests. Returns the seconds each step took, per node."""
        warm = self.warm_up if warm is None else warm
        t0 = time.monotonic()
        gated = self.proxy_running()
        if gated:
            for i in indices:
                self.runtime.set_state(self.server_name(i), "maint")
        steps: dict[int, dict[str, float]] = {i: {} for i in indices}
        try:
            env = self.node_env()
            procs = {i: self._spawn(f"keycloak-node{i + 1}", self.node_command(i), env=env) for i in indices}
            deadline = time.monotonic() + timeout
            waiting = set(indices)
            while waiting and time.monotonic() < deadline:
                for i in sorted(waiting):
                    if procs[i].poll() is not None:
                        raise RuntimeError(f"Keycloak node {i + 1} exited with {procs[i].returncode}:\n"
                                           f"{tail(self.logs / f'keycloak-node{i + 1}.log')}")
                    if self.node_ready(i):
                        waiting.discard(i)
                        steps[i]["ready"] = time.monotonic() - t0
                time.sleep(0.25)
            if waiting:
                i = min(waiting)
                raise RuntimeError(f"Keycloak node {i + 1} not ready after {timeout}s:\n"
                                   f"{tail(self.logs / f'keycloak-node{i + 1}.log')}")
            if gated and warm:
                for i in indices:
                    self.warm_node(i)
                    steps[i]["warm"] = time.monotonic() - t0
        finally:
            if gated:  # in any case: a cold node is better than a node the proxy forgot
                for i in indices:
                    self.runtime.set_state(self.server_name(i), "ready")
        if gated:
            for i in indices:
                self.wait_routed(i)
                steps[i]["routed"] = time.monotonic() - t0
        return steps

    def restart_node(self, i: int, home: Path | None = None, timeout: float = 300) -> dict[str, float]:
        """Start node ``i`` again (it is stopped or dead), on the build copy ``home`` if given; it gets traffic once
        warm (start_nodes). Returns the seconds each step took."""
        if home is not None:
            self.homes[i] = home
        return self.start_nodes([i], timeout)[i]

    def warm_node(self, i: int) -> dict:
        """Exercise node ``i``'s hot paths directly (not through the proxy) until they run warm."""
        from devstack.warmup import warm_up

        result = warm_up(self, i)
        with open(self.logs / "warmup.log", "a") as f:
            f.write(json.dumps({"node": self.node_name(i), "at": time.strftime("%H:%M:%S"), **result}) + "\n")
        return result

    def realm_exists(self, i: int) -> bool:
        try:
            return requests.get(f"{self.node_url(i)}/realms/{self.realm}", timeout=10).ok
        except requests.RequestException:
            return False

    def proxy_running(self) -> bool:
        proc = self.processes.get("haproxy")
        return proc is not None and proc.poll() is None and self.runtime.path.exists()

    def server_name(self, i: int) -> str:
        """Node ``i``'s server in the proxy (and the value of its route cookie, KC_ROUTE)."""
        return f"kc{i + 1}"

    def wait_routed(self, i: int, timeout: float = 60) -> float:
        """Wait until the proxy sends requests to node ``i``: UP in its statistics and a request pinned to it (by the
        route cookie) answered by it. Returns the seconds waited."""
        t0 = time.monotonic()
        name = self.server_name(i)
        host = self.hostname if "." in self.hostname else f"{self.hostname}.local"
        while time.monotonic() - t0 < timeout:
            status = self.runtime.servers().get(name, {}).get("status", "")
            if status.startswith("UP"):
                with requests.Session() as s:
                    s.cookies.set("KC_ROUTE", name, domain=host, path="/")
                    try:
                        resp = s.get(f"{self.public_url}/realms/master/.well-known/openid-configuration",
                                     timeout=5, verify=str(self.ca_file))
                        if resp.ok and resp.headers.get("X-Served-By") == name:
                            return time.monotonic() - t0
                    except requests.RequestException:
                        pass
            time.sleep(0.25)
        raise RuntimeError(f"the proxy did not send traffic to node {i + 1} within {timeout}s: "
                           f"{self.runtime.servers().get(name)}")

    def node_name(self, i: int) -> str:
        return f"kc{i + 1}-{self.nodes[i].http}"

    def node_ready(self, i: int) -> bool:
        try:
            return requests.get(f"{self.management_url(i)}/health/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def node_process(self, i: int) -> subprocess.Popen | None:
        return self.processes.get(f"keycloak-node{i + 1}")

    def kill_node(self, i: int) -> None:
        """SIGKILL node ``i`` (kc.sh and its JVM: the process group we started it in), as a crash: the supervisor,
        when it runs, notices and starts it again."""
        proc = self.processes[f"keycloak-node{i + 1}"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if not self.supervisor:
            with self.lock:
                self.processes.pop(f"keycloak-node{i + 1}", None)

    def stop_node(self, i: int, timeout: float = 60, drain: bool = True) -> None:
        """Stop node ``i`` gracefully, on purpose (the supervisor leaves it stopped): the proxy first stops sending
        it new clients and waits for its requests in flight (``drain``), then SIGTERM (it leaves the cluster and
        deletes its discovery row); SIGKILL after ``timeout``."""
        with self.lock:
            proc = self.processes.pop(f"keycloak-node{i + 1}")
        if drain and self.proxy_running() and proc.poll() is None:
            self.drain(i)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def drain(self, i: int, timeout: float = 15) -> None:
        """No new request to node ``i`` (maintenance: sticky clients go to another node); wait until the requests
        it is serving are done."""
        name = self.server_name(i)
        self.runtime.set_state(name, "maint")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and int(self.runtime.servers().get(name, {}).get("scur") or 0):
            time.sleep(0.1)

    def forget_node(self, i: int, timeout: float = 10) -> int:
        """Delete the discovery row (jgroups_ping) of node ``i``, whose process is known to be gone: without it,
        Keycloak's split-brain guard keeps the survivor not ready until the row is a minute old (docs/operations.md).
        Waits (up to ``timeout``) until another node has taken over as coordinator, so that there always is one.
        Never call it for a node that may be alive: that row is what the guard needs in a real partition."""
        name = self.node_name(i)
        deadline = time.monotonic() + timeout
        with self.postgres.connect("keycloak") as conn:
            while True:
                taken_over = conn.execute("SELECT 1 FROM jgroups_ping WHERE coord AND name <> %s", (name,)).fetchone()
                if taken_over or time.monotonic() > deadline:
                    return conn.execute("DELETE FROM jgroups_ping WHERE name = %s", (name,)).rowcount
                time.sleep(0.1)

    def cluster_size(self, i: int) -> int | None:
        """The cluster size node ``i`` sees, from its metrics (Infinispan's cache-manager gauge)."""
        try:
            text = requests.get(f"{self.management_url(i)}/metrics", timeout=5).text
        except requests.RequestException:
            return None
        found = re.search(r'^vendor_cluster_size\{cache_manager="keycloak"[^}]*\}\s+([\d.]+)', text, re.M)
        return int(float(found.group(1))) if found else None

    def coordinator(self) -> int | None:
        """Which node (0-based) the cluster's coordinator is: the first member of the latest cluster view a running
        node logged (JGroups' view; the discovery table may hold a dead coordinator's row too)."""
        latest: tuple[str, str] | None = None
        for i in range(len(self.nodes)):
            proc = self.node_process(i)
            log = self.logs / f"keycloak-node{i + 1}.log"
            if proc is None or proc.poll() is not None or not log.exists():
                continue
            views = re.findall(r"^(\S+ \S+) .*ISPN00009[34]: Received new,? (?:MERGED )?cluster view for channel \S+: "
                               r"(?:MergeView::)?\[([^(|\]]+)", log.read_text(errors="replace"), re.M)
            if views and (latest is None or views[-1][0] > latest[0]):
                latest = views[-1]
        for i in range(len(self.nodes)):
            if latest and self.node_name(i) == latest[1].strip():
                return i
        return None

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

    # --- a rolling update -----------------------------------------------------------------------------------
    def update_compatibility(self, new_home: Path) -> tuple[bool, str]:
        """Keycloak's own verdict (`kc.sh update-compatibility`) on moving the nodes from their build copy to
        ``new_home`` one at a time: metadata written by the running version with the nodes' options, checked by the
        new one. (True, its output) when a rolling update is possible, (False, why) when all nodes must stop."""
        metadata = self.state / "update-compatibility.json"
        options = self.node_options_of(0)
        env = self.node_env()
        made = subprocess.run([str(self.homes[0] / "bin" / "kc.sh"), "update-compatibility", "metadata",
                               f"--file={metadata}", *options], env=env, capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"kc.sh update-compatibility metadata failed:\n{made.stdout[-2000:]}{made.stderr[-2000:]}")
        check = subprocess.run([str(new_home / "bin" / "kc.sh"), "update-compatibility", "check",
                                f"--file={metadata}", *options], env=env, capture_output=True, text=True)
        said = (check.stdout + check.stderr).strip().splitlines()
        verdict = next((line for line in reversed(said) if "Rolling Update" in line), said[-1] if said else "")
        if check.returncode not in (0, 3, 4):
            raise RuntimeError(f"kc.sh update-compatibility check failed ({check.returncode}):\n" + "\n".join(said))
        return check.returncode == 0, verdict

    def roll_to(self, version: str, log=lambda msg: print(msg, file=sys.stderr)) -> list[dict]:
        """Move every node to Keycloak ``version`` without downtime, once Keycloak says a rolling update is possible:
        node by node (the coordinator last), each drained, stopped gracefully, started on the new version, warmed and
        given traffic again before the next one stops. Returns each step's timings."""
        new_home = optimized_keycloak(version=version)
        rolling, verdict = self.update_compatibility(new_home)
        log(f"» kc.sh update-compatibility check: {verdict}")
        if not rolling:
            raise RuntimeError(f"Keycloak refuses a rolling update to {version}: {verdict} — stop every node, then "
                               f"start them on {version} (docs/operations.md, Upgrading Keycloak)")
        coordinator = self.coordinator()
        order = sorted(range(len(self.nodes)), key=lambda i: i == coordinator)
        steps = []
        for i in order:
            if self.homes[i] == new_home:
                continue
            t0 = time.monotonic()
            log(f"» node {i + 1}: draining and stopping ({self.homes[i].name}) ...")
            self.stop_node(i)
            stopped = time.monotonic() - t0
            log(f"» node {i + 1}: starting Keycloak {version}, warming it up, then back behind the proxy ...")
            timings = self.restart_node(i, home=new_home)
            steps.append({"node": i + 1, "stopped_s": round(stopped, 1),
                          **{f"{k}_s": round(v + stopped, 1) for k, v in timings.items()}})
            log(f"» node {i + 1}: on {version}, taking traffic ({steps[-1]})")
        self.keycloak_version = version
        return steps

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


def wait_http(url: str, proc: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 90,
              verify: bool | str = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}:\n{tail(log) if log else ''}")
        try:
            if requests.get(url, timeout=3, allow_redirects=False, verify=verify).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{tail(log) if log else ''}")


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
