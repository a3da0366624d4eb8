"""A PostgreSQL cluster of our own (Debian's server binaries), on loopback, started and stopped by its PID.

Used by the production shape (`scripts/start --production`, devstack/production.py), its tests and bench/;
never by production code. On first start the cluster is created with `initdb` in ``data_dir``; its
superuser password is generated then and kept beside it (``<data_dir>.password``, mode 0600).

PostgreSQL refuses to run as root: when we are root the server runs as the ``postgres`` system user
(Debian's package creates it) and the data directory is chowned to it. Unix sockets are off: the server
listens on 127.0.0.1 only, password (scram) authentication only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

PG_VERSION = os.environ.get("PG_VERSION", "15")
SUPERUSER = "postgres"


def pg_bin(name: str) -> Path:
    """A PostgreSQL server program (initdb, postgres, pg_dump...): PG_BIN, else Debian's /usr/lib/postgresql/."""
    base = Path(os.environ.get("PG_BIN", f"/usr/lib/postgresql/{PG_VERSION}/bin"))
    if not (base / name).exists():
        found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        if not found:
            raise SystemExit(f"PostgreSQL's {name} not found in {base}: apt-get install postgresql (or set PG_BIN)")
        return found[-1]
    return base / name


class PostgresServer:
    """One PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``."""

    def __init__(self, data_dir: Path, port: int, log_file: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.log_file = log_file or self.data_dir.with_name(f"{self.data_dir.name}.log")
        self.password_file = self.data_dir.with_name(f"{self.data_dir.name}.password")
        self.process: subprocess.Popen | None = None

    # --- where and how to reach it ---------------------------------------------------------------------------
    @property
    def password(self) -> str:
        """The superuser's password (generated at initdb)."""
        return self.password_file.read_text().strip()

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """The SQLAlchemy URL of a database (psycopg 3 driver); the superuser's unless a user is given."""
        user = user or SUPERUSER
        password = password if password is not None else (self.password if user == SUPERUSER else "")
        credentials = f"{user}:{password}" if password else user
        return f"postgresql+psycopg://{credentials}@127.0.0.1:{self.port}/{database}"

    def jdbc_url(self, database: str) -> str:
        """The JDBC URL Keycloak takes (KC_DB_URL)."""
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kw) -> psycopg.Connection:
        """A psycopg connection as the superuser (autocommit)."""
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=database, user=SUPERUSER,
                               password=self.password, autocommit=True, connect_timeout=3, **kw)

    @property
    def pid(self) -> int | None:
        """The postmaster's PID from postmaster.pid when that process is alive, else None."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, IndexError, ProcessLookupError, PermissionError):
            return None
        return pid

    def is_ready(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1")
            return True
        except (psycopg.Error, FileNotFoundError):
            return False

    # --- lifecycle -------------------------------------------------------------------------------------------
    def _as_owner(self) -> dict:
        """Popen keyword arguments that run a server program as its owner (postgres when we are root)."""
        return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def initdb(self) -> None:
        """Create the cluster (once): superuser `postgres` with a generated password, loopback, scram only."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown(self.data_dir)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
        pwfile = self.data_dir.with_name(f".{self.data_dir.name}.initdb-pw")
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        try:
            subprocess.run([str(pg_bin("initdb")), "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
                            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                           check=True, capture_output=True, text=True, **self._as_owner())
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"initdb failed:\n{e.stdout}\n{e.stderr}") from None
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# --- devstack/postgres.py ---\n"
                       "listen_addresses = '127.0.0.1'\n"
                       "unix_socket_directories = ''\n"
                       "max_connections = 200\n"
                       "shared_buffers = 128MB\n"
                       "password_encryption = 'scram-sha-256'\n")
        (self.data_dir / "pg_hba.conf").write_text(
            "# devstack/postgres.py: loopback TCP only, passwords only\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")

    def start(self, timeout: float = 60) -> "PostgresServer":
        """initdb on first use, start the server, block until it accepts connections.

        A server already running on this data directory (a previous run's) is adopted and used as is.
        """
        self.initdb()
        if self.pid is not None:
            if self._wait_ready(timeout):
                return self
            raise RuntimeError(f"PostgreSQL pid {self.pid} holds {self.data_dir} but does not answer on {self.port}")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            [str(pg_bin("postgres")), "-D", str(self.data_dir), "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as_owner())
        log.close()
        if not self._wait_ready(timeout):
            self.kill()
            raise RuntimeError(f"PostgreSQL not ready on 127.0.0.1:{self.port} after {timeout}s:\n{self._tail()}")
        return self

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with {self.process.returncode}:\n{self._tail()}")
            if self.is_ready():
                return True
            time.sleep(0.3)
        return False

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT to the postmaster by its PID: sessions are cut, data is safe); SIGKILL after
        ``timeout``."""
        pid = self.pid
        if pid is None:
            self._reap()
            return
        os.kill(pid, signal.SIGINT)
        if not self._wait_gone(pid, timeout):
            self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash: the next start recovers from the WAL). Its backends notice and exit."""
        pid = self.pid or (self.process.pid if self.process and self.process.poll() is None else None)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait_gone(pid, 10)
        self._reap()

    def restart(self, down_for: float = 0.0, timeout: float = 60) -> None:
        """Stop (fast), stay down ``down_for`` seconds, start again."""
        self.stop()
        time.sleep(down_for)
        self.start(timeout=timeout)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.pid == pid:
                if self.process.poll() is not None:
                    return True
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
            time.sleep(0.1)
        return False

    def _reap(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.process = None

    # --- databases, roles, backups ---------------------------------------------------------------------------
    def create_database(self, name: str, owner: str | None = None, password: str | None = None) -> None:
        """Create the database (and its owner role with that password) unless they exist; idempotent."""
        with self.connect() as conn:
            if owner:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
                verb = "ALTER" if exists else "CREATE"
                if password is not None:
                    conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(owner), sql.Literal(password)))
                elif not exists:
                    conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN").format(sql.Identifier(owner)))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner or SUPERUSER)))

    def drop_database(self, name: str) -> None:
        """Drop the database, cutting its open sessions (a wipe)."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password, "PGHOST": "127.0.0.1", "PGPORT": str(self.port),
                "PGUSER": SUPERUSER}

    def dump(self, database: str, path: Path, exclude_table_data: tuple[str, ...] = ()) -> Path:
        """pg_dump in custom format (compressed, restorable with pg_restore) to ``path``; the tables named in
        ``exclude_table_data`` are dumped empty (e.g. Keycloak's `jgroups_ping`: runtime discovery data)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(pg_bin("pg_dump")), "--format=custom", f"--file={path}",
                        *(f"--exclude-table-data={t}" for t in exclude_table_data), database],
                       env=self._client_env(), check=True, capture_output=True, text=True)
        return path

    def restore(self, database: str, path: Path, owner: str | None = None) -> None:
        """Recreate ``database`` empty (dropping the current one) and load the dump ``path`` into it.

        Whatever uses the database (Keycloak, the portal) should be stopped first: its sessions are cut.
        """
        with self.connect() as conn:
            row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                               (database,)).fetchone()
        owner = owner or (row[0] if row else SUPERUSER)
        self.drop_database(database)
        self.create_database(database, owner=owner if owner != SUPERUSER else None)
        result = subprocess.run([str(pg_bin("pg_restore")), "--exit-on-error", "--no-owner", f"--role={owner}",
                                 f"--dbname={database}", str(path)],
                                env=self._client_env(), capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"pg_restore of {path} into {database} failed:\n{result.stderr}")

    def _tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":  # python -m devstack.postgres DATA_DIR PORT: start it, wait for Ctrl-C, stop
    import sys

    server = PostgresServer(Path(sys.argv[1]), int(sys.argv[2])).start()
    print(f"PostgreSQL on 127.0.0.1:{server.port} (pid {server.pid}); superuser password in {server.password_file}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
