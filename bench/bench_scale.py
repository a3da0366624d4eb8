"""CIMR at its real size on the production shape: 10,000 adherents, 50,000 accounts, 10,000 delegations.

The stack is devstack/production.py (PostgreSQL, two clustered Keycloak nodes `start --optimized` behind HAProxy
with TLS, the portal under gunicorn, an SMTP sink), on free loopback ports picked once (devstack/ports.py's
PortPicker) and kept in var/bench-scale/ports.json: the realm's URLs depend on them. Its state
(PostgreSQL's data, secrets, TLS, logs) lives in var/bench-scale/ and is kept between runs, so the hour of seeding
is paid once:

    .venv/bin/python -m bench.bench_scale seed      [--adherents 10000] [--users-per 5] [--fresh]
    .venv/bin/python -m bench.bench_scale measure   [--only audit,plan,pages,logins,approval,bulk] [--seconds 60]
    .venv/bin/python -m bench.bench_scale stop      # a stack left running (--keep-running, or a killed run)
    .venv/bin/python -m bench.bench_scale start     # start it on the seeded state and leave it running
    .venv/bin/python -m bench.bench_scale report    # print the tables of bench/results/scale.json again

`seed` and `measure` start the stack (never wiping its state), and stop it at the end unless --keep-running; the
PIDs of what they started are in var/bench-scale/pids.json, which `stop` reads (each process checked by its
command line before it is signalled). `seed --fresh` wipes var/bench-scale/ first; without it an interrupted seed
resumes where it stopped (chunk by chunk; the progress is in var/bench-scale/seed.json).

What `seed` lays out, chunk by chunk (--chunk adherents at a time), each part timed:
  - the adherents' group trees, exactly as provisioner/tree.py builds them (/adherents/<n>/<client>/<role>, the
    leaves carrying the client role; bench_permissions.tree_rep) and /delegates/<n>: one partialImport per chunk
    into a staging top-level group, then each tree moved under /adherents (Keycloak's partialImport cannot add
    subgroups to an existing group); a chunk that fails is halved, and below 25 trees created by POSTs;
  - each adherent's delegation through the real provisioner/permissions.py::ensure_delegation, --pair-workers at
    once, alternately on each node;
  - --users-per accounts per adherent (default 5: the delegate and 4 teleservice users, so 50,000 accounts for
    10,000 adherents) in partialImports of --user-chunk, with the representations of the real code
    (subscriptions.delegate_rep, users.user_rep: attributes, groups, the realm's default role). No password,
    but the Compte Adherent user of the first --login-users adherents (the logins measure);
  - our database as the real approval and user creation leave it per adherent: the approved subscription, the
    delegate's term, the trail (submit, paper, approve, each user's creation) and two secret questions per
    teleservice user (one real argon2 hash reused: the audit only reads who has questions);
  - then --delegates adherents through the real path (devstack.builders.approved_adherent), each with 5 users
    (devstack.builders.make_user), and each delegate logged in once to the portal through the proxy to enrol
    its TOTP (the secret is kept in seed.json for the measures' logins).

What `measure` measures (bench/results/scale.json, a Markdown table per phase on stdout):
  audit     cold (both Keycloak nodes restarted) and warm runs of the real audit with the read-only auditor
            account (collect + build_report, as provisioner.audit.collect.audit_realm does); the naive per-user
            reader of bench_audit.py on a sample, extrapolated: target <= 60 s cold, >= 10x the naive reader;
  plan      `provisioner --json plan` (the CLI, through the proxy); zero changes and no admin event: < 3 s;
  pages     --delegates delegates logged in to the portal (real browser flow, TOTP) looping the delegate home, the
            Compte Adherent tab and one of their users' page for --seconds: p95 <= 300 ms, >= 50 pages/s;
  logins    Compte Adherent's own browser flow (ours) against Keycloak's built-in "browser" flow (a temporary client
            bound to it), the same users and --login-workers, in alternating --login-slice windows, one
            login per user per 1.2 s at most (Keycloak's quick-login check): ours/default >= 0.9;
  approval  a full subscription approval (approved_adherent) and ensure_delegation from nothing, --samples each;
  bulk      `provisioner bulk import` of --bulk users into one adherent against Keycloak's partialImport of the
            same users into another (bench_bulk.py's users and ways); the users are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from sqlalchemy import delete, insert

from bench import bench_audit, bench_bulk
from bench.bench_permissions import _post_all, _reroot, tree_rep
from bench.bench_production_load import Recorder, percentile, portal_login, run_together, teleservice_login
from devstack.builders import ANSWERS, DELEGATE_PASSWORD, approved_adherent, make_user, subscription_form
from devstack.keycloak_server import KEYCLOAK_VERSION
from devstack.ports import TELESERVICE_HOST, PortPicker, port_is_free
from devstack.postgres import PostgresServer
from devstack.production import NodePorts, ProductionStack
from devstack.totp import AUTHENTICATORS
from provisioner import permissions
from provisioner.audit.collect import collect
from provisioner.audit.report import build_report
from provisioner.catalogue import Catalogue
from provisioner.core import Services
from provisioner.db import Database, audit_events, delegate_history, secret_questions, subscriptions
from provisioner.errors import ProvisionerError
from provisioner.gateway import Gateway
from provisioner.realm.schema import realm_spec
from provisioner.delegates import delegate_rep
from provisioner.rules import Access
from provisioner.secret_questions import hash_answer
from provisioner.settings import Settings
from provisioner.teleservice_users import NewUser, UserDetails, user_rep
from provisioner.tenancy import Actor
from provisioner.tree import delegate_group_path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "var" / "bench-scale"
PORTS_FILE, SEED_FILE, PIDS_FILE = STATE / "ports.json", STATE / "seed.json", STATE / "pids.json"
RESULTS_FILE = ROOT / "bench" / "results" / "scale.json"
NUMERO_BASE = 40_000_000          # mass-seeded adherents: 40000000, 40000001, ...
STAGING = "bench-scale-staging-"  # top-level group a chunk of trees is imported into, then moved from
LOGIN_PASSWORD = "Scale2026"      # the mass-seeded login users' password (not temporary)
BENCH_CLIENT = "bench-scale-default-flow"
AGENT = Actor.agent("agent.bench-scale")
LOGIN_PACE = 1.2                  # seconds between two logins of one user (Keycloak's quick-login check is 1 s)
# The teleservice users of a mass-seeded adherent, in this order (the first one: Compte Adherent, the login users).
ACCESSES = (Access("compte-adherent"), Access("teledeclaration", ("fichier-preetabli",), "interne"),
            Access("easypaiement", ("ordonnateur",)), Access("eliquidation"),
            Access("easypaiement", ("validateur",)),
            Access("teledeclaration", ("formulaire-saisie",), "externe", "Fiduciaire Amal"))
# The users each real-path adherent gets (devstack.builders.make_user: teleservice, powers).
REAL_USERS = (("compte-adherent", ()), ("compte-adherent", ()), ("compte-adherent", ()),
              ("easypaiement", ("ordonnateur",)), ("teledeclaration", ("fichier-preetabli",)))
PHASES = ("audit", "plan", "pages", "logins", "approval", "bulk")


def say(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def read_json(path: Path, default=None):
    return json.loads(path.read_text()) if path.exists() else default


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def numero(i: int) -> str:
    return str(NUMERO_BASE + i)


def login_of(n: str, k: int) -> str:
    return f"s{n}.{k}"


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def load() -> float:
    return round(os.getloadavg()[0], 2)


def ms_stats(values: list[float]) -> dict:
    values = sorted(values)
    return {"median_ms": round(statistics.median(values) * 1000, 1) if values else None,
            "p90_ms": round(values[int(0.9 * (len(values) - 1))] * 1000, 1) if values else None,
            "samples": len(values)}


# --- the stack: ports kept in ports.json, PIDs in pids.json -----------------------------------------------------

def _ports_of(stack: ProductionStack) -> dict:
    return {"proxy": stack.proxy_port, "nodes": [list(n.__dict__.values()) for n in stack.nodes],
            "postgres": stack.postgres_port, "portal": stack.portal_port, "smtp": stack.smtp_port}


# Ranges of our own, beside tests/production's (8400-8499, 9400-9499, 55400-55499, 7850-7899): HAProxy binds with
# SO_REUSEPORT, so a test stack picking a port while ours is down (a seed's end, a measure's start) and starting
# after ours would silently take half of our proxy's connections.
HTTP_PORTS, MANAGEMENT_PORTS, POSTGRES_PORTS, JGROUPS_PORTS = (8600, 8699), (9600, 9699), (55600, 55699), (7900, 7949)


def _jgroups_free(port: int) -> bool:
    return port_is_free(port + 50000)  # JGroups' failure detection listens on bind port + 50000


def make_stack(heap: str | None, portal_workers: int | None, portal_threads: int | None = None,
               node_options: list[str] | None = None) -> ProductionStack:
    """The stack on the ports of ports.json, picked the first time as devstack/ports.py's
    production_stack() picks them (PortPicker), in our own ranges. The proxy's and the portal's ports are in the
    realm (issuer, redirect URIs): they must be free again; the others are picked anew when taken."""
    saved = read_json(PORTS_FILE)
    picker = PortPicker()
    if saved is not None:
        for port, what in ((saved["proxy"], "proxy"), (saved["proxy"] + 1000, "proxy statistics"),
                           (saved["portal"], "portal")):
            deadline = time.monotonic() + 120  # a port our last run closed may linger in TIME_WAIT
            while not port_is_free(port) and time.monotonic() < deadline:
                time.sleep(2)
            if not port_is_free(port):
                raise SystemExit(f"port {port} ({what}, recorded in {PORTS_FILE}) is taken: the realm's URLs use it. "
                                 f"Is the stack still running (`python -m bench.bench_scale stop`)?")
        picker.taken |= {saved["proxy"], saved["proxy"] + 1000, saved["portal"]}
        proxy, portal = saved["proxy"], saved["portal"]
    else:
        proxy = picker.pick(*HTTP_PORTS, lambda p: port_is_free(p + 1000))  # + 1000: its statistics page
        picker.taken.add(proxy + 1000)
        portal = picker.pick(*HTTP_PORTS)
        saved = {"nodes": [[0, 0, 0], [0, 0, 0]], "postgres": 0, "smtp": 0}

    def keep(port: int, span: tuple[int, int], also=lambda p: True) -> int:
        if port and port not in picker.taken and port_is_free(port) and also(port):
            picker.taken.add(port)
            return port
        return picker.pick(*span, also)

    nodes = tuple(NodePorts(keep(h, HTTP_PORTS), keep(m, MANAGEMENT_PORTS), keep(j, JGROUPS_PORTS, _jgroups_free))
                  for h, m, j in saved["nodes"])
    extra = {k: v for k, v in (("node_heap", heap), ("portal_workers", portal_workers),
                                ("portal_threads", portal_threads), ("node_options", tuple(node_options or ()))) if v}
    stack = ProductionStack(state=STATE, proxy_port=proxy, nodes=nodes, postgres_port=keep(saved["postgres"],
                            POSTGRES_PORTS), portal_port=portal, smtp_port=keep(saved["smtp"], HTTP_PORTS),
                            teleservices={}, teleservices_host=TELESERVICE_HOST, **extra)  # no teleservice: unused
    write_json(PORTS_FILE, _ports_of(stack))
    return stack


def check_proxy_is_ours(stack: ProductionStack, tries: int = 20) -> None:
    """Every connection to the proxy's port reaches our HAProxy (our CA's certificate): see the ranges above."""
    for _ in range(tries):
        try:
            requests.get(f"{stack.public_url}/realms/master", timeout=10, verify=str(stack.ca_file))
        except requests.exceptions.SSLError as exc:
            raise RuntimeError(f"another server shares port {stack.proxy_port} (HAProxy's SO_REUSEPORT): {exc}")


def record_pids(stack: ProductionStack) -> None:
    """What we started (name -> pid and command line), for `stop` in another process."""
    write_json(PIDS_FILE, {name: {"pid": p.pid, "args": " ".join(map(str, p.args))}
                           for name, p in stack.processes.items()}
               | {"postgres": {"data_dir": str(stack.postgres.data_dir), "port": stack.postgres_port}})


def stop_recorded() -> None:
    """Stop the processes pids.json names (apps, then Keycloak nodes, then HAProxy), each by its process group
    after checking its command line is still ours, then our PostgreSQL (by the PID in its data directory)."""
    recorded = read_json(PIDS_FILE, {})
    pg = recorded.pop("postgres", None)
    order = sorted(recorded, key=lambda n: (n.startswith("keycloak"), n == "haproxy"))
    for name in order:
        pid, args = recorded[name]["pid"], recorded[name]["args"]
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            continue
        if args not in cmdline:
            say(f"{name}: pid {pid} is no longer ours ({cmdline[:80]!r}): left alone")
            continue
        say(f"stopping {name} (pid {pid})")
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            try:  # our child when this process started it; else it is reaped by init
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            os.killpg(pid, signal.SIGKILL)
    if pg:
        say("stopping PostgreSQL")
        PostgresServer(Path(pg["data_dir"]), pg["port"]).stop()
    PIDS_FILE.unlink(missing_ok=True)


def running_recorded() -> list[str]:
    alive = []
    for name, rec in (read_json(PIDS_FILE, {}) or {}).items():
        if name != "postgres" and Path(f"/proc/{rec['pid']}").exists():
            alive.append(name)
    return alive


@dataclass
class Ctx:
    """A started stack and what the phases share (everything through the proxy, as our processes reach it)."""

    args: argparse.Namespace
    stack: ProductionStack
    settings: Settings
    spec: object
    services: Services
    admin: Gateway
    service: Gateway
    auditor: Gateway

    def node_settings(self, i: int) -> Settings:
        return replace(self.settings, keycloak_url=self.stack.node_url(i))


def start(args) -> Ctx:
    if running_recorded():
        raise SystemExit(f"a stack of this bench is running ({', '.join(running_recorded())}): "
                         f"`python -m bench.bench_scale stop` first")
    stack = make_stack(args.heap, args.portal_workers, args.portal_threads, args.keycloak_option)
    t0 = time.perf_counter()
    try:
        stack.start(log=say)
    finally:
        record_pids(stack)
    say(f"stack started in {time.perf_counter() - t0:.0f} s: Keycloak {stack.public_url}, portal {stack.portal_url}")
    try:
        check_proxy_is_ours(stack)
        # Our in-process clients trust the local CA, as the stack's processes do.
        os.environ.update(SSL_CERT_FILE=str(stack.ca_file), REQUESTS_CA_BUNDLE=str(stack.ca_file))
        from provisioner.gateway import transport
        transport.trust_again()
        settings = Settings.from_env(stack.env())
        spec = realm_spec(settings)
        return Ctx(args, stack, settings, spec, Services.from_settings(settings, spec),
                   Gateway.as_master_admin(settings), Gateway.as_service_account(settings),
                   Gateway.as_auditor(settings))
    except BaseException:
        stack.stop()
        PIDS_FILE.unlink(missing_ok=True)
        raise


def finish(ctx: Ctx | None, keep_running: bool) -> None:
    if ctx is None:
        return
    if keep_running:
        record_pids(ctx.stack)
        say(f"stack left running (`python -m bench.bench_scale stop` stops it)\n{ctx.stack.summary()}")
        return
    say("stopping the stack")
    ctx.stack.stop()
    PIDS_FILE.unlink(missing_ok=True)


# --- seed ---------------------------------------------------------------------------------------------------------

def mass_accounts(i: int, per: int, login_users: int, catalogue: Catalogue, default_role: str) -> list[dict]:
    """The delegate of adherent i (in /delegates/<n>, enabled, no password) and per-1 teleservice users, as the
    real code represents them; the Compte Adherent user of the first `login_users` adherents has a password."""
    n = numero(i)
    form = subscription_form(n)
    delegate = delegate_rep(n, form.delegate, enabled=True)
    delegate.pop("credentials")
    out = [delegate | {"groups": [delegate_group_path(n)], "realmRoles": [default_role]}]
    categories = tuple(tree_rep(n)["attributes"]["categories"])
    for k in range(per - 1):
        access = ACCESSES[k % len(ACCESSES)]
        login = login_of(n, k)
        rep = user_rep(n, NewUser(login, UserDetails("Bennani", "Salma", f"{login}@scale.ma", "Mme", "Comptable"),
                                  access, LOGIN_PASSWORD), access.normalised(categories, catalogue))
        if k == 0 and i < login_users:
            rep["credentials"] = [{"type": "password", "value": LOGIN_PASSWORD, "temporary": False}]
        else:
            rep.pop("credentials")
        out.append(rep | {"realmRoles": [default_role]})
    return out


class Seeder:
    def __init__(self, ctx: Ctx, state: dict):
        self.ctx, self.state, self.args = ctx, state, ctx.args
        # Seeding goes straight to the nodes (plain HTTP, both of them), not through the proxy: it is not measured.
        self.admins = [Gateway.as_master_admin(ctx.node_settings(i)) for i in range(len(ctx.stack.nodes))]
        self.writers = [permissions.writer(ctx.node_settings(i)) for i in range(len(ctx.stack.nodes))]
        gw = self.admins[0]
        self.adherents, self.delegates = gw.group_by_path("/adherents"), gw.group_by_path("/delegates")
        self.catalogue = ctx.services.catalogue
        self.default_role = f"default-roles-{ctx.settings.realm}"
        self.answer_hash = hash_answer(ANSWERS[0].answer)
        for stale in (g for g in gw.get("/groups", search=STAGING, briefRepresentation="true") or []
                      if g["name"].startswith(STAGING)):
            gw.delete_group(stale["id"])  # an interrupted chunk's staging group
        self.have_trees = {g.name for g in gw.children(self.adherents.id)}
        self.have_delegates = {g.name for g in gw.children(self.delegates.id)}
        self.have_pairs = {p["name"] for p in self.writers[0].authz_list("permission")}

    def save(self) -> None:
        write_json(SEED_FILE, self.state)

    def add_time(self, key: str, seconds: float) -> None:
        self.state["times"][key] = round(self.state["times"].get(key, 0.0) + seconds, 2)

    # trees
    def trees(self, numeros: list[str]) -> None:
        missing = [n for n in numeros if n not in self.have_trees]
        t0 = time.perf_counter()
        self._staged(missing, self.args.tree_chunk)
        missing = [n for n in numeros if n not in self.have_delegates]
        if missing:
            asyncio.run(_post_all(self.admins[1 % len(self.admins)],
                                  [(f"/groups/{self.delegates.id}/children", {"name": n}) for n in missing]))
            self.have_delegates |= set(missing)
        self.add_time("trees_s", time.perf_counter() - t0)

    def _staged(self, numeros: list[str], size: int) -> None:
        """Trees `size` at a time: partialImport into a staging group, each tree moved under /adherents; a
        failing import is halved, and below 25 trees the trees are created by POSTs (bench_audit.seed_tree)."""
        gw = self.admins[0]
        for part in batches(numeros, size):
            staging_name = f"{STAGING}{part[0]}"
            try:
                bench_audit.partial_import(gw, {"ifResourceExists": "FAIL", "groups": [
                    {"name": staging_name, "path": f"/{staging_name}",
                     "subGroups": [_reroot(tree_rep(n), f"/{staging_name}") for n in part]}]})
            except (requests.RequestException, ProvisionerError) as exc:
                say(f"   partialImport of {len(part)} trees failed ({str(exc)[:120]})")
                stale = gw.group_by_path(f"/{staging_name}")
                if stale:
                    gw.delete_group(stale.id)
                self.state["tree_import"]["failures"] += 1
                if size // 2 >= 25:
                    self._staged(part, size // 2)
                else:
                    self._posted(part)
                continue
            staging = gw.group_by_path(f"/{staging_name}")
            asyncio.run(_post_all(gw, [(f"/groups/{self.adherents.id}/children", {"id": g.id, "name": g.name})
                                       for g in gw.children(staging.id)]))
            gw.delete_group(staging.id)
            self.have_trees |= set(part)
            self.state["tree_import"]["partial_import_sizes"][str(len(part))] = \
                self.state["tree_import"]["partial_import_sizes"].get(str(len(part)), 0) + 1

    def _posted(self, numeros: list[str]) -> None:
        gw = self.admins[0]
        roles = {}
        for client in bench_audit.POWERS:
            client_uuid = gw.client_uuid(client)
            roles[client] = {"uuid": client_uuid, **{r["name"]: r for r in gw.client_roles(client_uuid)}}
        poster = bench_audit.Poster(gw)
        with ThreadPoolExecutor(max_workers=4) as pool:  # seed_tree also makes /delegates/<n>
            list(pool.map(lambda n: bench_audit.seed_tree(poster, roles, self.adherents.id, self.delegates.id, n, 0),
                          numeros))
        self.have_trees |= set(numeros)
        self.have_delegates |= set(numeros)
        self.state["tree_import"]["posted"] += len(numeros)

    # delegations
    def delegations(self, numeros: list[str]) -> None:
        todo = [n for n in numeros if permissions.permission_name(n) not in self.have_pairs]

        def one(item: tuple[int, str]) -> float:
            j, n = item
            t = time.perf_counter()
            permissions.ensure_delegation(self.writers[j % len(self.writers)], n)
            return time.perf_counter() - t

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.args.pair_workers) as pool:
            durations = list(pool.map(one, enumerate(todo)))
        self.add_time("delegations_s", time.perf_counter() - t0)
        self.have_pairs |= {permissions.permission_name(n) for n in todo}
        self.state["pairs"] += len(todo)
        first = self.state["pair_s_first_100"]
        first += durations[:100 - len(first)]
        self.state["pair_s_last_100"] = (self.state["pair_s_last_100"] + durations)[-100:]

    # accounts
    def accounts(self, indices: list[int]) -> dict[str, str]:
        """The chunk's accounts (partialImport, SKIP: a re-run adds only what is missing); username -> id."""
        reps = [u for i in indices for u in mass_accounts(i, self.args.users_per, self.args.login_users,
                                                           self.catalogue, self.default_role)]
        parts = batches(reps, self.args.user_chunk)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(self.admins)) as pool:
            answers = list(pool.map(lambda jp: bench_audit.partial_import(
                self.admins[jp[0] % len(self.admins)], {"ifResourceExists": "SKIP", "users": jp[1]}),
                enumerate(parts)))
        self.add_time("accounts_s", time.perf_counter() - t0)
        ids = {r["resourceName"]: r.get("id") for a in answers for r in a.get("results") or []
               if r.get("resourceType") == "USER"}
        for username in [u["username"] for u in reps if not ids.get(u["username"])]:
            ids[username] = self.admins[0].user_by_username(username).id
        self.state["accounts"] += sum(a.get("added", 0) for a in answers)
        return ids

    # our database
    def database(self, indices: list[int], ids: dict[str, str]) -> None:
        t0 = time.perf_counter()
        now = datetime.now(timezone.utc)
        submitted, received, decided = now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=1)
        numeros = [numero(i) for i in indices]
        forms = {n: subscription_form(n) for n in numeros}
        per = self.args.users_per
        seeded = ("subscription.submit", "subscription.receive_paper", "subscription.approve", "user.create")
        with self.ctx.services.db.begin() as conn:  # a re-run of the chunk replaces its rows
            conn.execute(delete(subscriptions).where(subscriptions.c.adherent.in_(numeros)))
            conn.execute(delete(delegate_history).where(delegate_history.c.adherent.in_(numeros)))
            conn.execute(delete(audit_events).where(audit_events.c.adherent.in_(numeros),
                                                    audit_events.c.action.in_(seeded)))
            user_ids = [ids[login_of(n, k)] for n in numeros for k in range(per - 1)]
            conn.execute(delete(secret_questions).where(secret_questions.c.user_id.in_(user_ids)))
            rows = conn.execute(insert(subscriptions).returning(subscriptions.c.id, subscriptions.c.adherent), [
                {"adherent": n, "status": "approved", "form": forms[n].public(), "delegate_user_id": ids[n],
                 "submitted_at": submitted, "decided_at": decided, "decided_by": AGENT.username,
                 "paper_received_at": received, "paper_recorded_at": received, "paper_recorded_by": AGENT.username}
                for n in numeros]).all()
            sid = {adherent: i for i, adherent in rows}
            conn.execute(insert(delegate_history), [
                {"adherent": n, "user_id": ids[n], "civilite": forms[n].delegate.civilite,
                 "nom": forms[n].delegate.nom, "prenom": forms[n].delegate.prenom,
                 "email": forms[n].delegate.email, "since": decided} for n in numeros])
            trail = []
            for n in numeros:
                target = f"subscription:{sid[n]}"
                trail += [{"at": submitted, "actor": f"subscriber:{n}", "actor_role": "subscriber", "adherent": n,
                           "action": "subscription.submit", "target": target, "outcome": "ok"},
                          {"at": received, "actor": AGENT.username, "actor_role": "agent", "adherent": n,
                           "action": "subscription.receive_paper", "target": target, "outcome": "ok"},
                          {"at": decided, "actor": AGENT.username, "actor_role": "agent", "adherent": n,
                           "action": "subscription.approve", "target": target, "outcome": "ok"}]
                trail += [{"at": decided, "actor": n, "actor_role": "delegate", "adherent": n, "action": "user.create",
                           "target": login_of(n, k), "outcome": "ok"} for k in range(per - 1)]
            conn.execute(insert(audit_events), trail)
            if user_ids:
                conn.execute(insert(secret_questions), [
                    {"user_id": uid, "position": p, "question": ANSWERS[p].question, "answer_hash": self.answer_hash}
                    for uid in user_ids for p in (0, 1)])
        self.add_time("database_s", time.perf_counter() - t0)

    def run_chunks(self) -> None:
        count, chunk = self.args.adherents, self.args.chunk
        chunks = batches(list(range(count)), chunk)
        started = time.monotonic()
        first_chunk = self.state["next_chunk"]
        for k in range(first_chunk, len(chunks)):
            indices = chunks[k]
            numeros = [numero(i) for i in indices]
            self.trees(numeros)
            self.delegations(numeros)
            ids = self.accounts(indices)
            self.database(indices, ids)
            self.state["next_chunk"] = k + 1
            self.save()
            done = (k + 1 - first_chunk) / (len(chunks) - first_chunk)
            eta = (time.monotonic() - started) * (1 - done) / done
            t = self.state["times"]
            say(f"chunk {k + 1}/{len(chunks)}: {indices[-1] + 1} adherents; trees {t.get('trees_s', 0):.0f} s, "
                f"delegations {t.get('delegations_s', 0):.0f} s, accounts {t.get('accounts_s', 0):.0f} s, "
                f"database {t.get('database_s', 0):.0f} s; load {load()}; about {eta / 60:.0f} min left")

    def real_adherents(self) -> None:
        """--delegates adherents through the real path, their users, their delegate's TOTP enrolled in the portal."""
        ctx, real = self.ctx, self.state["real"]
        t0 = time.perf_counter()
        while len(real["adherents"]) < self.args.delegates:
            n = approved_adherent(ctx.service, ctx.services, AGENT)
            real["adherents"].append({"numero": n, "users": []})
            self.save()
            say(f"   approved adherent {n} ({len(real['adherents'])}/{self.args.delegates})")
        for adherent in real["adherents"]:
            n = adherent["numero"]
            while len(adherent["users"]) < len(REAL_USERS):
                teleservice, powers = REAL_USERS[len(adherent["users"])]
                adherent["users"].append(make_user(ctx.service, ctx.services, Actor.delegate(n), n, teleservice,
                                                   powers).login)
                self.save()
        self.add_time("real_adherents_s", time.perf_counter() - t0)
        t0 = time.perf_counter()
        for adherent in real["adherents"]:
            if adherent["numero"] not in real["totp"]:
                portal_login(ctx.stack, adherent["numero"], DELEGATE_PASSWORD)
                real["totp"][adherent["numero"]] = AUTHENTICATORS.secrets[adherent["numero"].lower()]
                self.save()
        self.add_time("totp_enrolment_s", time.perf_counter() - t0)


def seed(args) -> int:
    if args.fresh:
        if running_recorded():
            stop_recorded()
        PostgresServer(STATE / "postgres", 0).stop()  # a killed run's server, by the PID in its data directory
        shutil.rmtree(STATE, ignore_errors=True)
    sizes = {"adherents": args.adherents, "users_per": args.users_per, "login_users": args.login_users,
             "delegates": args.delegates, "chunk": args.chunk}
    state = read_json(SEED_FILE)
    if state is not None and state["sizes"] != sizes:
        raise SystemExit(f"{SEED_FILE} holds a seed of {state['sizes']}; this run asks for {sizes}: use the same "
                         "options to resume it, or --fresh to start again")
    if state is not None and state.get("complete"):
        say(f"already seeded ({state['sizes']}): nothing to do (--fresh to seed again)")
        return 0
    if state is None and (STATE / "postgres").exists():
        raise SystemExit(f"{STATE} holds a database but no {SEED_FILE.name}: --fresh to start again")
    state = state or {"sizes": sizes, "next_chunk": 0, "times": {}, "pairs": 0, "accounts": 0,
                      "pair_s_first_100": [], "pair_s_last_100": [],
                      "tree_import": {"partial_import_sizes": {}, "failures": 0, "posted": 0},
                      "real": {"adherents": [], "totp": {}}, "started_at": datetime.now(timezone.utc).isoformat(),
                      "load": {"start": load()}}
    write_json(SEED_FILE, state)
    ctx = None
    try:
        t0 = time.perf_counter()
        ctx = start(args)
        state["times"].setdefault("stack_start_s", round(time.perf_counter() - t0, 1))
        seeder = Seeder(ctx, state)
        say(f"seeding {args.adherents} adherents, {args.adherents * args.users_per} accounts, chunk {args.chunk} "
            f"(resuming at chunk {state['next_chunk'] + 1})")
        seeder.run_chunks()
        say(f"real-path adherents: {args.delegates}")
        seeder.real_adherents()
        state["complete"] = True
        state["load"]["end"] = load()
        state["finished_at"] = datetime.now(timezone.utc).isoformat()
        state["counts"] = {"users": ctx.admin.count_users(), "groups": ctx.admin.count_groups(),
                           "permissions": len(ctx.admin.authz_list("permission"))}
        seeder.save()
        # A new seed: the measures of the previous one no longer describe this data.
        write_json(RESULTS_FILE, {"seed": seed_summary(state) | {"conditions": conditions(ctx)}})
        print(seed_table(seed_summary(state)))
        return 0
    finally:
        finish(ctx, args.keep_running)


def seed_summary(state: dict) -> dict:
    out = {k: v for k, v in state.items() if k not in ("real", "pair_s_first_100", "pair_s_last_100", "next_chunk")}
    out["pair_first_100"] = ms_stats(state["pair_s_first_100"])
    out["pair_last_100"] = ms_stats(state["pair_s_last_100"])
    out["real_adherents"] = [a["numero"] for a in state["real"]["adherents"]]
    return out


def conditions(ctx: Ctx) -> dict:
    return {"cores": os.cpu_count(), "keycloak": KEYCLOAK_VERSION, "keycloak_build": ctx.stack.home.name,
            "nodes": len(ctx.stack.nodes),
            "node_heap": ctx.stack.node_heap, "node_options": list(ctx.stack.node_options),
            "portal_workers": ctx.stack.portal_workers,
            "portal_threads": ctx.stack.portal_threads,
            "postgres": "devstack/postgres.py (Debian's PostgreSQL 15)",
            "ports": read_json(PORTS_FILE), "state": str(STATE)}


# --- measure ------------------------------------------------------------------------------------------------------

def haproxy_mark(stack: ProductionStack) -> int:
    """Where HAProxy's log (one line per request) ends now."""
    path = stack.logs / "haproxy.log"
    return path.stat().st_size if path.exists() else 0


def proxied_requests(stack: ProductionStack, mark: int) -> list[tuple[str, str]]:
    """(method, path) of every request HAProxy logged since ``mark``: the Keycloak calls of what ran meanwhile."""
    time.sleep(0.5)  # HAProxy writes its line when the answer is done
    with open(stack.logs / "haproxy.log", "rb") as log:
        log.seek(mark)
        text = log.read().decode(errors="replace")
    found = (re.search(r'"([A-Z]+) (\S+) HTTP', line) for line in text.splitlines())
    return [(m.group(1), m.group(2).split("?")[0]) for m in found if m]


def restart_nodes(ctx: Ctx) -> dict:
    """Both Keycloak nodes stopped (caches gone), started together, until the proxy routes to both again."""
    stack = ctx.stack
    t0 = time.perf_counter()
    for i in range(len(stack.nodes)):
        stack.stop_node(i)
    stopped = time.perf_counter() - t0
    t0 = time.perf_counter()
    stack.start_nodes(list(range(len(stack.nodes))), timeout=900)
    ready = time.perf_counter() - t0
    record_pids(stack)
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seen) < len(stack.nodes) and time.monotonic() < deadline:
        try:
            resp = requests.get(f"{stack.public_url}/realms/{ctx.settings.realm}", timeout=5)
            if resp.ok:
                seen.add(resp.headers.get("X-Served-By", ""))
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return {"stop_s": round(stopped, 1), "start_to_ready_s": round(ready, 1),
            "proxy_routes_both_s": round(time.perf_counter() - t0, 1)}


def one_audit(ctx: Ctx) -> tuple[dict, object]:
    """The real audit with the read-only auditor account: collect + build_report, as audit_realm does."""
    auditor = Gateway.as_auditor(ctx.settings)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    data = collect(auditor, Database(ctx.settings.database_url), ctx.spec, timings=phases)
    collect_s = time.perf_counter() - t0
    s = ctx.settings
    report = build_report(data, inactive_days=90, incomplete_days=s.easypaiement_incomplete_days,
                          dormant_days=s.dormant_days, grace_days=s.termination_grace_days)
    total = time.perf_counter() - t0
    return {"total_s": round(total, 1), "collect_s": round(collect_s, 1), "report_s": round(total - collect_s, 2),
            "requests": data.reads, "phases_s": phases, "accounts": len(data.accounts),
            "adherents": len(data.adherents), "admin_events": len(data.admin_events),
            "findings": dict(Counter(f.kind for f in report.findings))}, data


def measure_audit(ctx: Ctx) -> dict:
    out = {"restart": restart_nodes(ctx)}
    say(f"   nodes restarted: {out['restart']}")
    out["cold"], _ = one_audit(ctx)
    say(f"   cold audit {out['cold']['total_s']} s ({out['cold']['requests']} requests)")
    out["warm"], data = one_audit(ctx)
    say(f"   warm audit {out['warm']['total_s']} s")
    accounts = [a for a in data.accounts if not a.service_account]
    sample = random.Random(5).sample(accounts, min(ctx.args.naive_sample, len(accounts)))
    auditor = Gateway.as_auditor(ctx.settings)
    out["naive"] = {}
    for name, naive in (("gateway", bench_audit.naive_gateway), ("lean", bench_audit.naive_lean)):
        t0 = time.perf_counter()
        reads = naive(auditor, sample)
        elapsed = time.perf_counter() - t0
        extrapolated = elapsed * len(accounts) / len(sample)
        out["naive"][name] = {"sample": len(sample), "people": len(accounts), "sample_s": round(elapsed, 1),
                              "extrapolated_s": round(extrapolated, 1),
                              "ratio_to_cold": round(extrapolated / out["cold"]["total_s"], 1),
                              "ratio_to_warm": round(extrapolated / out["warm"]["total_s"], 1),
                              "mismatches": bench_audit.mismatches(data, sample, reads)}
        say(f"   naive ({name}): {elapsed:.1f} s for {len(sample)} users -> {extrapolated:.0f} s for "
            f"{len(accounts)}")
    out["targets"] = {"cold_le_60s": out["cold"]["total_s"] <= 60,
                      "ratio_ge_10x": out["naive"]["lean"]["ratio_to_cold"] >= 10}
    return out


def measure_plan(ctx: Ctx) -> dict:
    time.sleep(1)
    since_ms = int(time.time() * 1000)
    before = haproxy_mark(ctx.stack)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "provisioner", "--json", "plan"], env=ctx.stack.env(), cwd=ROOT,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    calls = proxied_requests(ctx.stack, before)
    try:
        changes = json.loads(proc.stdout).get("changes")
    except ValueError:
        changes = None
    events = Gateway.as_auditor(ctx.settings).audit_admin_events(since_ms)
    writes = [f"{m} {p}" for m, p in calls if m != "GET" and not p.endswith("/protocol/openid-connect/token")]
    return {"seconds": round(elapsed, 2), "exit_code": proc.returncode,
            "changes": None if changes is None else len(changes), "change_samples": (changes or [])[:5],
            "stderr": proc.stderr[-500:], "admin_events_during": len(events),
            "keycloak_requests": len(calls), "methods": dict(Counter(m for m, _ in calls)), "writes": writes[:10],
            "targets": {"under_3s": elapsed < 3, "no_change": proc.returncode == 0 and changes == [],
                        "no_admin_event": not events, "only_reads": not writes}}


def delegate_logins(ctx: Ctx, real: list[dict], totp: dict) -> list[requests.Session]:
    for n, secret in totp.items():
        AUTHENTICATORS.enrol(n, secret)
    return [portal_login(ctx.stack, a["numero"], DELEGATE_PASSWORD).session for a in real]


def measure_pages(ctx: Ctx, seeded: dict) -> dict:
    real = seeded["real"]["adherents"][:ctx.args.delegates]
    t0 = time.perf_counter()
    sessions = delegate_logins(ctx, real, seeded["real"]["totp"])
    login_s = time.perf_counter() - t0
    portal = ctx.stack.portal_url

    def pages(a: dict) -> dict[str, tuple[str, str]]:
        """page -> (URL, text the page must show)."""
        return {"home": (f"{portal}/delegue/", a["users"][0]),
                "teleservice tab": (f"{portal}/delegue/t/compte-adherent", a["users"][0]),
                "user page": (f"{portal}/delegue/utilisateurs/{a['users'][0]}", a["users"][0])}

    # Keycloak calls of each page: HAProxy's lines during one request of one delegate, nothing else running.
    calls = {}
    for name, (url, _) in pages(real[0]).items():
        sessions[0].get(url, timeout=60)
        before = haproxy_mark(ctx.stack)
        sessions[0].get(url, timeout=60)
        calls[name] = len(proxied_requests(ctx.stack, before))

    def load(seconds: float) -> tuple[Recorder, float]:
        rec, deadline = Recorder(), time.monotonic() + seconds

        def delegate(i: int) -> None:
            s, mine = sessions[i], pages(real[i])
            while time.monotonic() < deadline:
                for name, (url, expected) in mine.items():
                    def get():
                        resp = s.get(url, timeout=60, allow_redirects=False)
                        return resp.status_code == 200 and expected in resp.text, resp.status_code
                    rec.timed(name, get)

        return rec, run_together([threading.Thread(target=delegate, args=(i,)) for i in range(len(sessions))])

    # The same load, not recorded, first: a node restarted by the audit's cold run compiles the pages' code paths
    # (Keycloak's JIT) during its first minute of them, at several times their later cost.
    warm, warmup_s = load(ctx.args.warmup)
    rec, elapsed = load(ctx.args.seconds)
    out = {"delegates": len(sessions), "seconds": round(elapsed, 1), "portal_logins_s": round(login_s, 1),
           "warmup": {"seconds": round(warmup_s, 1), "pages": sum(map(len, warm.times.values())),
                      "p95_ms": percentile([t for ts in warm.times.values() for t in ts], 0.95)},
           "pages": {}}
    for name in calls:
        times, errors = rec.times[name], rec.errors[name]
        out["pages"][name] = {"count": len(times), "per_s": round(len(times) / elapsed, 2),
                              "p50_ms": percentile(times, 0.50), "p95_ms": percentile(times, 0.95),
                              "p99_ms": percentile(times, 0.99), "errors": len(errors),
                              "error_samples": sorted(set(map(str, errors)))[:5], "keycloak_calls": calls[name]}
    every = [t for name in calls for t in rec.times[name]]
    ok = len(every) - sum(len(rec.errors[name]) for name in calls)
    out["all"] = {"count": len(every), "pages_per_s": round(ok / elapsed, 1), "p50_ms": percentile(every, 0.5),
                  "p95_ms": percentile(every, 0.95), "p99_ms": percentile(every, 0.99),
                  "errors": len(every) - ok}
    out["targets"] = {"p95_le_300ms": out["all"]["p95_ms"] <= 300, "ge_50_pages_per_s": out["all"]["pages_per_s"] >= 50}
    return out


class LoginUsers:
    """Users handed out round robin, each at most once per LOGIN_PACE seconds."""

    def __init__(self, logins: list[str]):
        self.queue, self.lock = deque(logins), threading.Lock()
        self.ready: dict[str, float] = {}

    def take(self) -> str:
        with self.lock:
            login = self.queue.popleft()
            self.queue.append(login)
            at = max(time.monotonic(), self.ready.get(login, 0.0))
            self.ready[login] = at + LOGIN_PACE
        time.sleep(max(0.0, at - time.monotonic()))
        return login


def measure_logins(ctx: Ctx, seeded: dict) -> dict:
    sizes = seeded["sizes"]
    logins = [login_of(numero(i), 0) for i in range(min(sizes["login_users"], sizes["adherents"]))]
    client = ctx.spec.client("compte-adherent")
    callback = client.url + client.redirect_paths[0]
    for old in ctx.admin.get("/clients", clientId=BENCH_CLIENT) or []:
        ctx.admin.delete_client(old["id"])
    import secrets as random_secrets
    secret = random_secrets.token_urlsafe(24)
    # Keycloak's own "browser" flow (cookie, identity-provider redirector, username and password form, conditional
    # OTP), which every realm gets at creation; the realm's default binding is ours (realm/), so the temporary
    # client names Keycloak's by id.
    builtin = next(f["id"] for f in ctx.admin.get("/authentication/flows") if f["alias"] == "browser")
    bench_uuid = ctx.admin.create_client({
        "clientId": BENCH_CLIENT, "name": "bench/bench_scale.py: Keycloak's browser flow (temporary)",
        "enabled": True, "protocol": "openid-connect", "publicClient": False, "secret": secret,
        "standardFlowEnabled": True, "implicitFlowEnabled": False, "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False, "redirectUris": [callback],
        "authenticationFlowBindingOverrides": {"browser": builtin},
        "attributes": {"pkce.code.challenge.method": "S256"}})
    ways = {"ours (compte-adherent's flow)": {"client_id": "compte-adherent"},
            "default (Keycloak's browser flow)": {"client_id": BENCH_CLIENT, "secret": secret}}
    users = LoginUsers(logins)
    rec = Recorder()
    spent = {way: 0.0 for way in ways}
    workers, slice_s = ctx.args.login_workers, ctx.args.login_slice
    try:
        for way, kw in ways.items():  # warm-up, not counted
            for w in range(2):
                ok, detail = teleservice_login(ctx.stack, ctx.settings, callback, users.take(),
                                               password=LOGIN_PASSWORD, node=1 + w % 2, **kw)
                assert ok, (way, detail)
        # The same number of windows for each way, in the order A B B A A B B A ... (a drift in the machine's load
        # weighs on both alike).
        pairs = max(1, round(ctx.args.seconds / (2 * slice_s)))
        order = [list(ways)[(k + 1) // 2 % 2] for k in range(2 * pairs)]
        for way in order:
            deadline = time.monotonic() + slice_s

            def worker(w: int) -> None:
                while time.monotonic() < deadline:
                    login = users.take()
                    rec.timed(way, lambda: teleservice_login(ctx.stack, ctx.settings, callback, login,
                                                             password=LOGIN_PASSWORD, node=1 + w % 2, **ways[way]))

            spent[way] += run_together([threading.Thread(target=worker, args=(w,)) for w in range(workers)])
    finally:
        ctx.admin.delete_client(bench_uuid)
    out = {"users": len(logins), "workers": workers, "slice_s": slice_s, "windows_per_way": pairs, "ways": {}}
    for way in ways:
        times, errors = rec.times[way], rec.errors[way]
        ok = len(times) - len(errors)
        out["ways"][way] = {"logins": len(times), "ok": ok, "seconds": round(spent[way], 1),
                            "per_s": round(ok / spent[way], 2) if spent[way] else 0.0,
                            "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95),
                            "p99_ms": percentile(times, 0.99), "errors": len(errors),
                            "error_samples": sorted(set(map(str, errors)))[:5]}
    ours, default = (out["ways"][w]["per_s"] for w in ways)
    out["ratio_ours_to_default"] = round(ours / default, 2) if default else None
    out["targets"] = {"ratio_ge_0.9": bool(default) and ours / default >= 0.9}
    return out


def measure_approval(ctx: Ctx) -> dict:
    writer = permissions.writer(ctx.settings)
    existing = len(writer.authz_list("permission"))
    approvals, ensures, numeros = [], [], []
    for _ in range(ctx.args.samples):
        t0 = time.perf_counter()
        n = approved_adherent(ctx.service, ctx.services, AGENT)
        approvals.append(time.perf_counter() - t0)
        numeros.append(n)
        permissions.remove_delegation(writer, n)
        t0 = time.perf_counter()
        permissions.ensure_delegation(writer, n)
        ensures.append(time.perf_counter() - t0)
    return {"permissions_existing": existing, "approved_adherent": ms_stats(approvals),
            "ensure_delegation_from_nothing": ms_stats(ensures), "adherents": numeros}


def measure_bulk(ctx: Ctx) -> dict:
    size, cats = ctx.args.bulk, ctx.settings.default_categories
    out: dict = {"users": size}
    targets = {way: approved_adherent(ctx.service, ctx.services, AGENT) for way in ("partialImport", "ours")}
    try:
        n = targets["partialImport"]
        rows = bench_bulk.users(f"p{n}x", size)
        out["partialImport"] = {"seconds": round(bench_bulk.partial_import(ctx.admin, n, rows, cats), 1),
                                "batch": bench_bulk.PARTIAL_IMPORT_BATCH, "retries": dict(bench_bulk.RETRIES)}
        say(f"   partialImport: {out['partialImport']['seconds']} s")
        n = targets["ours"]
        path = STATE / "bulk.csv"
        path.write_text(bench_bulk.csv_text(bench_bulk.users(f"o{n}x", size), False), encoding="utf-8")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "provisioner", "--json", "bulk", "import", n, str(path),
                               "--concurrency", str(ctx.args.bulk_concurrency)],
                              env={**ctx.stack.env(), "PROVISIONER_AS": n}, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        report = json.loads(proc.stdout)
        out["ours"] = {"seconds": round(elapsed, 1), "exit_code": proc.returncode,
                       "created": len(report.get("created") or []), "errors": len(report.get("errors") or []),
                       "concurrency": ctx.args.bulk_concurrency}
        say(f"   provisioner bulk import: {out['ours']['seconds']} s, {out['ours']['created']} created")
        t0 = time.perf_counter()  # what the CLI costs before any row: Python, imports, settings, the usage text
        subprocess.run([sys.executable, "-m", "provisioner", "bulk", "import", "--help"], env=ctx.stack.env(), cwd=ROOT,
                       capture_output=True, check=True)
        out["ours"]["cli_start_s"] = round(time.perf_counter() - t0, 2)
        for way in ("partialImport", "ours"):
            out[way]["users_per_s"] = round(size / out[way]["seconds"], 2)
        out["ours_vs_partialImport"] = round(out["ours"]["users_per_s"] / out["partialImport"]["users_per_s"], 2)
    finally:  # the realm keeps its seeded size: the imported users go (their adherents stay, approved)
        gone = [u for n in targets.values() for u in ctx.admin.users_by_attribute("adherent", n) if u.username != n]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda u: ctx.admin.delete_user(u.id), gone))
        out["deleted_after"] = len(gone)
    return out


CACHE_STAT = re.compile(r'^vendor_statistics_(approximate_entries|evictions|hits|misses)\{cache="(realms|users|'
                        r'authorization)",[^}]*\}\s+([\d.eE+-]+)', re.M)


def cache_stats(stack: ProductionStack) -> dict:
    """Per node, Keycloak's local caches of realm objects (groups, roles, clients), users and fine-grained
    permissions: entries, evictions, hits, misses (Infinispan's counters on the management port, since start)."""
    out = {}
    for i in range(len(stack.nodes)):
        try:
            text = requests.get(f"{stack.management_url(i)}/metrics", timeout=10).text
        except requests.RequestException as exc:
            out[f"node{i + 1}"] = f"unreadable: {type(exc).__name__}"
            continue
        node: dict = defaultdict(dict)
        for stat, cache, value in CACHE_STAT.findall(text):
            node[cache][stat] = int(float(value))
        out[f"node{i + 1}"] = dict(node)
    return out


def measure(args) -> int:
    seeded = read_json(SEED_FILE)
    if not seeded or not seeded.get("complete"):
        raise SystemExit(f"no complete seed in {STATE}: run `python -m bench.bench_scale seed` first")
    only = [p.strip() for p in args.only.split(",")] if args.only else list(PHASES)
    unknown = set(only) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {sorted(unknown)}: choose among {', '.join(PHASES)}")
    if args.delegates > len(seeded["real"]["adherents"]):
        raise SystemExit(f"the seed has {len(seeded['real']['adherents'])} logged-in delegates, not {args.delegates}")
    results = read_json(RESULTS_FILE, {})
    results.setdefault("measure", {})
    ctx = None
    try:
        t0 = time.perf_counter()
        ctx = start(args)
        results["conditions"] = conditions(ctx) | {"stack_start_s": round(time.perf_counter() - t0, 1),
                                                   "sizes": seeded["sizes"], "counts_at_seed": seeded.get("counts")}
        runs = {"audit": lambda: measure_audit(ctx), "plan": lambda: measure_plan(ctx),
                "pages": lambda: measure_pages(ctx, seeded), "logins": lambda: measure_logins(ctx, seeded),
                "approval": lambda: measure_approval(ctx), "bulk": lambda: measure_bulk(ctx)}
        for name in (p for p in PHASES if p in only):
            say(f"» {name}")
            at, load0, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), load(), time.perf_counter()
            try:
                result = runs[name]()
            except Exception as exc:  # one phase failing does not lose the others' figures
                say(f"   {name} FAILED: {type(exc).__name__}: {exc}")
                result = {"failed": f"{type(exc).__name__}: {exc}"}
            result["conditions"] = {"started_at": at, "duration_s": round(time.perf_counter() - t0, 1),
                                    "load_start": load0, "load_end": load(), "commit": _commit(),
                                    "keycloak_build": ctx.stack.home.name, "node_heap": ctx.stack.node_heap,
                                    "node_options": list(ctx.stack.node_options),
                                    "portal": f"{ctx.stack.portal_workers} workers × {ctx.stack.portal_threads} threads"}
            result["conditions"]["keycloak_caches"] = cache_stats(ctx.stack)
            try:
                result["conditions"]["users_in_realm"] = ctx.admin.count_users()
            except ProvisionerError as exc:
                result["conditions"]["users_in_realm"] = f"unknown: {exc}"
            results["measure"][f"{name}@{args.tag}" if args.tag else name] = result
            write_json(RESULTS_FILE, results)
            print(TABLES[name](result), flush=True)
        return 0 if not any("failed" in results["measure"][f"{p}@{args.tag}" if args.tag else p] for p in only) else 1
    finally:
        finish(ctx, args.keep_running)


# --- tables for docs/benchmarks.md --------------------------------------------------------------------------------

def _commit() -> str:
    """The code measured: this checkout's commit, "+" when it has uncommitted changes."""
    run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return run("rev-parse", "--short", "HEAD") + ("+" if run("status", "--porcelain", "--untracked-files=no") else "")


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _cond(r: dict) -> str:
    c = r.get("conditions") or {}
    return (f"\n(started {c.get('started_at')}, {c.get('duration_s')} s, load average {c.get('load_start')} → "
            f"{c.get('load_end')}, {_n(c.get('users_in_realm'))} users in the realm)\n")


def _table(head: list[str], rows) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right."""
    return ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
            *("| " + " | ".join(map(str, row)) + " |" for row in rows)]


def _latencies(d: dict, bold_p95: bool = False) -> list[str]:
    """A timing's p50, p95 and p99 cells."""
    p95 = f"{d['p95_ms']:.0f} ms"
    return [f"{d['p50_ms']:.0f} ms", f"**{p95}**" if bold_p95 else p95, f"{d['p99_ms']:.0f} ms"]


def seed_table(s: dict) -> str:
    t, sizes = s["times"], s["sizes"]
    pairs = s["pairs"] or 1
    counts = s.get("counts") or {}
    rows = [
        ("stack start (fresh: PostgreSQL, 2 nodes, proxy, realm applied, portal)", "", t.get("stack_start_s")),
        (f"adherent trees + delegate groups (staged partialImport, {sizes['chunk']} per chunk; "
         f"{s['tree_import']['failures']} failed imports, {s['tree_import']['posted']} trees POSTed)",
         _n(sizes["adherents"]), t.get("trees_s")),
        (f"delegations (ensure_delegation; median pair {s['pair_first_100']['median_ms']} ms first 100 → "
         f"{s['pair_last_100']['median_ms']} ms last 100)", _n(s["pairs"]), t.get("delegations_s")),
        (f"accounts (partialImport, SKIP; {sizes['login_users']} with a password)", _n(s["accounts"]),
         t.get("accounts_s")),
        ("our database (subscriptions, delegate terms, trail, secret questions)", "", t.get("database_s")),
        (f"real-path adherents (approved_adherent + {len(REAL_USERS)} users each)", _n(sizes["delegates"]),
         t.get("real_adherents_s")),
        ("their delegates' first portal login (TOTP enrolment)", _n(sizes["delegates"]), t.get("totp_enrolment_s")),
    ]
    lines = _table(["seed step", "count", "seconds"], rows)
    lines.append(f"\nrealm at the end: {_n(counts.get('users'))} users, {_n(counts.get('groups'))} groups, "
                 f"{_n(counts.get('permissions'))} permissions; pairs/s {round(pairs / (t.get('delegations_s') or 1), 1)}"
                 f"; load average {s['load'].get('start')} → {s['load'].get('end')}; "
                 f"{s['started_at']} → {s.get('finished_at')}")
    return "\n".join(lines)


def audit_table(r: dict) -> str:
    if "failed" in r:
        return f"audit failed: {r['failed']}"
    c, w = r["cold"], r["warm"]
    lines = ["| audit | cold (both nodes restarted) | warm |", "|---|---:|---:|",
             f"| **whole audit (collect + report)** | **{c['total_s']} s** | **{w['total_s']} s** |",
             f"| requests | {c['requests']} | {w['requests']} |"]
    lines += [f"| of which {k} | {v} s | {w['phases_s'].get(k, '')} s |" for k, v in c["phases_s"].items()]
    lines.append(f"| building the report | {c['report_s']} s | {w['report_s']} s |")
    g, lean = r["naive"]["gateway"], r["naive"]["lean"]
    lines += [f"| naive per-user reader (Gateway), {g['sample']} users → all {_n(g['people'])} | "
              f"{g['sample_s']} s → {g['extrapolated_s']} s | ratio {g['ratio_to_cold']}× / {g['ratio_to_warm']}× |",
              f"| naive, same transport (get_many, 1 worker) | {lean['sample_s']} s → {lean['extrapolated_s']} s | "
              f"ratio **{lean['ratio_to_cold']}×** / {lean['ratio_to_warm']}× |",
              f"| facts differing naive vs bulk (sample) | {g['mismatches']} / {lean['mismatches']} | |",
              f"\nrestart: {r['restart']}; {_n(c['adherents'])} adherents, {_n(c['admin_events'])} admin events read; "
              f"findings {c['findings']}; targets {r['targets']}", _cond(r)]
    return "\n".join(lines)


def plan_table(r: dict) -> str:
    if "failed" in r:
        return f"plan failed: {r['failed']}"
    return "\n".join(["| `provisioner --json plan` (CLI, through the proxy) | value |", "|---|---:|",
                      f"| seconds | **{r['seconds']}** |", f"| exit code / changes planned | {r['exit_code']} / "
                      f"{r['changes']} |", f"| Keycloak requests (proxy log) | {r['keycloak_requests']} {r['methods']} |",
                      f"| admin events during the plan | {r['admin_events_during']} |",
                      f"\ntargets {r['targets']}", _cond(r)])


def pages_table(r: dict) -> str:
    if "failed" in r:
        return f"pages failed: {r['failed']}"
    w = r.get("warmup") or {}
    lines = [f"{r['delegates']} delegates at once for {r['seconds']} s (portal logins {r['portal_logins_s']} s; after "
             f"{w.get('seconds', 0)} s of the same load not measured: {_n(w.get('pages'))} pages, p95 "
             f"{w.get('p95_ms')} ms)\n"]
    a = r["all"]
    lines += _table(["page", "count", "per s", "p50", "p95", "p99", "errors", "Keycloak calls"],
                    [[name, p["count"], p["per_s"], *_latencies(p), p["errors"], p["keycloak_calls"]]
                     for name, p in r["pages"].items()]
                    + [["**all**", a["count"], f"**{a['pages_per_s']}**", *_latencies(a, bold_p95=True), a["errors"],
                        ""]])
    lines += [f"\ntargets {r['targets']}", _cond(r)]
    return "\n".join(lines)


def logins_table(r: dict) -> str:
    if "failed" in r:
        return f"logins failed: {r['failed']}"
    lines = [f"{r['workers']} workers, {r['users']} users (one login per user per {LOGIN_PACE} s at most), "
             f"{r.get('windows_per_way')} windows of {r['slice_s']} s per way, alternated (ABBA)\n"]
    lines += _table(["way", "logins", "seconds", "per s", "p50", "p95", "p99", "errors"],
                    [[way, w["logins"], w["seconds"], w["per_s"], *_latencies(w), w["errors"]]
                     for way, w in r["ways"].items()])
    lines += [f"\nours / default: **{r['ratio_ours_to_default']}**; targets {r['targets']}", _cond(r)]
    return "\n".join(lines)


def approval_table(r: dict) -> str:
    if "failed" in r:
        return f"approval failed: {r['failed']}"
    a, e = r["approved_adherent"], r["ensure_delegation_from_nothing"]
    return "\n".join([f"with {_n(r['permissions_existing'])} permissions in the realm\n",
                      "| step | samples | median | p90 |", "|---|---:|---:|---:|",
                      f"| full approval (submit, paper, approve: tree, delegation, delegate, mail) | {a['samples']} | "
                      f"{a['median_ms']} ms | {a['p90_ms']} ms |",
                      f"| ensure_delegation, pair created from nothing | {e['samples']} | {e['median_ms']} ms | "
                      f"{e['p90_ms']} ms |", _cond(r)])


def bulk_table(r: dict) -> str:
    if "failed" in r:
        return f"bulk failed: {r['failed']}"
    p, o = r["partialImport"], r["ours"]
    return "\n".join([f"| way ({_n(r['users'])} users, one adherent) | seconds | users/s | vs partialImport |",
                      "|---|---:|---:|---:|",
                      f"| Keycloak partialImport (batches of {p['batch']}, SKIP) | {p['seconds']} | {p['users_per_s']} | 100% |",
                      f"| **ours**: `provisioner bulk import` (CLI, {o['concurrency']} in flight; exit {o['exit_code']}, "
                      f"{o['created']} created, {o['errors']} refused) | {o['seconds']} | {o['users_per_s']} | "
                      f"**{r['ours_vs_partialImport']:.0%}** |",
                      f"\n(the CLI's own start, `provisioner bulk import --help`: {o.get('cli_start_s')} s, "
                      "included in ours)", _cond(r)])


TABLES = {"audit": audit_table, "plan": plan_table, "pages": pages_table, "logins": logins_table,
          "approval": approval_table, "bulk": bulk_table}


def report(_args) -> int:
    results = read_json(RESULTS_FILE)
    if not results:
        raise SystemExit(f"no {RESULTS_FILE}")
    if "seed" in results:
        print("## seed\n\n" + seed_table(results["seed"]) + "\n")
    for name in PHASES:
        if name in results.get("measure", {}):
            print(f"## {name}\n\n" + TABLES[name](results["measure"][name]) + "\n")
    return 0


def start_only(args) -> int:
    ctx = start(args)
    finish(ctx, keep_running=True)
    return 0


def stop(_args) -> int:
    if not PIDS_FILE.exists():
        say("no stack recorded in pids.json")
        return 0
    stop_recorded()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    stack_options = argparse.ArgumentParser(add_help=False)
    stack_options.add_argument("--keep-running", action="store_true", help="leave the stack running at the end")
    stack_options.add_argument("--heap", help="Keycloak nodes' JAVA_OPTS_KC_HEAP (default: the stack's)")
    stack_options.add_argument("--portal-workers", type=int, help="gunicorn workers (default: the stack's)")
    stack_options.add_argument("--portal-threads", type=int, help="gunicorn threads per worker (default: the stack's)")
    stack_options.add_argument("--keycloak-option", action="append", metavar="OPTION",
                               help="one more `kc.sh start` option for both nodes (repeatable), e.g. "
                                    "--keycloak-option=--cache-embedded-realms-max-count=150000")
    sizes = argparse.ArgumentParser(add_help=False)
    sizes.add_argument("--delegates", type=int, default=20, help="delegates logged in to the portal (pages)")
    s = sub.add_parser("seed", parents=[stack_options, sizes], help="seed the stack's state (resumable)")
    s.add_argument("--adherents", type=int, default=10_000)
    s.add_argument("--users-per", type=int, default=5, help="accounts per adherent, its delegate included")
    s.add_argument("--login-users", type=int, default=300, help="Compte Adherent users given a password (logins)")
    s.add_argument("--chunk", type=int, default=200, help="adherents seeded per chunk (the resume unit)")
    s.add_argument("--tree-chunk", type=int, default=200, help="trees per partialImport (halved on failure)")
    s.add_argument("--user-chunk", type=int, default=500, help="accounts per partialImport")
    s.add_argument("--pair-workers", type=int, default=6, help="ensure_delegation calls at once")
    s.add_argument("--fresh", action="store_true", help=f"wipe {STATE} first")
    m = sub.add_parser("measure", parents=[stack_options, sizes], help="measure the seeded stack")
    m.add_argument("--only", help=f"comma-separated phases among {','.join(PHASES)}")
    m.add_argument("--seconds", type=float, default=60, help="pages and logins: measured seconds each")
    m.add_argument("--warmup", type=float, default=60, help="pages: seconds of the same load before, not measured")
    m.add_argument("--tag", help="keep these figures beside the untagged ones (e.g. the same phase with other options)")
    m.add_argument("--naive-sample", type=int, default=500)
    m.add_argument("--login-workers", type=int, default=4)
    m.add_argument("--login-slice", type=float, default=5.0, help="seconds per window of one way")
    m.add_argument("--samples", type=int, default=10, help="approval samples")
    m.add_argument("--bulk", type=int, default=1000)
    m.add_argument("--bulk-concurrency", type=int, default=8)
    sub.add_parser("start", parents=[stack_options], help="start the stack on its state and leave it running")
    sub.add_parser("stop", help="stop what pids.json records")
    sub.add_parser("report", help="print the tables of bench/results/scale.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the stack (finally)
    return {"seed": seed, "measure": measure, "start": start_only, "stop": stop, "report": report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
