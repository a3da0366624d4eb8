"""The gateway's transport, two versions side by side in one run: each workload, against the same Keycloak and the
same realm, with the code of a reference commit (``--before``, e.g. the commit before python-keycloak) and with the
working tree, alternating rounds so that the machine's drift falls on both.

Workloads (what issue-level targets name): the audit of a realm of --adherents adherents (collect + report, with the
read-only `auditor` account); a delegate's page (users.overview with the delegate's own token, --pages times, one
gateway per page as the portal builds it); `plan` on an unchanged realm (the master admin); a bulk import of
--bulk-users users (provisioner.bulk.import_users: rules, trail, one POST per user, 8 at once).

Uses the Keycloak at KEYCLOAK_URL (default http://127.0.0.1:8080; master admin from the environment, admin/admin by
default), which must run our extension (devstack/keycloak_server.py installs it). Creates its own realm, seeds it
once (bench_audit's layout), deletes it at the end (--keep to keep it). Writes bench/results/transport.json and
prints a Markdown table for docs/benchmarks.md.

    .venv/bin/python -m bench.bench_transport --before 1d8d165 [--adherents 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLIENT = "bench-transport-cli"  # a public direct-grant client of the bench realm, for the delegate's token

# Run by each version's own Python path (cwd = that version's tree; the code comes on stdin): the APIs both versions
# share, and where they moved (the request Context, realm/'s loader, plan_realm), either place. argv[1]: the
# workload, argv[2]: JSON arguments. Prints one JSON line.
WORKER = r'''
import json, statistics, sys, time
from provisioner.settings import Settings
from provisioner.gateway import Gateway
import inspect
def request(action, gw, services, actor, adherent):
    """An action's first arguments: the request Context where it takes one, else the four values themselves (told by
    its signature: the virtualenv's editable install may offer provisioner.context to an older tree too)."""
    if next(iter(inspect.signature(action).parameters)) == "ctx":
        from provisioner.context import Context
        return (Context(gw, services, actor, adherent),)
    return gw, services, actor, adherent
try:
    from provisioner.realm.schema import realm_spec
except ImportError:
    from provisioner.realm.spec import load_realm_spec
    def realm_spec(settings):
        return load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)
try:
    from provisioner.realm.plan import plan_realm
except ImportError:
    from provisioner.realm.apply import plan_realm
workload, args = sys.argv[1], json.loads(sys.argv[2])
settings = Settings.from_env(args["env"])
spec = realm_spec(settings)
if workload == "audit":
    from provisioner.audit.collect import collect
    from provisioner.audit.report import build_report
    from provisioner.db import Database
    t = time.perf_counter()
    data = collect(Gateway.as_auditor(settings), Database(settings.database_url), spec, with_drift=False)
    build_report(data)
    print(json.dumps({"seconds": time.perf_counter() - t, "requests": data.reads}))
elif workload == "plan":
    gw = Gateway.as_master_admin(settings)
    plan_realm(gw, spec)  # the token, once
    times = []
    for _ in range(args["repeat"]):
        t = time.perf_counter()
        assert [c.key for c in plan_realm(gw, spec).changes] == [args["bench_client"]]
        times.append(time.perf_counter() - t)
    print(json.dumps({"seconds": statistics.median(times)}))
elif workload == "page":
    from provisioner import users
    from provisioner.core import Services
    from provisioner.tenancy import Actor
    services = Services.from_settings(settings, spec)
    me = Actor.delegate(args["numero"])
    def page():
        return users.overview(*request(users.overview, Gateway.with_token(settings, args["token"]), services, me,
                                       args["numero"]))
    page()  # warm
    times = []
    for _ in range(args["repeat"]):
        t = time.perf_counter()
        page()
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"seconds": statistics.median(times), "p95": times[int(0.95 * len(times)) - 1]}))
elif workload == "bulk":
    from provisioner.bulk import import_users
    from provisioner.core import Services
    from provisioner.tenancy import Actor
    services = Services.from_settings(settings, spec)
    gw = Gateway.as_service_account(settings)
    t = time.perf_counter()
    me = Actor.delegate(args["numero"])
    report = import_users(*request(import_users, gw, services, me, args["numero"]), args["csv"], concurrency=8)
    elapsed = time.perf_counter() - t
    assert not report.errors, [e.message.en for e in report.errors[:3]]
    print(json.dumps({"seconds": elapsed, "created": len(report.created)}))
'''


def run(tree: Path, workload: str, args: dict) -> dict:
    """One workload with the code of ``tree``."""
    out = subprocess.run([sys.executable, "-", workload, json.dumps(args)], input=WORKER, cwd=tree, text=True,
                         capture_output=True, timeout=3600, env={**os.environ, "PYTHONPATH": str(tree)})
    if out.returncode:
        raise RuntimeError(f"{workload} with {tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def checkout(commit: str) -> Path:
    """The tree of ``commit``, in a temporary git worktree."""
    where = Path(tempfile.mkdtemp(prefix="bench-transport-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit], check=True,
                   capture_output=True)
    return where


def csv_of(prefix: str, count: int) -> str:
    from bench.bench_bulk import csv_text, users

    return csv_text(users(prefix, count), questions=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the reference commit (e.g. the one before python-keycloak)")
    parser.add_argument("--adherents", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=200, help="delegate pages per round")
    parser.add_argument("--bulk-users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from bench.bench_audit import seed
    from provisioner.db import Database
    from provisioner.gateway import Gateway
    from provisioner.realm.apply import apply_plan
    from provisioner.realm.plan import plan_realm
    from provisioner.realm.schema import load_realm_spec
    from provisioner.settings import Settings

    realm = f"cimr-bench-transport-{uuid.uuid4().hex[:6]}"
    env = {"KEYCLOAK_URL": os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080"), "KEYCLOAK_REALM": realm,
           "KEYCLOAK_ADMIN_USER": os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
           "KEYCLOAK_ADMIN_PASSWORD": os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
           "AUDITOR_CLIENT_SECRET": "dev-auditor-secret", "PROVISIONER_CLIENT_SECRET": "dev-provisioner-secret",
           "DELEGATIONS_CLIENT_SECRET": "dev-delegations-secret", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9",
           "DATABASE_URL": f"sqlite:////tmp/{realm}.db", "PATH": os.environ.get("PATH", "")}
    settings = Settings.from_env(env)
    spec = load_realm_spec(settings.realm_dir, realm, settings.realm_vars)
    admin = Gateway.as_master_admin(settings)
    before = checkout(args.before)
    trees = {"before": before, "after": ROOT}
    try:
        apply_plan(admin, spec, plan_realm(admin, spec))
        from provisioner.permissions import repair_all

        repair_all(admin, deep=False)
        seeded = seed(admin, Database(settings.database_url), args.adherents, 5, 4)
        print(f"seeded {seeded['adherents']} adherents, {seeded['accounts']} accounts", flush=True)
        from bench.bench_bulk import new_adherent
        from provisioner.core import Services

        services = Services.from_settings(settings, spec)
        service = Gateway.as_service_account(settings)
        numero, token = delegate(settings, admin, service, services)
        results: dict[str, dict[str, list]] = {v: {} for v in trees}
        for r in range(args.rounds):
            for version in (trees if r % 2 == 0 else dict(reversed(list(trees.items())))):
                tree = trees[version]
                got = {"audit": run(tree, "audit", {"env": env}),
                       "plan": run(tree, "plan", {"env": env, "repeat": 5, "bench_client": CLIENT}),
                       "page": run(tree, "page", {"env": env, "numero": numero, "token": token(),
                                                  "repeat": args.pages}),
                       "bulk": run(tree, "bulk", {"env": env, "numero": new_adherent(service, services),
                                                  "csv": csv_of(f"b{r}{version[0]}", args.bulk_users)})}
                for name, value in got.items():
                    results[version].setdefault(name, []).append(value)
                print(f"round {r + 1} {version}: " + ", ".join(f"{k} {v['seconds'] * (1000 if k == 'page' else 1):.3g}"
                                                             f"{'ms' if k == 'page' else 's'}" for k, v in got.items()),
                      flush=True)
        report(args, results)
        return 0
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], capture_output=True)
        if not args.keep:
            admin.delete_realm()
            Path(f"/tmp/{realm}.db").unlink(missing_ok=True)


def delegate(settings, admin, service, services) -> tuple[str, Callable[[], str]]:
    """A real approved adherent (its tree, its delegation) with a few users, and a function giving its delegate's
    fresh token (a direct grant on a client of the bench's own: `plan` sees it as the one change)."""
    import requests

    from bench.bench_bulk import new_adherent
    from provisioner.bulk import import_users
    from provisioner.context import Context
    from provisioner.tenancy import Actor

    numero = new_adherent(service, services)
    assert import_users(Context(service, services, Actor.delegate(numero), numero), csv_of("p", 5)).ok
    url = f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token"

    admin.post("/clients", {"clientId": CLIENT, "publicClient": True, "directAccessGrantsEnabled": True,
                            "standardFlowEnabled": False, "fullScopeAllowed": True})

    def token() -> str:
        resp = requests.post(url, data={"grant_type": "password", "client_id": CLIENT, "username": numero,
                                        "password": "Deleg2026"}, timeout=30)
        resp.raise_for_status()
        return resp.json()["access_token"]
    return numero, token


def report(args, results: dict[str, dict[str, list]]) -> None:
    rows, out = [], {}
    labels = {"audit": f"audit, {args.adherents} adherents (collect + report)", "plan": "`plan`, unchanged realm (median of 5)",
              "page": f"a delegate's page (median of {args.pages})", "bulk": f"bulk import of {args.bulk_users} users"}
    for name, label in labels.items():
        b = statistics.median(v["seconds"] for v in results["before"][name])
        a = statistics.median(v["seconds"] for v in results["after"][name])
        unit, k = ("ms", 1000) if name == "page" else ("s", 1)
        out[name] = {"before_s": b, "after_s": a, "ratio": a / b,
                     "runs": {v: results[v][name] for v in results}}
        rows.append(f"| {label} | {b * k:.3g} {unit} | {a * k:.3g} {unit} | **{a / b:.2f}** |")
    out["conditions"] = {"rounds": args.rounds, "before": args.before, "cores": os.cpu_count(),
                         "load_avg_1m": round(os.getloadavg()[0], 2)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transport.json").write_text(json.dumps(out, indent=2))
    print("\n| workload | before (httpx, our token code) | after (python-keycloak) | after / before |\n|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
