"""The production shape on this machine, without containers: PostgreSQL, two clustered Keycloak nodes, HAProxy.

    PostgreSQL (devstack/postgres.py, our own cluster under var/)
        databases `keycloak` (Keycloak's) and `cimr` (ours: trail, secret answers, sessions)
    Keycloak, built once (`kc.sh build`: PostgreSQL, our extension, health, metrics) into a copy of the
        pinned distribution, run as two nodes (`start --optimized`) on loopback, one Infinispan cluster
        (JGroups, `jdbc-ping` discovery through the shared database)
    HAProxy: TLS (a certificate made at first start, signed by a local CA) in front of both nodes, health
        checks on each node's management port (/health/ready), sticky by cookie, failover on a dead node
    the portal under gunicorn, the reference teleservices, the SMTP sink; all of them reach Keycloak through
        the proxy's public URL and trust the local CA (SSL_CERT_FILE / REQUESTS_CA_BUNDLE)

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
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.keycloak_server import CACHE_DIR, KEYCLOAK_VERSION, build_extension, EXTENSION_JAR, keycloak_home
from devstack.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
# Build options: changing them (or the extension) makes a new build copy (keyed by their hash).
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--metrics-enabled=true")
TELESERVICES = {"teledeclaration": 8101, "compte-adherent": 8102, "easypaiement": 8103, "eliquidation": 8104}
SECRET_NAMES = ("KEYCLOAK_ADMIN_PASSWORD", "KC_DB_PASSWORD", "CIMR_DB_PASSWORD", "PORTAL_SECRET_KEY",
                "PROVISIONER_CLIENT_SECRET", "AUDITOR_CLIENT_SECRET", "DELEGATIONS_CLIENT_SECRET",
                "PORTAL_CLIENT_SECRET", "TELEDECLARATION_CLIENT_SECRET", "COMPTE_ADHERENT_CLIENT_SECRET",
                "EASYPAIEMENT_CLIENT_SECRET", "ELIQUIDATION_CLIENT_SECRET")


def optimized_keycloak(options: tuple[str, ...] = BUILD_OPTIONS) -> Path:
    """A copy of the pinned distribution with our extension, built (`kc.sh build`) with ``options``.

    The cached distribution is never changed: the copy lives beside it, named by a hash of the options and the
    extension jar, so it is rebuilt only when they change. Built in a temporary directory, then renamed.
    """
    source = keycloak_home()
    jar = build_extension(source)
    digest = hashlib.sha256(KEYCLOAK_VERSION.encode() + "\0".join(options).encode() + jar.read_bytes())
    home = CACHE_DIR / f"keycloak-{KEYCLOAK_VERSION}-optimized-{digest.hexdigest()[:12]}"
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
    copies = sorted(CACHE_DIR.glob(f"keycloak-{KEYCLOAK_VERSION}-optimized-*"), key=lambda p: p.stat().st_mtime)
    for old in copies[:-3]:
        shutil.rmtree(old, ignore_errors=True)
    return home


def make_certificates(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
    """A local CA and the proxy's certificate signed by it (made once); returns (ca.pem, proxy.pem cert+key)."""
    ca_file, proxy_file = directory / "ca.pem", directory / "proxy.pem"
    if ca_file.exists() and proxy_file.exists():
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
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=397))
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
    portal_port: int = 8000
    smtp_port: int = 2525
    teleservices: dict[str, int] = field(default_factory=lambda: dict(TELESERVICES))
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
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = Path(self.state).resolve()
        self.logs = self.state / "logs"
        self.postgres = PostgresServer(self.state / "postgres", self.postgres_port,
                                       log_file=self.logs / "postgres.log")
        self.secrets: dict[str, str] = {}

    # --- addresses ----------------------------------------------------------------------------------------
    @property
    def public_url(self) -> str:
        """Keycloak's public URL: the proxy (KC_HOSTNAME, KEYCLOAK_URL of every client)."""
        return f"https://{self.hostname}:{self.proxy_port}"

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def ca_file(self) -> Path:
        return self.state / "tls" / "ca.pem"

    def node_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.nodes[i].http}"

    def management_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.nodes[i].management}"

    def env(self) -> dict[str, str]:
        """The environment of our processes (provisioner, portal, teleservices): Keycloak via the proxy."""
        s = self.secrets
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYCLOAK_", "REALM_VAR_", "KC_"))}
        env.update({
            "KEYCLOAK_URL": self.public_url,
            "KEYCLOAK_REALM": self.realm,
            "KEYCLOAK_ADMIN_USER": "admin",
            "KEYCLOAK_ADMIN_PASSWORD": s["KEYCLOAK_ADMIN_PASSWORD"],
            "DATABASE_URL": self.postgres.url("cimr", "cimr", s["CIMR_DB_PASSWORD"]),
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port),
            "PORTAL_URL": self.portal_url,
            "PORTAL_SECRET_KEY": s["PORTAL_SECRET_KEY"],
            # Our processes trust the local CA that signed the proxy's certificate (httpx, then requests).
            "SSL_CERT_FILE": str(self.ca_file), "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "REALM_VAR_PORTAL_URL": self.portal_url,
            "REALM_VAR_TELESERVICES_HOST": f"http://{self.teleservices_host}",
        })
        for name in SECRET_NAMES:
            if name.endswith("_CLIENT_SECRET"):
                env[name] = s[name]
                env[f"REALM_VAR_{name}"] = s[name]
        return env

    # --- start / stop -------------------------------------------------------------------------------------
    def start(self, with_apps: bool = True, log=lambda msg: print(msg, file=sys.stderr)) -> "ProductionStack":
        """Everything, in order; each step waits for the previous one to be healthy. On failure, stops what
        it started and raises RuntimeError naming the log to read."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.secrets = load_secrets(self.state / "secrets.json")
        try:
            log(f"» PostgreSQL on 127.0.0.1:{self.postgres_port} ({self.postgres.data_dir}) ...")
            self.postgres.start()
            self.postgres.create_database("keycloak", owner="keycloak", password=self.secrets["KC_DB_PASSWORD"])
            self.postgres.create_database("cimr", owner="cimr", password=self.secrets["CIMR_DB_PASSWORD"])
            self.home = optimized_keycloak()
            make_certificates(self.state / "tls")
            # The first node creates the schema; the second joins once it is there.
            for i in range(len(self.nodes)):
                log(f"» Keycloak node {i + 1} on 127.0.0.1:{self.nodes[i].http} (start --optimized) ...")
                self.start_node(i)
            log(f"» HAProxy on https://{self.hostname}:{self.proxy_port} ...")
            self.start_proxy()
            if with_apps:
                self.start_apps(log)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, env=env or self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **kw)
        log.close()
        self.processes[name] = proc
        return proc

    def node_command(self, i: int) -> list[str]:
        ports = self.nodes[i]
        return [str(self.home / "bin" / "kc.sh"), "start", "--optimized",
                "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={ports.http}",
                f"--http-management-port={ports.management}",
                f"--hostname={self.public_url}", "--proxy-headers=xforwarded",
                "--proxy-trusted-addresses=127.0.0.1/32",
                f"--db-url={self.postgres.jdbc_url('keycloak')}", "--db-username=keycloak",
                "--db-pool-min-size=2", "--db-pool-max-size=25",
                "--cache=ispn", "--cache-stack=jdbc-ping",
                "--cache-embedded-network-bind-address=127.0.0.1",
                f"--cache-embedded-network-bind-port={ports.jgroups}",
                # The node's name in the cluster view, the metrics' `node` label and the logs.
                f"--spi-cache-embedded-default-node-name={self.node_name(i)}", *self.node_options]

    def start_node(self, i: int, timeout: float = 300) -> subprocess.Popen:
        """Start node ``i`` (0-based) and wait for its /health/ready."""
        self.start_nodes([i], timeout)
        return self.processes[f"keycloak-node{i + 1}"]

    def start_nodes(self, indices: list[int], timeout: float = 300) -> None:
        """Start these nodes together (once the schema exists) and wait until each is ready."""
        env = {**os.environ,
               "KC_DB_PASSWORD": self.secrets["KC_DB_PASSWORD"],
               "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
               "KC_BOOTSTRAP_ADMIN_PASSWORD": self.secrets["KEYCLOAK_ADMIN_PASSWORD"],
               "JAVA_OPTS_KC_HEAP": self.node_heap}
        env = {k: v for k, v in env.items() if k not in ("KEYCLOAK_HOME",)}
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
            time.sleep(1)
        if waiting:
            i = min(waiting)
            raise RuntimeError(f"Keycloak node {i + 1} not ready after {timeout}s:\n"
                               f"{tail(self.logs / f'keycloak-node{i + 1}.log')}")

    def node_name(self, i: int) -> str:
        return f"kc{i + 1}-{self.nodes[i].http}"

    def node_ready(self, i: int) -> bool:
        try:
            return requests.get(f"{self.management_url(i)}/health/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def kill_node(self, i: int) -> None:
        """SIGKILL node ``i`` (kc.sh and its JVM: the process group we started it in)."""
        proc = self.processes.pop(f"keycloak-node{i + 1}")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_node(self, i: int, timeout: float = 60) -> None:
        """Stop node ``i`` gracefully (SIGTERM: it leaves the cluster), SIGKILL after ``timeout``."""
        proc = self.processes.pop(f"keycloak-node{i + 1}")
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def cluster_size(self, i: int) -> int | None:
        """The cluster size node ``i`` sees, from its metrics (Infinispan's cache-manager gauge)."""
        try:
            text = requests.get(f"{self.management_url(i)}/metrics", timeout=5).text
        except requests.RequestException:
            return None
        found = re.search(r'^vendor_cluster_size\{cache_manager="keycloak"[^}]*\}\s+([\d.]+)', text, re.M)
        return int(float(found.group(1))) if found else None

    def coordinator(self) -> int | None:
        """Which node (0-based) the cluster's coordinator is, as JGroups' jdbc-ping table records it."""
        with self.postgres.connect("keycloak") as conn:
            rows = conn.execute("SELECT * FROM jgroups_ping").fetchall()
        for row in rows:
            if True in row:
                for i in range(len(self.nodes)):
                    if self.node_name(i) in row:
                        return i
        return None

    def haproxy_config(self, pem: Path) -> str:
        servers = "\n".join(
            f"    server kc{i + 1} 127.0.0.1:{n.http} check port {n.management} cookie kc{i + 1}"
            for i, n in enumerate(self.nodes))
        return f"""# Generated by devstack/production.py: TLS in front of the Keycloak nodes.
global
    log stdout format raw local0 info
    maxconn 2000
    ssl-default-bind-options ssl-min-ver TLSv1.2
    # A port already taken is an error at start, not shared with another proxy half of the connections go to.
    noreuseport

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    # A connection refused (a dead node) is retried on the other node; a request a node may have seen is not.
    retries 3
    retry-on conn-failure
    option redispatch 1

frontend keycloak
    bind 127.0.0.1:{self.proxy_port} ssl crt {pem} alpn http/1.1
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Port {self.proxy_port}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    # Which node answered (tests, operators reading a HAR); drop it if the node names must stay private.
    http-response set-header X-Served-By %[srv_name]
    default_backend keycloak_nodes

backend keycloak_nodes
    balance roundrobin
    # Sticky sessions (Keycloak's advice: fewer remote cache reads); a dead node's clients go to the other.
    cookie KC_ROUTE insert indirect nocache secure httponly
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 1s fastinter 500ms downinter 2s fall 2 rise 2 on-marked-down shutdown-sessions
{servers}

frontend stats
    bind 127.0.0.1:{self.proxy_port + 1000}
    stats enable
    stats uri /
    stats refresh 5s
"""

    def start_proxy(self, timeout: float = 30) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise RuntimeError("haproxy not found: apt-get install haproxy")
        _, pem = make_certificates(self.state / "tls")
        config = self.state / "haproxy.cfg"
        config.write_text(self.haproxy_config(pem))
        check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"haproxy refuses {config}:\n{check.stdout}{check.stderr}")
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

    def start_apps(self, log=lambda msg: print(msg, file=sys.stderr), teleservices: bool = True) -> None:
        """Realm applied, SMTP sink, portal (gunicorn), reference teleservices."""
        py = sys.executable
        env = self.env()
        log("» Applying realm/ (through the proxy) ...")
        result = subprocess.run([py, "-m", "provisioner", "apply"], env=env, cwd=ROOT, capture_output=True, text=True)
        (self.logs / "apply.log").write_text(result.stdout + result.stderr)
        if result.returncode:
            raise RuntimeError(f"provisioner apply failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        log(f"» SMTP sink on 127.0.0.1:{self.smtp_port} (mail in {self.logs / 'mail.log'}) ...")
        self._spawn("mail", [py, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.smtp_port}",
                             "-c", "aiosmtpd.handlers.Debugging"])
        log(f"» Portal under gunicorn ({self.portal_workers} workers × {self.portal_threads} threads) on "
            f"{self.portal_url} ...")
        self._spawn("portal", [py, "-m", "gunicorn", "-w", str(self.portal_workers), "--threads",
                               str(self.portal_threads), "--timeout", "60",
                               "-b", f"127.0.0.1:{self.portal_port}", "portal:create_app()"])
        if teleservices:
            for client_id, port in self.teleservices.items():
                self._spawn(f"teleservice-{client_id}", [py, "-m", "teleservice", "--client-id", client_id,
                                                         "--port", str(port), "--host", self.teleservices_host])
        wait_http(f"{self.portal_url}/", self.processes["portal"], self.logs / "portal.log")
        if teleservices:
            for client_id, port in self.teleservices.items():
                wait_http(f"http://{self.teleservices_host}:{port}/", self.processes[f"teleservice-{client_id}"],
                          self.logs / f"teleservice-{client_id}.log")

    def stop(self) -> None:
        """Stop what we started, apps first, each by its PID (SIGTERM, SIGKILL after 30 s), then PostgreSQL."""
        order = sorted(self.processes, key=lambda n: (n.startswith("keycloak"), n == "haproxy"))
        for name in order:
            proc = self.processes.pop(name)
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
        self.postgres.stop()

    def summary(self) -> str:
        teleservices = "  ".join(f"http://{self.teleservices_host}:{p} ({c})" for c, p in self.teleservices.items())
        nodes = "  ".join(f"node {i + 1} {self.node_url(i)} (management {self.management_url(i)})"
                          for i in range(len(self.nodes)))
        return f"""CIMR teleservices are running in the production shape.

  Portal (delegates, agents, auditors)  {self.portal_url}  (gunicorn, {self.portal_workers} workers)
  Keycloak (through HAProxy, TLS)       {self.public_url}/admin  (admin / see {self.state / 'secrets.json'})
  Keycloak nodes (one cluster)          {nodes}
  HAProxy statistics                    http://127.0.0.1:{self.proxy_port + 1000}/
  PostgreSQL                            127.0.0.1:{self.postgres_port} (databases keycloak, cimr; {self.postgres.data_dir})
  Local CA (trust it to browse)         {self.ca_file}
  Teleservices                          {teleservices}
  Mail sink                             {self.logs / 'mail.log'}
  Logs                                  {self.logs}/*.log
"""


def wait_http(url: str, proc: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}:\n{tail(log) if log else ''}")
        try:
            if requests.get(url, timeout=3, allow_redirects=False).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{tail(log) if log else ''}")


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
