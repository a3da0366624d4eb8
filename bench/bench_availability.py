"""Availability of the production shape under load, before and after, side by side in one run (issue #24).

Each shape is the production shape (devstack/production.py) on its own loopback ports and state, under the same
load for its whole life: --delegates delegates reading their pages in the portal (home, Compte Adherent tab, a user
page, in turn), one delegate creating users (a form, then the tab), --logins workers logging a teleservice user in
to Compte Adherent through Keycloak (the login form, the code redeemed). Every request is recorded (time, kind,
status or error, duration). Then, one after the other, with quiet time between them:

  kill-other        the node that is not the coordinator SIGKILLed
  kill-coordinator  the coordinator SIGKILLed
  postgresql        PostgreSQL stopped 10 s, then started
  rolling           every node restarted in turn: before, stopped then started (its only way); after, the Keycloak
                    patch of issue #24 — the shape started on PREVIOUS_KEYCLOAK_VERSION and rolled to --roll-to
                    (ProductionStack.roll_to: Keycloak's compatibility check, then each node drained, stopped
                    gracefully, started on the new version, warmed and given traffic before the next one)
  workers           each of the portal's gunicorn workers SIGKILLed, one every 3 s
  alone-node        a node that has served for minutes given all the traffic (the other drained) for --isolate s:
                    what "warm" means for one node alone on this machine
  cold-node         a node restarted without warm-up, then given all the traffic (the other drained) for --isolate s
  warm-node         the same with the warm-up (after only)

For each fault: requests, failed requests (any status >= 500 or no answer), the window from its first failure to its
last, and the p95 of the delegates' pages; for a killed node, how long until it was back in the cluster (before: never
by itself). At the end, the writes are checked against Keycloak: every user the portal said it created exists once.

*before* is the code of --before (default: the commit this branch left main at), exported with `git archive` and
run by this same script in a subprocess (its own devstack, portal, proxy configuration); *after* is this checkout.

    .venv/bin/python -m bench.bench_availability [--before REV] [--shapes before,after] [--delegates 6]

Results: bench/results/availability.json and a Markdown table (docs/benchmarks.md). About 25 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "var" / "bench-availability"
RESULTS = ROOT / "bench" / "results" / "availability.json"
BEFORE = "68ebcda"  # main when issue #24 was measured
LOGIN_PACE = 1.2  # seconds between two logins of one teleservice user (Keycloak's quick-login check is 1 s)
FAULTS = ("steady", "kill-other", "kill-coordinator", "postgresql", "rolling", "workers", "alone-node", "cold-node",
          "warm-node")


# --- the load -----------------------------------------------------------------------------------------------------
class Recorder:
    """Every request: (monotonic time at its end, kind, ok, status or error, ms)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[float, str, bool, str, float]] = []

    def call(self, kind: str, fn) -> bool:
        import requests

        t0 = time.monotonic()
        try:
            ok, status = fn()
        except requests.RequestException as exc:
            ok, status = False, type(exc).__name__
        except AssertionError as exc:  # a login page that was not one (an error page)
            ok, status = False, f"page: {str(exc)[:60]}"
        with self.lock:
            self.rows.append((time.monotonic(), kind, ok, str(status), (time.monotonic() - t0) * 1000))
        return ok

    def between(self, t0: float, t1: float) -> list[tuple[float, str, bool, str, float]]:
        with self.lock:
            return [r for r in self.rows if t0 <= r[0] <= t1]


def percentile(values: list[float], p: float) -> float | None:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))]) if values else None


def summarize(rows: list, t0: float) -> dict:
    failed = [r for r in rows if not r[2]]
    pages = [r[4] for r in rows if r[1] == "page" and r[2]]
    return {"requests": len(rows), "failed": len(failed),
            "failed_by_kind": dict(Counter(r[1] for r in failed)),
            "statuses": dict(Counter(r[3] for r in failed)),
            "window_s": round(failed[-1][0] - failed[0][0], 1) if failed else 0.0,
            "first_failure_s": round(failed[0][0] - t0, 1) if failed else None,
            "pages_p50_ms": percentile(pages, .5), "pages_p95_ms": percentile(pages, .95), "pages": len(pages)}


class Load:
    """The delegates' pages, one delegate creating users, teleservice logins: threads until stopped."""

    def __init__(self, stack, settings, spec, delegates: list, creator, ts_users: list[str], password: str):
        self.stack, self.settings, self.spec = stack, settings, spec
        self.delegates, self.creator, self.ts_users, self.password = delegates, creator, ts_users, password
        self.rec = Recorder()
        self.stop = threading.Event()
        self.said_created: set[str] = set()
        self.said_failed: set[str] = set()
        self.threads = ([threading.Thread(target=self.pages, args=(d,), daemon=True) for d in delegates]
                        + [threading.Thread(target=self.creates, daemon=True)]
                        + [threading.Thread(target=self.logins, args=(u,), daemon=True) for u in ts_users])

    def begin(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)

    def pages(self, delegate) -> None:
        session, user = delegate
        portal = self.stack.portal_url
        urls = [f"{portal}/delegue/", f"{portal}/delegue/t/compte-adherent", f"{portal}/delegue/utilisateurs/{user}"]
        k = 0
        while not self.stop.is_set():
            url = urls[k % 3]
            k += 1
            ok = self.rec.call("page", lambda: (lambda r: (r.status_code == 200, r.status_code))(
                session.get(url, allow_redirects=False, timeout=60)))
            if not ok:
                time.sleep(0.5)  # a person would wait a moment before reloading

    def creates(self) -> None:
        import re as re_

        session, numero = self.creator
        page = f"{self.stack.portal_url}/delegue/t/compte-adherent/nouveau"
        k = 0
        while not self.stop.is_set():
            k += 1
            login = f"c{k}.{secrets.token_hex(2)}"

            def create():
                form = session.get(page, timeout=60)
                if form.status_code != 200:
                    return False, form.status_code
                token = re_.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
                resp = session.post(page, allow_redirects=False, timeout=60, data={
                    "csrf_token": token, "login": login, "civilite": "M", "nom": "Alami", "prenom": "Omar",
                    "email": f"{login}@atlas.ma", "fonction": "Comptable", "telephone": "", "password": "User2026",
                    "password_confirm": "User2026", "question1": "Ville de naissance de votre père ?",
                    "answer1": "Fès", "question2": "Nom de votre premier animal de compagnie ?", "answer2": "Mimi"})
                return resp.status_code == 302, resp.status_code
            if self.rec.call("create", create):
                self.said_created.add(login)
            else:
                self.said_failed.add(login)
                time.sleep(0.5)
            self.stop.wait(1.0)

    def logins(self, login: str) -> None:
        helpers = shape_helpers()
        PinnedBrowser, pkce_pair = helpers.PinnedBrowser, helpers.pkce_pair
        client = self.spec.client("compte-adherent")
        callback = client.url + client.redirect_paths[0]
        base = f"{self.stack.public_url}/realms/{self.settings.realm}/protocol/openid-connect"
        while not self.stop.is_set():
            began = time.monotonic()

            def one():
                browser = PinnedBrowser(self.stack.public_url, node=1)
                browser.session.cookies.clear()
                verifier, challenge = pkce_pair()
                location = browser.login(f"{base}/auth?" + urlencode({
                    "client_id": "compte-adherent", "redirect_uri": callback, "scope": "openid",
                    "response_type": "code", "state": "s", "code_challenge": challenge,
                    "code_challenge_method": "S256"}), login, self.password)
                code = parse_qs(urlparse(location).query).get("code", [None])[0]
                if not code:
                    return False, "no code"
                tokens = browser.session.post(f"{base}/token", timeout=60, data={
                    "grant_type": "authorization_code", "code": code, "redirect_uri": callback,
                    "client_id": "compte-adherent", "code_verifier": verifier,
                    "client_secret": self.settings.realm_vars["COMPTE_ADHERENT_CLIENT_SECRET"]})
                return tokens.status_code == 200, tokens.status_code
            self.rec.call("login", one)
            self.stop.wait(max(0.0, LOGIN_PACE - (time.monotonic() - began)))


# --- one shape ----------------------------------------------------------------------------------------------------
def shape_helpers() -> SimpleNamespace:
    """The helpers that start and load a shape, from the shape's own code (on sys.path): devstack/ in this checkout;
    a revision from before devstack/ held them, such as the default --before, kept them among its tests."""
    try:
        from devstack.builders import DELEGATE_PASSWORD, approved_adherent
        from devstack.logins import PinnedBrowser, pkce_pair
        from devstack.ports import production_stack
    except ModuleNotFoundError:  # an older revision's own code
        from tests.oidc_flow import pkce_pair
        from tests.production.conftest import production_stack
        from tests.production.proxy_login import PinnedBrowser
        from tests.provisioning import DELEGATE_PASSWORD, approved_adherent
    return SimpleNamespace(DELEGATE_PASSWORD=DELEGATE_PASSWORD, approved_adherent=approved_adherent,
                           PinnedBrowser=PinnedBrowser, pkce_pair=pkce_pair, production_stack=production_stack)


def run_shape(name: str, delegates_n: int, logins_n: int, faults: list[str], isolate: float, roll_to: str) -> dict:
    """Start a shape from the code on sys.path, load it, inject the faults; the figures."""

    helpers = shape_helpers()
    production_stack, PinnedBrowser = helpers.production_stack, helpers.PinnedBrowser
    DELEGATE_PASSWORD, approved_adherent = helpers.DELEGATE_PASSWORD, helpers.approved_adherent

    from provisioner.core import Services
    from provisioner.gateway import Gateway
    from provisioner.rules import Access
    from provisioner.secret_questions import SecretAnswer
    from provisioner.settings import Settings
    from provisioner.tenancy import Actor
    from provisioner.users import create_user
    import inspect
    if next(iter(inspect.signature(create_user).parameters)) == "ctx":  # the request Context (this code's)
        from provisioner.context import Context
        from provisioner.realm.schema import load_realm_spec
        from provisioner.teleservice_users import NewUser, UserDetails

        def request(gw, services, actor, adherent):
            return (Context(gw, services, actor, adherent),)
    else:  # an older revision's: the four values, its own modules
        from provisioner.realm.spec import load_realm_spec
        from provisioner.users import NewUser, UserDetails

        def request(gw, services, actor, adherent):
            return gw, services, actor, adherent

    state = STATE / name
    from devstack.postgres import PostgresServer

    PostgresServer(state / "postgres", 0).stop()
    shutil.rmtree(state, ignore_errors=True)
    stack = production_stack(state)
    rolls = hasattr(stack, "roll_to") and "rolling" in faults
    if rolls:
        from devstack.production import PREVIOUS_KEYCLOAK_VERSION

        stack.keycloak_version = PREVIOUS_KEYCLOAK_VERSION
    say = lambda msg: print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    t_start = time.monotonic()
    stack.start(log=say)
    started_s = time.monotonic() - t_start
    os.environ.update(SSL_CERT_FILE=str(stack.ca_file), REQUESTS_CA_BUNDLE=str(stack.ca_file))
    from provisioner.gateway import transport

    if hasattr(transport, "trust_again"):
        transport.trust_again()
    supervised = getattr(stack, "supervisor", None) is not None
    out: dict = {"shape": name, "started_s": round(started_s), "supervised": supervised, "faults": {}}
    try:
        env = stack.env()
        settings = Settings.from_env(env)
        spec = load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)
        services = Services.from_settings(settings, spec)
        gw = Gateway.as_service_account(settings)
        answers = (SecretAnswer("Ville de naissance de votre père ?", "Fès"),
                   SecretAnswer("Nom de votre premier animal de compagnie ?", "Mimi"))
        agent = Actor.agent("agent.bench")
        say(f"seeding {delegates_n} delegates, {logins_n} teleservice users ...")
        numeros = [approved_adherent(gw, services, agent) for _ in range(delegates_n + 1)]
        users = {}
        for n in numeros:
            login = f"u.{secrets.token_hex(3)}"
            create_user(*request(gw, services, Actor.delegate(n), n), NewUser(
                login, UserDetails("Tazi", "Yasmine", f"{login}@atlas.ma"), Access("compte-adherent"), "User2026",
                secret_answers=answers))
            users[n] = login
        ts_users, password = [], "Bench2026"
        client = spec.client("compte-adherent")
        callback = client.url + client.redirect_paths[0]
        for k in range(logins_n):
            login = f"ts{k}.{secrets.token_hex(3)}"
            create_user(*request(gw, services, Actor.delegate(numeros[0]), numeros[0]), NewUser(
                login, UserDetails("Tazi", "Yasmine", f"{login}@atlas.ma"), Access("compte-adherent"), "User2026",
                secret_answers=answers))
            first = PinnedBrowser(stack.public_url, node=1)
            first.session.cookies.clear()
            first.login(f"{stack.public_url}/realms/{settings.realm}/protocol/openid-connect/auth?" + urlencode({
                "client_id": "compte-adherent", "redirect_uri": callback, "scope": "openid", "response_type": "code",
                "state": "x", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256"}), login, "User2026", new_password=password)
            ts_users.append(login)

        def portal_session(n: str):
            browser = PinnedBrowser(stack.public_url, node=1)
            browser.session.cookies.clear()
            start = browser.session.get(f"{stack.portal_url}/auth/login", allow_redirects=False, timeout=60)
            done = browser.session.get(browser.login(start.headers["Location"], n, DELEGATE_PASSWORD),
                                       allow_redirects=False, timeout=60)
            assert done.status_code == 302, done.text[:300]
            # A browser sends our own pages' address with a form (over https the portal checks it: Flask-WTF).
            browser.session.headers["Referer"] = f"{stack.portal_url}/"
            return browser.session

        delegates = [(portal_session(n), users[n]) for n in numeros[1:]]
        load = Load(stack, settings, spec, delegates, (portal_session(numeros[0]), numeros[0]), ts_users,
                    password).begin()
        say("load running")
        time.sleep(20)  # the JIT and the caches settle under the load before anything is measured
        for fault in faults:
            if fault == "warm-node" and not hasattr(stack, "warm_node"):
                continue
            say(f"fault: {fault}")
            t0 = time.monotonic()
            extra = inject(stack, fault, isolate, say, roll_to)
            t1 = time.monotonic()
            time.sleep(5)
            figures = summarize(load.rec.between(t0, t1 + 5), t0)
            if "alone_from" in extra:  # the restarted node serving every page: its own figures
                alone = [r for r in load.rec.between(extra["alone_from"], extra.pop("alone_until"))
                         if r[1] == "page" and r[2]]
                extra["alone_pages"] = len(alone)
                extra["alone_p95_ms"] = percentile([r[4] for r in alone], .95)
                extra["alone_first_100_p95_ms"] = percentile([r[4] for r in alone[:100]], .95)
                extra["alone_last_100_p95_ms"] = percentile([r[4] for r in alone[-100:]], .95)
                extra.pop("alone_from")
            figures.update(extra, seconds=round(t1 - t0, 1))
            out["faults"][fault] = figures
            say(f"{fault}: {json.dumps(figures)}")
            settle(stack)
            time.sleep(10)
        load.end()
        # The writes, against Keycloak itself.
        present = [u.username for u in gw.users_by_attribute("adherent", numeros[0]) if u.username.startswith("c")]
        out["writes"] = {"said_created": len(load.said_created), "lost": len(load.said_created - set(present)),
                         "doubled": len(present) - len(set(present)) + len(set(present) & load.said_failed),
                         "retried_after_failure": len(load.said_failed)}
        out["load"] = {"delegates": delegates_n, "logins": logins_n, "requests": len(load.rec.rows),
                       "load_average_end": os.getloadavg()[0]}
    finally:
        stack.stop()
    return out


def inject(stack, fault: str, isolate: float, say, roll_to: str) -> dict:
    """Carry a fault out and wait until the shape is whole again; extra figures."""
    if fault == "steady":
        time.sleep(30)
        return {}
    if fault in ("kill-other", "kill-coordinator"):
        coordinator = stack.coordinator()
        victim = coordinator if fault == "kill-coordinator" else 1 - coordinator
        killed = time.monotonic()
        stack.kill_node(victim)
        if getattr(stack, "supervisor", None):
            back = wait_whole(stack, 240)
            return {"node": victim + 1, "back_in_cluster_s": round(back - killed, 1)}
        # Before: nothing restarts it. Measure until the survivor is ready, then a person restarts the node.
        survivor = 1 - victim
        time.sleep(3)
        while time.monotonic() - killed < 120 and not stack.node_ready(survivor):
            time.sleep(0.5)
        time.sleep(5)
        ready = time.monotonic()
        stack.start_node(victim)
        return {"node": victim + 1, "survivor_ready_s": round(ready - killed - 5, 1),
                "back_in_cluster_s": None, "restarted_by_hand_s": round(time.monotonic() - killed, 1)}
    if fault == "postgresql":
        stop = getattr(stack, "stop_postgres", stack.postgres.stop)
        start = getattr(stack, "start_postgres", stack.postgres.start)
        stop()
        time.sleep(10)
        start()
        t = time.monotonic()
        while time.monotonic() - t < 120 and not all(stack.node_ready(i) for i in range(2)):
            time.sleep(0.5)
        return {"down_s": 10}
    if fault == "rolling":
        if hasattr(stack, "roll_to"):
            versions = f"{stack.keycloak_version} -> {roll_to}"
            steps = stack.roll_to(roll_to, log=say)
            return {"versions": versions, "steps": steps}
        for i in sorted(range(2), key=lambda i: i == stack.coordinator()):
            stack.stop_node(i)
            stack.start_node(i)
        return {}
    if fault == "workers":
        master = stack.processes["portal"].pid
        workers = children(master)
        for pid in workers:
            os.kill(pid, 9)
            time.sleep(3)
        return {"killed_workers": len(workers)}
    if fault == "alone-node":
        target = 1 - stack.coordinator()
        other = 1 - target
        if hasattr(stack, "runtime"):
            stack.runtime.set_state(stack.server_name(other), "maint")
            alone = time.monotonic()
            time.sleep(isolate)
            stack.runtime.set_state(stack.server_name(other), "ready")
        else:
            stack.stop_node(other)
            alone = time.monotonic()
            time.sleep(isolate)
            stack.start_node(other)
        return {"node": target + 1, "alone_from": alone, "alone_until": alone + isolate}
    if fault in ("cold-node", "warm-node"):
        target = 1 - stack.coordinator()
        other = 1 - target
        stack.stop_node(target)
        t = time.monotonic()
        if hasattr(stack, "restart_node"):
            stack.start_nodes([target], warm=fault == "warm-node")
            stack.runtime.set_state(stack.server_name(other), "maint")  # everything to the restarted node
            started = time.monotonic() - t
            alone = time.monotonic()
            time.sleep(isolate)
            stack.runtime.set_state(stack.server_name(other), "ready")
        else:
            stack.start_node(target)
            started = time.monotonic() - t
            stack.stop_node(other)  # everything to the restarted node (as the old rolling restart's next step)
            alone = time.monotonic()
            time.sleep(isolate)
            stack.start_node(other)
        return {"node": target + 1, "restart_s": round(started, 1), "alone_from": alone, "alone_until": alone + isolate}
    raise ValueError(fault)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait_whole(stack, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    time.sleep(2)
    while time.monotonic() < deadline:
        busy = stack.supervisor.busy if getattr(stack, "supervisor", None) else set()
        if not busy and all(stack.node_ready(i) and stack.cluster_size(i) == 2 for i in range(2)):
            break
        time.sleep(0.5)
    return time.monotonic()


def settle(stack) -> None:
    for i in range(2):
        if getattr(stack, "node_process", None) and stack.node_process(i) is None:
            stack.start_nodes([i])
        elif f"keycloak-node{i + 1}" not in stack.processes:
            stack.start_node(i)
    wait_whole(stack, 240)


# --- both shapes, one run -----------------------------------------------------------------------------------------
def export(rev: str) -> Path:
    """The code of ``rev`` in var/bench-availability/src-<rev> (git archive: no worktree)."""
    target = STATE / f"src-{rev}"
    if not (target / "devstack" / "production.py").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def table(results: list[dict]) -> str:
    lines = ["| fault | shape | requests | failed | window | failures by kind | statuses | pages p95 | back in cluster |",
             "|---|---|---:|---:|---:|---|---|---:|---:|"]
    for fault in FAULTS:
        for r in results:
            f = r["faults"].get(fault)
            if not f:
                continue
            back = f.get("back_in_cluster_s")
            back = f"{back} s" if back is not None else ("never by itself" if "node" in f and "kill" in fault else "")
            lines.append(f"| {fault} | {r['shape']} | {f['requests']} | {f['failed']} | {f['window_s']} s | "
                         f"{', '.join(f'{k} {v}' for k, v in f['failed_by_kind'].items())} | "
                         f"{', '.join(f'{k} {v}' for k, v in f['statuses'].items())} | {f['pages_p95_ms']} ms | {back} |")
    lines += ["", "| restarted node serving every page alone | shape | pages | p95 | p95, its first 100 | p95, its last 100 |",
              "|---|---|---:|---:|---:|---:|"]
    for fault in ("alone-node", "cold-node", "warm-node"):
        for r in results:
            f = r["faults"].get(fault)
            if f and "alone_pages" in f:
                lines.append(f"| {fault} | {r['shape']} | {f['alone_pages']} | {f['alone_p95_ms']} ms | "
                             f"{f['alone_first_100_p95_ms']} ms | {f['alone_last_100_p95_ms']} ms |")
    lines += ["", "| shape | users said created | lost | doubled |", "|---|---:|---:|---:|"]
    lines += [f"| {r['shape']} | {r['writes']['said_created']} | {r['writes']['lost']} | {r['writes']['doubled']} |"
              for r in results if "writes" in r]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE, help="the commit measured as 'before'")
    parser.add_argument("--shapes", default="before,after")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--delegates", type=int, default=6)
    parser.add_argument("--logins", type=int, default=2)
    parser.add_argument("--isolate", type=float, default=45, help="seconds a restarted node takes all the traffic")
    parser.add_argument("--roll-to", default="26.7.5", help="the Keycloak version 'after' rolls to (from the previous pin)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    faults = args.faults.split(",")
    if args.worker:  # one shape, in this process (PYTHONPATH: that shape's code)
        result = run_shape(args.worker, args.delegates, args.logins, faults, args.isolate, args.roll_to)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        return 0
    results = []
    for shape in args.shapes.split(","):
        source = export(args.before) if shape == "before" else ROOT
        out = STATE / f"{shape}.json"
        out.unlink(missing_ok=True)
        # The worker runs this file by its path with the shape's code on PYTHONPATH: "before" is another tree.
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", shape, "--out", str(out),
               "--faults", ",".join(faults), "--delegates", str(args.delegates), "--logins", str(args.logins),
               "--isolate", str(args.isolate), "--roll-to", args.roll_to]
        env = {**os.environ, "PYTHONPATH": str(source)}
        print(f"» {shape}: {source}", file=sys.stderr, flush=True)
        subprocess.run(cmd, cwd=source, env=env, check=False)
        if out.exists():
            results.append(json.loads(out.read_text()))
    RESULTS.parent.mkdir(exist_ok=True)
    if RESULTS.exists() and (args.faults != ",".join(FAULTS) or args.shapes != "before,after"):
        # a partial run: keep the other faults' and the other shape's figures
        previous = {r["shape"]: r for r in json.loads(RESULTS.read_text())["results"]}
        for r in results:
            r["faults"] = {**previous.get(r["shape"], {}).get("faults", {}), **r["faults"]}
        ran = {r["shape"] for r in results}
        results = [previous[s] for s in ("before", "after") if s in previous and s not in ran] + results
        results.sort(key=lambda r: ("before", "after").index(r["shape"]) if r["shape"] in ("before", "after") else 2)
    RESULTS.write_text(json.dumps({"at": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(),
                                   "before": args.before, "results": results}, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
