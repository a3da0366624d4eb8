"""Load on the portal, side by side: the production shape against the dev shape, same load, one run.

  - production: devstack/production.py — PostgreSQL, two clustered Keycloak nodes (`start --optimized`) behind
    HAProxy (TLS), the portal under gunicorn (the stack's 4 workers) on PostgreSQL;
  - dev: Keycloak `start-dev` on its dev-file H2 database (plain HTTP), the portal under gunicorn (as many)
    on SQLite — what `scripts/start` runs.

Each shape is started by this script on its own loopback ports and state (never the shared :8080/:8000), then:
--delegates approved adherents, each delegate logged in to the portal through Keycloak's real browser flow (TOTP
enrolled like a phone would), and for --seconds each delegate loops **create a user → list the tab → disable the
user** through the portal's forms, while --logins workers (one teleservice user each, at most one login per 1.2 s: Keycloak's
brute-force guard locks a user logging in twice within a second) log in to Compte Adherent again and again (authorization code + PKCE through Keycloak, code redeemed with the client's secret). Then it checks the
writes against Keycloak itself: every user the portal said it created is there exactly once (*lost*: said created,
absent; *doubled*: two users for one login, or a user the portal said it failed to create), every user the
portal said it disabled is disabled. Prints p50/p95/p99 per action, throughput, errors, lost/doubled writes, and a
Markdown table for docs/benchmarks.md; writes bench/results/production_load.json.

    .venv/bin/python -m bench.bench_production_load [--shape both|production|dev] [--delegates 20] [--seconds 180]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from devstack.builders import DELEGATE_PASSWORD, approved_adherent
from devstack.keycloak_server import KeycloakServer
from devstack.logins import PinnedBrowser, pkce_pair
from devstack.ports import free_port, production_stack
from devstack.processes import wait_http
from devstack.production import ProductionStack
from provisioner.context import Context
from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner.realm.schema import realm_spec
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.settings import Settings
from provisioner.teleservice_users import NewUser, UserDetails
from provisioner.tenancy import Actor
from provisioner.users import create_user

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STATE = ROOT / "var" / "bench-load"
ANSWERS = (SecretAnswer("Ville de naissance de votre père ?", "Fès"),
           SecretAnswer("Nom de votre premier animal de compagnie ?", "Mimi"))
TS_USER_PASSWORD, TS_USER_NEW_PASSWORD = "User2026", "Bench2026"
LOGIN_PACE = 1.2  # seconds between two logins of one teleservice user (Keycloak's quick-login check is 1 s)


class DevShape:
    """Keycloak start-dev (H2) + realm applied + portal under gunicorn on SQLite, on free loopback ports."""

    def __init__(self, state: Path):
        self.state = state
        self.keycloak = KeycloakServer(http_port=free_port(), management_port=free_port(), database="bench-load",
                                       log_file=state / "keycloak.log")
        self.portal_port, self.smtp_port = free_port(), free_port()
        self.processes: list[subprocess.Popen] = []

    @property
    def public_url(self) -> str:
        return self.keycloak.url

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYCLOAK_", "REALM_VAR_"))}
        secrets_ = {n: f"dev-{n.lower().replace('_client_secret', '').replace('_', '-')}-secret" for n in (
            "PROVISIONER_CLIENT_SECRET", "AUDITOR_CLIENT_SECRET", "DELEGATIONS_CLIENT_SECRET", "PORTAL_CLIENT_SECRET",
            "TELEDECLARATION_CLIENT_SECRET", "COMPTE_ADHERENT_CLIENT_SECRET", "EASYPAIEMENT_CLIENT_SECRET",
            "ELIQUIDATION_CLIENT_SECRET")}
        env.update(secrets_)
        env.update({f"REALM_VAR_{k}": v for k, v in secrets_.items()})
        env.update({"KEYCLOAK_URL": self.keycloak.url, "KEYCLOAK_REALM": "cimr", "KEYCLOAK_ADMIN_USER": "admin",
                    "KEYCLOAK_ADMIN_PASSWORD": "admin", "DATABASE_URL": f"sqlite:///{self.state / 'cimr.db'}",
                    "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port), "PORTAL_URL": self.portal_url,
                    "PORTAL_SECRET_KEY": "bench-load-portal-secret-key", "REALM_VAR_PORTAL_URL": self.portal_url,
                    "REALM_VAR_TELESERVICES_HOST": "http://127.0.0.2"})
        return env

    def start(self) -> "DevShape":
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        self.keycloak.database_file.unlink(missing_ok=True)  # a fresh dev-file database
        self.keycloak.start()
        env, py = self.env(), sys.executable
        subprocess.run([py, "-m", "provisioner", "apply"], env=env, cwd=ROOT, check=True, capture_output=True)
        for name, cmd in (("mail", [py, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.smtp_port}"]),
                          ("portal", [py, "-m", "gunicorn", "-w", str(ProductionStack.portal_workers), "--timeout", "60", "-b",
                                      f"127.0.0.1:{self.portal_port}", "portal:create_app()"])):
            log = open(self.state / f"{name}.log", "ab")
            self.processes.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True))
        wait_http(f"{self.portal_url}/", self.processes[-1], self.state / "portal.log")
        return self

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=30)
        self.keycloak.stop()


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def timed(self, action: str, fn):
        start = time.perf_counter()
        try:
            ok, detail = fn()
        except requests.RequestException as exc:
            ok, detail = False, type(exc).__name__
        elapsed = (time.perf_counter() - start) * 1000
        with self.lock:
            self.times[action].append(elapsed)
            if not ok:
                self.errors[action].append(str(detail))
        return ok


def run_together(threads: list[threading.Thread]) -> float:
    """Start the threads at once, wait for them all; the seconds it took."""
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.monotonic() - started


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))], 1) if values else 0.0


def csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=60)
    page.raise_for_status()
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def portal_login(shape, username: str, password: str) -> PinnedBrowser:
    browser = PinnedBrowser(shape.public_url, node=1)  # the route cookie only pins the first page: balanced after
    browser.session.cookies.clear()
    start = browser.session.get(f"{shape.portal_url}/auth/login", allow_redirects=False, timeout=60)
    callback = browser.login(start.headers["Location"], username, password)
    done = browser.session.get(callback, allow_redirects=False, timeout=60)
    assert done.status_code == 302, done.text[:300]
    return browser


def teleservice_login(shape, settings: Settings, callback: str, login: str, client_id: str = "compte-adherent",
                      secret: str | None = None, password: str = TS_USER_NEW_PASSWORD,
                      node: int = 1) -> tuple[bool, str]:
    """One full login to Compte Adherent (or ``client_id`` with its ``secret``): the authorization request, the form,
    the code redeemed; through the proxy, pinned to ``node``."""
    browser = PinnedBrowser(shape.public_url, node=node)
    browser.session.cookies.clear()
    verifier, challenge = pkce_pair()
    base = f"{shape.public_url}/realms/{settings.realm}/protocol/openid-connect"
    auth = f"{base}/auth?" + urlencode({"client_id": client_id, "redirect_uri": callback, "scope": "openid",
                                        "response_type": "code", "state": secrets.token_hex(4),
                                        "code_challenge": challenge, "code_challenge_method": "S256"})
    try:
        location = browser.login(auth, login, password)
    except AssertionError as exc:
        return False, str(exc)[:100]
    code = parse_qs(urlparse(location).query).get("code", [None])[0]
    if not code:
        return False, "no code"
    tokens = browser.session.post(f"{base}/token", timeout=60, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": callback, "client_id": client_id,
        "client_secret": secret or settings.realm_vars["COMPTE_ADHERENT_CLIENT_SECRET"], "code_verifier": verifier})
    return tokens.status_code == 200, f"token {tokens.status_code}"


def run_load(shape, name: str, delegates: int, seconds: float, logins: int) -> dict:
    env = shape.env()
    settings = Settings.from_env(env)
    spec = realm_spec(settings)
    services = Services.from_settings(settings, spec)
    gw = Gateway.as_service_account(settings)
    t = time.monotonic()
    numeros = [approved_adherent(gw, services, Actor.agent("agent.bench")) for _ in range(delegates)]
    setup_s = time.monotonic() - t
    # One teleservice user per login worker: Keycloak's brute-force guard treats two logins of one user less
    # than a second apart as an attack (quickLoginCheckMilliSeconds) and locks the user for a minute.
    ts_logins = [f"ts{i}.{secrets.token_hex(3)}" for i in range(logins)]
    callback = spec.client("compte-adherent").url + spec.client("compte-adherent").redirect_paths[0]
    base = f"{shape.public_url}/realms/{settings.realm}/protocol/openid-connect"
    for ts_login in ts_logins:
        create_user(Context(gw, services, Actor.delegate(numeros[0]), numeros[0]), NewUser(
            ts_login, UserDetails("Tazi", "Yasmine", f"{ts_login}@atlas.ma"), Access("compte-adherent"),
            TS_USER_PASSWORD, secret_answers=ANSWERS))
        first = PinnedBrowser(shape.public_url, node=1)
        first.session.cookies.clear()
        verifier, challenge = pkce_pair()
        first.login(f"{base}/auth?" + urlencode({"client_id": "compte-adherent", "redirect_uri": callback,
                                                "scope": "openid", "response_type": "code", "state": "x",
                                                "code_challenge": challenge, "code_challenge_method": "S256"}),
                    ts_login, TS_USER_PASSWORD, new_password=TS_USER_NEW_PASSWORD)  # the forced first change
    sessions = [portal_login(shape, n, DELEGATE_PASSWORD).session for n in numeros]

    rec = Recorder()
    said_created: dict[str, set[str]] = defaultdict(set)
    said_failed: dict[str, set[str]] = defaultdict(set)
    said_disabled: dict[str, set[str]] = defaultdict(set)
    deadline = time.monotonic() + seconds
    new_page = f"{shape.portal_url}/delegue/t/compte-adherent/nouveau"

    def delegate(i: int) -> None:
        s, n = sessions[i], numeros[i]
        token = csrf(s, new_page)
        k = 0
        while time.monotonic() < deadline:
            k += 1
            login = f"b{i:02d}.{k}.{secrets.token_hex(2)}"
            form = {"csrf_token": token, "login": login, "civilite": "M", "nom": "Alami", "prenom": "Omar",
                    "email": f"{login}@atlas.ma", "fonction": "Comptable", "telephone": "", "password": "User2026",
                    "password_confirm": "User2026", "question1": ANSWERS[0].question, "answer1": "Fès",
                    "question2": ANSWERS[1].question, "answer2": "Mimi"}

            def create():
                resp = s.post(new_page, data=form, allow_redirects=False, timeout=60)
                return resp.status_code == 302, resp.status_code
            if rec.timed("create", create):
                said_created[n].add(login)
            else:
                said_failed[n].add(login)
                continue

            def listing():
                resp = s.get(f"{shape.portal_url}/delegue/t/compte-adherent", timeout=60)
                return resp.status_code == 200 and login in resp.text, resp.status_code
            rec.timed("list", listing)

            def disable():
                resp = s.post(f"{shape.portal_url}/delegue/utilisateurs/etat", allow_redirects=False, timeout=60,
                              data={"csrf_token": token, "login": login, "action": "disable", "confirmed": "1"})
                return resp.status_code == 302, resp.status_code
            if rec.timed("disable", disable):
                said_disabled[n].add(login)

    def teleservice(ts_login: str) -> None:
        while time.monotonic() < deadline:
            began = time.monotonic()
            rec.timed("teleservice login", lambda: teleservice_login(shape, settings, callback, ts_login))
            time.sleep(max(0.0, LOGIN_PACE - (time.monotonic() - began)))

    threads = [threading.Thread(target=delegate, args=(i,)) for i in range(delegates)]
    threads += [threading.Thread(target=teleservice, args=(login,)) for login in ts_logins]
    elapsed = run_together(threads)

    # The writes, checked against Keycloak itself.
    lost = doubled = not_disabled = 0
    for n in numeros:
        present = [u for u in gw.users_by_attribute("adherent", n) if u.username.startswith("b")]
        names = [u.username for u in present]
        doubled += len(names) - len(set(names)) + len(set(names) & said_failed[n])
        lost += len(said_created[n] - set(names))
        enabled = {u.username for u in present if u.enabled}
        not_disabled += len(said_disabled[n] & enabled)
    actions = {}
    for action, times in rec.times.items():
        actions[action] = {"count": len(times), "per_s": round(len(times) / elapsed, 2),
                           "p50_ms": percentile(times, 0.50), "p95_ms": percentile(times, 0.95),
                           "p99_ms": percentile(times, 0.99), "errors": len(rec.errors[action]),
                           "error_samples": sorted(set(rec.errors[action]))[:5]}
    return {"shape": name, "delegates": delegates, "teleservice_login_workers": logins, "seconds": round(elapsed),
            "setup_adherents_s": round(setup_s, 1), "actions": actions,
            "writes": {"created": sum(map(len, said_created.values())),
                       "disabled": sum(map(len, said_disabled.values())),
                       "lost": lost, "doubled": doubled, "said_disabled_but_enabled": not_disabled},
            "load_average_at_start": os.getloadavg()[0]}


def table(results: list[dict]) -> str:
    lines = ["| shape | action | count | per s | p50 | p95 | p99 | errors |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for action, a in r["actions"].items():
            lines.append(f"| {r['shape']} | {action} | {a['count']} | {a['per_s']} | {a['p50_ms']:.0f} ms | "
                         f"{a['p95_ms']:.0f} ms | {a['p99_ms']:.0f} ms | {a['errors']} |")
    lines.append("")
    lines.append("| shape | users created | disabled | lost | doubled | said disabled, still enabled |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for r in results:
        w = r["writes"]
        lines.append(f"| {r['shape']} | {w['created']} | {w['disabled']} | {w['lost']} | {w['doubled']} | "
                     f"{w['said_disabled_but_enabled']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["both", "production", "dev"], default="both")
    parser.add_argument("--delegates", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--logins", type=int, default=4,
                        help="workers logging a teleservice user in, in a loop (one user each, one login per 1.2 s)")
    args = parser.parse_args()
    results = []
    for name in (["production", "dev"] if args.shape == "both" else [args.shape]):
        print(f"» {name} shape: starting ...", file=sys.stderr)
        if name == "production":
            shutil.rmtree(STATE / "production", ignore_errors=True)
            shape = production_stack(STATE / "production")
            saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
        else:
            shape = DevShape(STATE / "dev")
        try:
            shape.start()
            if name == "production":
                os.environ.update(SSL_CERT_FILE=str(shape.ca_file), REQUESTS_CA_BUNDLE=str(shape.ca_file))
                from provisioner.gateway import transport
                transport.trust_again()
            print(f"» {name} shape: {args.delegates} delegates, {args.seconds:.0f} s ...", file=sys.stderr)
            results.append(run_load(shape, name, args.delegates, args.seconds, args.logins))
            print(json.dumps(results[-1], indent=2), file=sys.stderr)
        finally:
            shape.stop()
            if name == "production":
                for k, v in saved.items():
                    os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "production_load.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0 if all(r["writes"]["lost"] == r["writes"]["doubled"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
