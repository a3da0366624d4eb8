"""Every page of the portal, as its person opens it, on the dev stack: the median and p90 answer time of each.

The portal runs as in ``scripts/start`` (gunicorn, 2 workers) against a Keycloak started with ``start-dev`` —
KEYCLOAK_URL when given (a realm of its own, deleted at the end), else one started here on free ports. The company
of the page tests (devstack/portal_pages.py: long names, a user per teleservice, the E@syPaiement banner, an access
review pending) is built through the provisioner's actions; the delegate, an agent and an auditor log in through
Keycloak's real browser flow (second factor included); each page is then requested --warm times, then --samples
times in a row. Writes bench/results/pages.json (``--tag`` keeps several runs side by side) and prints a
Markdown table for docs/benchmarks.md.

    KEYCLOAK_URL=http://127.0.0.1:8280 .venv/bin/python -m bench.bench_pages [--samples 15] [--tag after]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests

from devstack.builders import STAFF_PASSWORD
from devstack.keycloak_server import KeycloakServer
from devstack.logins import keycloak_login
from devstack.portal_pages import agent_pages, auditor_pages, build_world, delegate_pages, public_pages
from devstack.ports import free_port
from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner.permissions import repair_all
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import Settings
from provisioner.staff import StaffMember, create_staff
from provisioner.tenancy import Actor

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def logged_in(portal: str, username: str | None, password: str | None) -> requests.Session:
    """A browser's session with the portal (cookies), logged in through Keycloak when a username is given."""
    s = PlainHttpSession()
    if username:
        resp = s.get(portal + "/auth/login", allow_redirects=False)
        callback = urlparse(keycloak_login(resp.headers["Location"], username, password))
        assert "code" in parse_qs(callback.query), callback
        home = s.get(f"{portal}/auth/callback?{callback.query}", allow_redirects=False)
        assert home.status_code == 302, home.text[:300]
        landed = s.get(portal + home.headers["Location"], allow_redirects=False)
        assert landed.status_code == 200, (home.headers["Location"], landed.status_code, list(s.cookies))
    return s



class PlainHttpSession(requests.Session):
    """The portal's cookie is Secure (sent over https only); the bench talks plain HTTP on loopback, as the tests'
    client does: after each answer, the cookie it set may be sent back."""

    def request(self, *args, **kwargs):
        resp = super().request(*args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return resp


def measure(s: requests.Session, url: str, warm: int, samples: int) -> dict:
    for _ in range(warm):
        s.get(url, timeout=60)
    times, status = [], None
    for _ in range(samples):
        t = time.perf_counter()
        resp = s.get(url, timeout=60)
        times.append((time.perf_counter() - t) * 1000)
        status = resp.status_code
        assert not resp.history, f"{url}: redirected to {resp.url}"
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
            "status": status}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-every-page-"))
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, str(ROOT / "devstack" / "smtp_sink.py"), str(work), str(smtp_port)],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    server = None
    if not os.environ.get("KEYCLOAK_URL"):
        server = KeycloakServer(http_port=free_port(), management_port=free_port(), database="bench-every-page",
                                log_file=work / "kc.log")
        server.database_file.unlink(missing_ok=True)
        server.start()
    keycloak = os.environ.get("KEYCLOAK_URL") or server.url
    port = free_port()
    portal_url = f"http://127.0.0.1:{port}"
    env = {"KEYCLOAK_URL": keycloak, "KEYCLOAK_REALM": f"bench-pages-{uuid.uuid4().hex[:6]}",
           "KEYCLOAK_ADMIN_USER": "admin", "KEYCLOAK_ADMIN_PASSWORD": "admin",
           "PROVISIONER_CLIENT_SECRET": "dev-provisioner-secret", "DELEGATIONS_CLIENT_SECRET": "dev-delegations-secret",
           "AUDITOR_CLIENT_SECRET": "dev-auditor-secret", "DATABASE_URL": f"sqlite:///{work}/cimr.db",
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "PORTAL_URL": portal_url,
           "REALM_VAR_PORTAL_URL": portal_url,  # the realm's portal client is applied with this portal's address
           "PATH": os.environ.get("PATH", "")}
    settings = Settings.from_env(env)
    admin = Gateway.as_master_admin(settings)
    portal = None
    try:
        spec = load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)
        apply_plan(admin, spec, plan_realm(admin, spec))
        repair_all(admin, deep=False)
        services = Services.from_settings(settings, spec)
        service = Gateway.as_service_account(settings)
        staff = {}
        for role in ("agent", "auditor"):
            staff[role] = f"{role}.{uuid.uuid4().hex[:6]}"
            create_staff(service, services, Actor("bench-operator", "agent"), StaffMember(
                staff[role], role, "Bench", role.capitalize(), f"{staff[role]}@cimr.ma", STAFF_PASSWORD))
        world = build_world(service, services, Actor.agent("bench.agent"), staff["auditor"])
        with open(work / "portal.log", "w") as log:
            portal = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                       "portal:create_app()"], env={**env, "LOG_LEVEL": "WARNING"}, cwd=ROOT,
                                      stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(portal_url + "/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and portal.poll() is None, (work / "portal.log").read_text()
                time.sleep(0.3)
        people = [("public", None, None, public_pages()),
                  ("delegate", world.numero, world.password, delegate_pages(world)),
                  ("agent", staff["agent"], STAFF_PASSWORD, agent_pages(world)),
                  ("auditor", staff["auditor"], STAFF_PASSWORD, auditor_pages(world))]
        pages = {}
        names = {world.numero: "<n>", **{u.login: f"<{kind}>" for kind, u in world.users.items()}}
        for person, who, password, paths in people:
            s = logged_in(portal_url, who, password)
            for path in paths:
                shown = path
                for raw, name in names.items():
                    shown = shown.replace(raw, name)
                pages[f"{person} {shown}"] = measure(s, portal_url + path, args.warm, args.samples)
    finally:
        if portal:
            portal.terminate()
            portal.wait(timeout=30)
        admin.delete_realm()
        if server:
            server.stop()
        sink.terminate()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "pages.json"
    stored = json.loads(out.read_text()) if out.exists() else {}
    stored[args.tag or "latest"] = {"when": time.strftime("%Y-%m-%d %H:%M"), "samples": args.samples,
                                    "load_average": os.getloadavg()[0], "pages": pages}
    out.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n")
    print("| page | p50 ms | p90 ms |\n|---|---:|---:|")
    for name, m in pages.items():
        print(f"| {name} | {m['p50_ms']} | {m['p90_ms']} |")


if __name__ == "__main__":
    main()
