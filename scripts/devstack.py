"""Start the whole stack on loopback with the embedded defaults, print where to go, stop on Ctrl-C.

Keycloak (dev-file database) -> realm applied from realm/ -> SMTP sink -> demo data -> portal and
the four reference teleservices. ``--smoke`` starts everything, checks every URL answers, then stops.
``--production`` starts the production shape instead (devstack/production.py): PostgreSQL, two clustered
Keycloak nodes in production mode behind HAProxy (TLS), the portal under gunicorn, teleservices, SMTP sink.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.keycloak_server import KeycloakServer  # noqa: E402
from devstack.processes import wait_http  # noqa: E402

VAR = ROOT / "var"
DB = VAR / "cimr.db"  # our database, unless DATABASE_URL says otherwise
TELESERVICES = {"teledeclaration": 8101, "compte-adherent": 8102, "easypaiement": 8103, "eliquidation": 8104}
DEV_ENV = {
    "KEYCLOAK_URL": "http://127.0.0.1:8080",
    "KEYCLOAK_REALM": "cimr",
    "KEYCLOAK_ADMIN_USER": "admin",
    "KEYCLOAK_ADMIN_PASSWORD": "admin",
    "PROVISIONER_CLIENT_SECRET": "dev-provisioner-secret",
    "AUDITOR_CLIENT_SECRET": "dev-auditor-secret",
    "DELEGATIONS_CLIENT_SECRET": "dev-delegations-secret",
    "PORTAL_CLIENT_SECRET": "dev-portal-secret",
    "TELEDECLARATION_CLIENT_SECRET": "dev-teledeclaration-secret",
    "COMPTE_ADHERENT_CLIENT_SECRET": "dev-compte-adherent-secret",
    "EASYPAIEMENT_CLIENT_SECRET": "dev-easypaiement-secret",
    "ELIQUIDATION_CLIENT_SECRET": "dev-eliquidation-secret",
    "DATABASE_URL": f"sqlite:///{DB}",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "2525",
    "PORTAL_URL": "http://127.0.0.1:8000",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="start, check every service answers, stop")
    parser.add_argument("--production", action="store_true",
                        help="PostgreSQL, two clustered Keycloak nodes (start --optimized) behind HAProxy with TLS")
    args = parser.parse_args()
    if args.production:
        return production(args.smoke)
    VAR.mkdir(exist_ok=True)
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in DEV_ENV.items()}}
    py = sys.executable
    children: list[subprocess.Popen] = []

    def spawn(name: str, *cmd: str) -> None:
        log = open(VAR / f"{name}.log", "ab")
        children.append(subprocess.Popen(list(cmd), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True))

    keycloak = KeycloakServer(http_port=8080, management_port=9000, database="cimr-dev",
                              admin_user=env["KEYCLOAK_ADMIN_USER"], admin_password=env["KEYCLOAK_ADMIN_PASSWORD"],
                              log_file=VAR / "keycloak.log")
    try:
        if keycloak.is_ready():
            print("» Keycloak already running on :8080, reusing it")
        else:
            if not keycloak.database_file.exists() and DB.exists() and "DATABASE_URL" not in os.environ:
                # A new Keycloak database: our database speaks of users and adherents it no longer has.
                kept = DB.with_name(f"cimr.db.before-{time.strftime('%Y%m%d-%H%M%S')}")
                DB.rename(kept)
                print(f"» New Keycloak database: our previous database (its users were in the old one) moved "
                      f"to {kept.relative_to(ROOT)}")
            print("» Starting Keycloak (first start takes about a minute) ...")
            keycloak.start()
        print("» Applying realm/ ...")
        subprocess.run([py, "-m", "provisioner", "apply"], env=env, cwd=ROOT, check=True)
        print("» Starting the SMTP sink on 127.0.0.1:2525 (mail printed to var/mail.log) ...")
        spawn("mail", py, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:2525", "-c", "aiosmtpd.handlers.Debugging")
        print("» Seeding demo data ...")
        demo = subprocess.run([py, "-m", "devstack.demo"], env=env, cwd=ROOT, check=True, capture_output=True,
                              text=True)
        print("» Starting the portal and the reference teleservices ...")
        spawn("portal", py, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:8000", "portal:create_app()")
        for client_id, port in TELESERVICES.items():
            spawn(f"teleservice-{client_id}", py, "-m", "teleservice", "--client-id", client_id, "--port", str(port))
        wait_http("http://127.0.0.1:8000/", log=VAR / "portal.log")
        for port in TELESERVICES.values():
            wait_http(f"http://127.0.0.1:{port}/")
        print(f"""
CIMR teleservices are running.

  Portal (delegates, agents, auditors)  http://127.0.0.1:8000
  Keycloak admin console                http://127.0.0.1:8080/admin  (admin / admin, master realm)
  Teleservices                          {'  '.join(f'http://127.0.0.1:{p} ({c})' for c, p in TELESERVICES.items())}
  Mail sink                             var/mail.log
  Logs                                  var/*.log

{demo.stdout.strip()}
""")
        if args.smoke:
            return 0
        print("Press Ctrl-C to stop.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    finally:
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        keycloak.stop()


def production(smoke: bool) -> int:
    """The production shape (devstack/production.py), demo data seeded, summary printed, stopped on Ctrl-C. Its
    supervisor restarts what crashes (devstack/supervisor.py); `scripts/upgrade-keycloak VERSION` rolls its nodes
    through the control socket (devstack/control.py)."""
    from devstack.control import ControlServer
    from devstack.production import ProductionStack

    stack = ProductionStack()
    control = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.start(log=lambda msg: print(msg, flush=True))
        control = ControlServer(stack).begin()
        print("» Seeding demo data ...")
        demo = subprocess.run([sys.executable, "-m", "devstack.demo"], env=stack.env(), cwd=ROOT, check=True,
                              capture_output=True, text=True)
        print(f"\n{stack.summary()}\n{demo.stdout.strip()}\n")
        if smoke:
            return 0
        print("Crashed processes are restarted (and logged here). Rolling Keycloak update: scripts/upgrade-keycloak "
              "VERSION. Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    finally:
        if control:
            control.end()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
