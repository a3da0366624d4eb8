"""Obtain the pinned Keycloak distribution from Maven Central, add our extension, start it on loopback, stop.

Used by the test session fixture, bench/ and ``scripts/start``; never by production code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests

KEYCLOAK_VERSION = "26.7.5"  # see docs/keycloak-version.md
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
CACHE_DIR = Path(os.environ.get("KEYCLOAK_CACHE", Path.home() / ".cache" / "cimr-keycloak"))
EXTENSION_DIR = Path(__file__).resolve().parent.parent / "keycloak-extension"
EXTENSION_JAR = "cimr-keycloak-audit.jar"


def keycloak_home(version: str = KEYCLOAK_VERSION) -> Path:
    """KEYCLOAK_HOME if set (for the pinned version), else the cached distribution of ``version``, fetched with mvn
    and unzipped on first use."""
    if os.environ.get("KEYCLOAK_HOME") and version == KEYCLOAK_VERSION:
        home = Path(os.environ["KEYCLOAK_HOME"])
        if not (home / "bin" / "kc.sh").exists():
            raise SystemExit(f"KEYCLOAK_HOME={home} has no bin/kc.sh")
        return home
    home = CACHE_DIR / f"keycloak-{version}"
    if (home / "bin" / "kc.sh").exists():
        return home
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    zip_path = CACHE_DIR / f"keycloak-quarkus-dist-{version}.zip"
    if not zip_path.exists():
        print(f"Fetching Keycloak {version} from Maven Central ...", file=sys.stderr)
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{version}:zip",
             f"-DoutputDirectory={CACHE_DIR}"],
            check=True, stdout=sys.stderr,
        )
    tmp = CACHE_DIR / f".unzip-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(tmp)
    extracted = tmp / f"keycloak-{version}"
    for script in (extracted / "bin").glob("*.sh"):
        script.chmod(0o755)
    extracted.rename(home)
    shutil.rmtree(tmp, ignore_errors=True)
    return home


def build_extension(home: Path, version: str = KEYCLOAK_VERSION) -> Path:
    """keycloak-extension/ compiled against this distribution's own jars (of ``version``; cached by source hash).

    Plain javac + zip: the distribution already holds every class it compiles against, so nothing is
    downloaded. Raises SystemExit naming the missing JDK when javac is absent.
    """
    sources = sorted(p for p in (EXTENSION_DIR / "src" / "main").rglob("*") if p.is_file())
    digest = hashlib.sha256(version.encode())
    for path in sources:
        digest.update(str(path.relative_to(EXTENSION_DIR)).encode() + path.read_bytes())
    jar = CACHE_DIR / "extension" / f"{digest.hexdigest()[:16]}" / EXTENSION_JAR
    if jar.exists():
        return jar
    javac = shutil.which("javac") or (Path(os.environ.get("JAVA_HOME", "/nonexistent")) / "bin" / "javac")
    if not Path(javac).exists():
        raise SystemExit("javac not found: the Keycloak extension needs a JDK 17 "
                         "(apt-get install openjdk-17-jdk-headless, or set JAVA_HOME)")
    classes = jar.parent / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    java = [str(p) for p in sources if p.suffix == ".java"]
    subprocess.run([str(javac), "--release", "17", "-nowarn", "-cp", str(home / "lib" / "lib" / "main" / "*"),
                    "-d", str(classes), *java], check=True, stdout=sys.stderr)
    resources = EXTENSION_DIR / "src" / "main" / "resources"
    tmp = jar.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for root in (classes, resources):
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                z.write(path, path.relative_to(root).as_posix())
    tmp.rename(jar)
    return jar


def install_extension(home: Path) -> Path:
    """Put our extension (bulk audit read, keycloak-extension/) in the distribution's providers/."""
    jar = build_extension(home)
    target = home / "providers" / EXTENSION_JAR
    if not target.exists() or target.read_bytes() != jar.read_bytes():
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(jar, target)
    return target


@dataclass
class KeycloakServer:
    """A Keycloak started from the distribution in dev mode on loopback."""

    http_port: int = 8080
    management_port: int = 9000
    admin_user: str = "admin"
    admin_password: str = "admin"
    # Its dev-file H2 database: <distribution>/data/h2/<database>.mv.db. Keycloak's dev-file URL ignores
    # --db-url-database (always data/h2/keycloakdb), so the URL is given whole, with dev-file's own options.
    database: str = "keycloakdb"
    log_file: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def _database_path(self) -> Path:
        return keycloak_home() / "data" / "h2" / self.database  # H2 adds .mv.db

    @property
    def database_file(self) -> Path:
        """Where its dev-file database lives (absent until the first start)."""
        return self._database_path.with_name(f"{self.database}.mv.db")

    @property
    def _database_url(self) -> str:
        return f"jdbc:h2:file:{self._database_path};NON_KEYWORDS=VALUE;DB_CLOSE_ON_EXIT=FALSE;DB_CLOSE_DELAY=0"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def is_ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.management_port}/health/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def start(self, timeout: float = 240) -> "KeycloakServer":
        """Start Keycloak and block until /health/ready answers; raises RuntimeError with the log tail."""
        if self.is_ready():
            raise RuntimeError(f"something already answers on port {self.management_port}; stop it or pick other ports")
        home = keycloak_home()
        install_extension(home)
        env = dict(os.environ)
        env.update(
            KC_BOOTSTRAP_ADMIN_USERNAME=self.admin_user,
            KC_BOOTSTRAP_ADMIN_PASSWORD=self.admin_password,
            JAVA_OPTS_KC_HEAP=env.get("JAVA_OPTS_KC_HEAP", "-Xms256m -Xmx1536m"),
        )
        log_file = self.log_file or (home / f"keycloak-{self.http_port}.log")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        args = [
            str(home / "bin" / "kc.sh"), "start-dev",
            "--http-host=127.0.0.1", f"--http-port={self.http_port}",
            f"--http-management-port={self.management_port}",
            "--health-enabled=true", "--metrics-enabled=true",
            f"--db-url={self._database_url}",
            "--cache=local",
        ]
        self._log = open(log_file, "ab")
        self.log_file = log_file
        self.process = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Keycloak exited with {self.process.returncode}:\n{self._tail()}")
            if self.is_ready():
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"Keycloak not ready after {timeout}s:\n{self._tail()}")

    def stop(self) -> None:
        """Stop Keycloak (SIGTERM to its process group, SIGKILL after 30 s)."""
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()

    def _tail(self, lines: int = 40) -> str:
        if not self.log_file or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":  # python -m devstack.keycloak_server fetch
    if sys.argv[1:] == ["fetch"]:
        print(keycloak_home())
    else:
        raise SystemExit("usage: python -m devstack.keycloak_server fetch")
