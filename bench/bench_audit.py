"""The audit at scale: bulk reads (provisioner.audit.collect) against a naive per-user implementation.

Creates its OWN realm on the shared Keycloak (default http://127.0.0.1:8080; master admin from the
environment, admin/admin by default; it must run our extension keycloak-extension/, as every Keycloak
started by devstack/keycloak_server.py or docker-compose.yml does), applies realm/, seeds N adherents (default 2,000: group trees and
delegates) and 5 teleservice users per adherent (10,000), a few planted findings, and our database (creation
events, secret questions); then, in the same run:
  - the bulk audit with the read-only `auditor` account (collect + build_report), timed, requests counted;
  - the naive audit: the same facts read one user at a time (GET /users/{id}/groups, /role-mappings and
    /events?user=), twice: one Gateway call after another, and through the bulk reader's own path
    (Gateway.get_many) with one worker (to separate the algorithm from the way requests are made), each on a
    random sample of users (--naive-sample; 0 = all), timed and extrapolated to every user; its facts are
    checked equal to the bulk's for the sample.
The realm is deleted at the end (--keep to keep it). Prints a Markdown table for docs/benchmarks.md and
writes bench/results/audit.json.

    .venv/bin/python -m bench.bench_audit [--adherents 2000] [--users-per-adherent 5] [--workers 4]

Seeded users have no password (argon2 hashing 10,000 passwords would measure Keycloak's hashing, not the
audit, which never reads credentials).
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import os
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import insert

from provisioner.audit.collect import collect
from provisioner.audit.report import build_report
from provisioner.db import Database, audit_events, secret_questions
from provisioner.gateway import Gateway
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
POWERS = load_realm_spec(ROOT / "realm", "cimr").catalogue().powers()  # realm/'s teleservices
RESULTS = ROOT / "bench" / "results"
LEAVES = ["teledeclaration/fichier-preetabli", "compte-adherent/utilisateur", "easypaiement/ordonnateur",
          "easypaiement/validateur", "eliquidation/utilisateur"]
CHUNK = 500


def numero(i: int) -> str:
    return f"{20_000_000 + i}"


def tree_rep(n: str, i: int) -> dict:
    """partialImport needs every subgroup's full path."""
    top = f"/adherents/{n}"
    return {"name": n, "path": top,
            "attributes": {"raison_sociale": [f"Bench {n}"], "status": ["suspended" if i % 500 == 7 else "active"],
                           "easypaiement_confirmations": ["2" if i % 100 == 3 else "1"], "categories": ["cadres"]},
            "subGroups": [{"name": client, "path": f"{top}/{client}",
                           "subGroups": [{"name": role, "path": f"{top}/{client}/{role}",
                                          "clientRoles": {client: [role]}} for role in roles]}
                          for client, roles in POWERS.items()]}


def users_of(n: str, i: int, per: int, created_ms: int, default_role: str) -> list[dict]:
    """The delegate of n and `per` teleservice users; a few planted findings (every 100th/250th adherent).
    Each holds the realm's default role, as every user created through the Admin API does."""
    out = [{"username": n, "enabled": i % 333 != 5, "attributes": {"adherent": [n]}, "groups": [f"/delegates/{n}"],
            "createdTimestamp": created_ms, "realmRoles": [default_role]}]
    for k in range(per):
        leaf = LEAVES[k % len(LEAVES)]
        user = {"username": f"b{n}x{k}", "enabled": True, "firstName": "Bench", "lastName": f"{n}x{k}",
                "email": f"b{n}x{k}@bench.ma", "createdTimestamp": created_ms,
                "attributes": {"adherent": [n], "teleservice": [leaf.split("/")[0]]},
                "groups": [f"/adherents/{n}/{leaf}"], "realmRoles": [default_role]}
        if i % 100 == 11 and k == 0:  # a login holding roles of two teleservices
            user["groups"].append(f"/adherents/{n}/eliquidation/utilisateur")
        if i % 250 == 13 and k == 1:  # a role mapped directly to the user
            user["clientRoles"] = {"compte-adherent": ["utilisateur"]}
        out.append(user)
    return out


def partial_import(admin: Gateway, body: dict) -> dict:
    """Keycloak's partialImport with a long timeout (big bodies on a busy 2-core machine take minutes)."""
    resp = requests.post(admin.admin_url("/partialImport"), json=body, timeout=900, headers=admin.auth_headers())
    resp.raise_for_status()
    return resp.json()


class Poster:
    """POSTs over one plain keep-alive connection per thread (seeding 36,000 small objects)."""

    def __init__(self, gw: Gateway):
        self.gw = gw
        url = urlsplit(gw.admin_url())
        self.host, self.port, self.prefix = url.hostname, url.port, url.path
        self.local = threading.local()
        self.headers = self._fresh(None)

    def _fresh(self, refused: str | None) -> dict:
        """The master admin's token lives 60 s: the gateway renews it once for every thread."""
        return {**self.gw.auth_headers(refused), "Content-Type": "application/json"}

    def post(self, path: str, body: object) -> str | None:
        conn = getattr(self.local, "conn", None) or http.client.HTTPConnection(self.host, self.port, timeout=120)
        self.local.conn = conn
        for _ in range(2):
            sent = self.headers
            conn.request("POST", self.prefix + path, body=json.dumps(body), headers=sent)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 401:
                break
            self.headers = self._fresh(sent["Authorization"])
        if resp.status >= 300:
            raise RuntimeError(f"POST {path}: HTTP {resp.status}")
        location = resp.getheader("Location")
        return location.rsplit("/", 1)[-1] if location else None


def seed_tree(poster: Poster, roles: dict, adherents_id: str, delegates_id: str, n: str, i: int) -> None:
    """/adherents/<n> with its client groups and role-carrying leaves, and /delegates/<n> (18 POSTs)."""
    rep = tree_rep(n, i)
    gid = poster.post(f"/groups/{adherents_id}/children", {"name": n, "attributes": rep["attributes"]})
    for client_group in rep["subGroups"]:
        cid = poster.post(f"/groups/{gid}/children", {"name": client_group["name"]})
        for leaf in client_group["subGroups"]:
            lid = poster.post(f"/groups/{cid}/children", {"name": leaf["name"]})
            client = client_group["name"]
            poster.post(f"/groups/{lid}/role-mappings/clients/{roles[client]['uuid']}", [roles[client][leaf["name"]]])
    poster.post(f"/groups/{delegates_id}/children", {"name": n})


def seed(admin: Gateway, db: Database, count: int, per: int, workers: int) -> dict:
    """Group trees with concurrent POSTs (one partialImport of 24,000 groups outlives Keycloak's transaction
    timeout on a busy machine), users in concurrent partialImports of CHUNK; our database in bulk."""
    numeros = [numero(i) for i in range(count)]
    roles = {}
    for client in POWERS:
        uuid_ = admin.client_uuid(client)
        roles[client] = {"uuid": uuid_, **{r["name"]: r for r in admin.get(f"/clients/{uuid_}/roles") or []}}
    poster = Poster(admin)
    adherents_id = admin.group_by_path("/adherents").id
    delegates_id = admin.group_by_path("/delegates").id
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda item: seed_tree(poster, roles, adherents_id, delegates_id, item[1], item[0]),
                      enumerate(numeros)))
    groups_s = time.perf_counter() - t0

    created_ms = int((time.time() - 30 * 86400) * 1000)
    default_role = f"default-roles-{admin.realm}"
    users = [u for i, n in enumerate(numeros) for u in users_of(n, i, per, created_ms, default_role)]
    chunks = [users[i:i + CHUNK] for i in range(0, len(users), CHUNK)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(workers, 3)) as pool:
        list(pool.map(lambda c: partial_import(admin, {"ifResourceExists": "SKIP", "users": c}), chunks))
    users_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = {u["username"]: u["id"] for u in admin.paged("/users", briefRepresentation="true")}
    now = datetime.now(timezone.utc)
    with db.begin() as conn:
        conn.execute(insert(audit_events), [
            {"at": now, "actor": u["attributes"]["adherent"][0], "actor_role": "delegate",
             "adherent": u["attributes"]["adherent"][0], "action": "user.create", "target": u["username"],
             "outcome": "ok"} for u in users if "teleservice" in u["attributes"]])
        conn.execute(insert(secret_questions), [
            {"user_id": ids[u["username"]], "position": p, "question": f"Q{p} ?", "answer_hash": "$argon2id$bench"}
            for j, u in enumerate(users) if "teleservice" in u["attributes"] and j % 50 != 9 for p in (0, 1)])
    db_s = time.perf_counter() - t0
    return {"adherents": count, "accounts": len(users), "groups_s": groups_s, "users_s": users_s, "db_s": db_s,
            "ids": ids}


def facts(groups: list[dict], mappings: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A user's group paths and direct role mappings, as the bulk read words them."""
    direct = [f"realm:{r['name']}" for r in mappings.get("realmMappings") or []] + \
        [f"{c}:{r['name']}" for c, m in (mappings.get("clientMappings") or {}).items() for r in m.get("mappings") or []]
    return tuple(sorted(g["path"] for g in groups)), tuple(sorted(direct))


def per_user_paths(user_id: str) -> list[tuple[str, dict]]:
    """What a per-user audit reads for each user: groups, direct role mappings, last login."""
    return [(f"/users/{user_id}/groups", {"briefRepresentation": "true"}), (f"/users/{user_id}/role-mappings", {}),
            ("/events", {"user": user_id, "type": "LOGIN", "first": 0, "max": 1})]


def naive_gateway(gw: Gateway, sample: list) -> list:
    """One user at a time, one Gateway call after another, as the rest of our code calls Keycloak."""
    return [[gw.get(path, **params) for path, params in per_user_paths(a.id)] for a in sample]


def naive_lean(gw: Gateway, sample: list) -> list:
    """One request at a time through the bulk reader's own path, get_many with one worker (isolates the algorithm)."""
    flat = gw.get_many([p for a in sample for p in per_user_paths(a.id)], workers=1)
    return [flat[i:i + 3] for i in range(0, len(flat), 3)]


def mismatches(data, sample: list, reads: list) -> int:
    """Users whose naive facts differ from the bulk read (only the roles the audit reads are compared)."""
    relevant = set(data.group_roles)
    wrong = 0
    for a, (groups, mappings, _) in zip(sample, reads):
        paths, direct = facts(groups, mappings)
        if tuple(p for p in paths if p in relevant) != a.groups or \
                tuple(r for r in direct if not r.startswith("realm:default-roles-")) != a.direct_roles:
            wrong += 1
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adherents", type=int, default=2000)
    parser.add_argument("--users-per-adherent", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--naive-sample", type=int, default=1000, help="users read naively (0 = every user)")
    parser.add_argument("--keep", action="store_true", help="keep the bench realm")
    parser.add_argument("--realm", help="measure an already seeded bench realm (kept with --keep) again")
    parser.add_argument("--seed-only", action="store_true", help="seed (and keep) the realm, measure nothing")
    args = parser.parse_args()

    realm = args.realm or f"cimr-bench-audit-{uuid.uuid4().hex[:6]}"
    env = {"KEYCLOAK_URL": os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080"), "KEYCLOAK_REALM": realm,
           "KEYCLOAK_ADMIN_USER": os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
           "KEYCLOAK_ADMIN_PASSWORD": os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
           "AUDITOR_CLIENT_SECRET": "dev-auditor-secret",
           "DATABASE_URL": f"sqlite:////tmp/{realm}.db", "PATH": os.environ.get("PATH", "")}
    settings = Settings.from_env(env)
    spec = load_realm_spec(settings.realm_dir, realm, settings.realm_vars)
    admin = Gateway.as_master_admin(settings)
    db = Database(settings.database_url)
    try:
        if args.realm:
            seeded = {"adherents": args.adherents, "accounts": admin.count_users(), "groups_s": float("nan"),
                      "users_s": float("nan"), "db_s": float("nan")}
        else:
            t0 = time.perf_counter()
            apply_plan(admin, spec, plan_realm(admin, spec))
            print(f"realm {realm} applied in {time.perf_counter() - t0:.1f}s", flush=True)
            seeded = seed(admin, db, args.adherents, args.users_per_adherent, args.workers)
        print(f"seeded {seeded['adherents']} adherents ({seeded['groups_s']:.1f}s), {seeded['accounts']} accounts "
              f"({seeded['users_s']:.1f}s), database ({seeded['db_s']:.1f}s)", flush=True)

        if args.seed_only:
            args.keep = True
            print(f"seeded realm {realm} kept: measure with --realm {realm}", flush=True)
            return 0
        auditor = Gateway.as_auditor(settings)
        t0 = time.perf_counter()
        phases: dict[str, float] = {}
        data = collect(auditor, db, spec, workers=args.workers, timings=phases)
        collect_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = build_report(data)
        build_s = time.perf_counter() - t0
        bulk_s = collect_s + build_s
        print(f"bulk audit: {bulk_s:.1f}s ({data.reads} requests; collect {collect_s:.1f}s, report {build_s:.2f}s), "
              f"{len(report.findings)} findings; phases {phases}", flush=True)

        accounts = [a for a in data.accounts if not a.service_account]
        sample = accounts if args.naive_sample == 0 else random.Random(5).sample(
            accounts, min(args.naive_sample, len(accounts)))
        runs = {}
        for name, naive in (("gateway", naive_gateway), ("lean", naive_lean)):
            t0 = time.perf_counter()
            reads = naive(auditor, sample)
            elapsed = time.perf_counter() - t0
            runs[name] = {"sample_s": round(elapsed, 1),
                          "extrapolated_s": round(elapsed * len(accounts) / len(sample), 1),
                          "mismatches": mismatches(data, sample, reads)}
            runs[name]["ratio"] = round(runs[name]["extrapolated_s"] / bulk_s, 1)
            print(f"naive ({name}): {elapsed:.1f}s for {len(sample)} users ({3 * len(sample)} requests) -> "
                  f"{runs[name]['extrapolated_s']}s for {len(accounts)} users, ratio {runs[name]['ratio']}x; "
                  f"facts differing from bulk: {runs[name]['mismatches']}", flush=True)

        result = {
            "realm_adherents": args.adherents, "accounts": seeded["accounts"], "workers": args.workers,
            "seed_groups_s": round(seeded["groups_s"], 1), "seed_users_s": round(seeded["users_s"], 1),
            "seed_db_s": round(seeded["db_s"], 1), "bulk_s": round(bulk_s, 1), "bulk_requests": data.reads,
            "bulk_collect_s": round(collect_s, 1), "bulk_report_s": round(build_s, 2), "bulk_phases_s": phases,
            "findings": {k: sum(f.kind == k for f in report.findings) for k in sorted({f.kind for f in report.findings})},
            "naive_sample": len(sample), "naive_requests_per_user": 3, "naive": runs,
            "cpu_count": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        phase_rows = "\n".join(f"| of which {name} | {seconds} s |" for name, seconds in phases.items())
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "audit.json").write_text(json.dumps(result, indent=2))
        print(f"""
| measure | value |
|---|---|
| seed: {args.adherents} adherent trees + delegate groups (18 POSTs each, {args.workers} at once) | {result['seed_groups_s']} s |
| seed: {seeded['accounts']} accounts (partialImport, {CHUNK} per call, 3 at once) | {result['seed_users_s']} s |
| seed: our database (creation events, secret questions) | {result['seed_db_s']} s |
| bulk audit (collect + report), {args.workers} connections | **{result['bulk_s']} s**, {data.reads} requests |
{phase_rows}
| naive audit through the Gateway, one call after another, {len(sample)} users measured | {runs['gateway']['sample_s']} s -> {runs['gateway']['extrapolated_s']} s for {len(accounts)} users (3 requests/user) |
| naive audit through get_many with one worker, {len(sample)} users measured | {runs['lean']['sample_s']} s -> {runs['lean']['extrapolated_s']} s for {len(accounts)} users |
| ratio naive (Gateway) / bulk | **{runs['gateway']['ratio']}x** |
| ratio naive (same transport) / bulk | **{runs['lean']['ratio']}x** |
| users whose facts differ between naive and bulk (sample) | {runs['gateway']['mismatches']} / {runs['lean']['mismatches']} |
| load average (1 min) at the end | {result['load_avg_1m']} |
""")
        return 0
    finally:
        if not args.keep:
            admin.delete_realm()
            Path(f"/tmp/{realm}.db").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
