"""Scale of the permission model: one policy + one permission per adherent (provisioner/permissions.py).

Starts its OWN Keycloak (ports 8280/9280, dev-file database "bench-perm"; never the shared :8080), applies
realm/, then measures side by side, in one run:
  - a delegate's Admin API calls (its own token) with 10 adherents, then with N (default 2,000);
  - the production path ensure_delegation() (approval's permission step) at 10 and at N;
  - the bulk creation rate of the N policy+permission pairs (first vs last hundred);
  - Keycloak's restart time (stop -> /health/ready) and first-call latency at 10 and at N.
Writes bench/results/permissions.json and prints a Markdown table for docs/benchmarks.md.

    KEYCLOAK_HOME=/tmp/bench-perm/keycloak-26.7.0 .venv/bin/python -m bench.bench_permissions [--adherents 2000]

Use a private copy of the distribution (KEYCLOAK_HOME) so that the bench's start-dev never rebuilds the
distribution another Keycloak runs from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import httpx
import requests

from devstack.keycloak_server import KeycloakServer
from provisioner import permissions
from provisioner.gateway import Gateway
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
POWERS = load_realm_spec(ROOT / "realm", "cimr").catalogue().powers()  # realm/'s teleservices
HTTP, MGMT = 8280, 9280
REALM = "cimr"
CLIENT = "bench-cli"          # test-only public client with direct grants (bench realm only)
PASSWORD = "Bench2026"
SAMPLES = 15
RESULTS = ROOT / "bench" / "results"


def numero(i: int) -> str:
    return f"{10_000_000 + i}"


def tree_rep(n: str) -> dict:
    """partialImport needs every subgroup's full path (without it: HTTP 500)."""
    top = f"/adherents/{n}"
    return {"name": n, "path": top,
            "attributes": {"raison_sociale": [f"Bench {n}"], "status": ["active"],
                           "easypaiement_confirmations": ["1"], "categories": ["cadres"]},
            "subGroups": [{"name": client, "path": f"{top}/{client}",
                           "subGroups": [{"name": role, "path": f"{top}/{client}/{role}",
                                          "clientRoles": {client: [role]}} for role in roles]}
                          for client, roles in POWERS.items()]}


def import_adherents(gw: Gateway, count: int, chunk: int = 100) -> float:
    """/adherents/<n> trees and /delegates/<n> for n in 0..count-1 (the previous trees are deleted first).

    One partialImport of 2,000 (or 200) trees fails on the dev-file H2 (lock timeout, HTTP 500): trees are imported
    `chunk` at a time under a temporary top-level group, then moved under /adherents (one POST each).
    Returns seconds."""
    t0 = time.perf_counter()
    for path in ("/adherents", "/delegates"):
        group = gw.group_by_path(path)
        if group:
            gw.delete_group(group.id)
    gw.partial_import({"ifResourceExists": "FAIL", "groups": [
        {"name": "adherents", "path": "/adherents"},
        {"name": "delegates", "path": "/delegates", "realmRoles": ["delegate"]}]})
    adherents, delegates = gw.group_by_path("/adherents"), gw.group_by_path("/delegates")
    numeros = [numero(i) for i in range(count)]
    for k in range(0, count, chunk):
        part = numeros[k:k + chunk]
        tmp = f"import-{k}"
        gw.partial_import({"ifResourceExists": "FAIL", "groups": [
            {"name": tmp, "path": f"/{tmp}", "subGroups": [_reroot(tree_rep(n), f"/{tmp}") for n in part]}]})
        staging = gw.group_by_path(f"/{tmp}")
        moves = [(f"/groups/{adherents.id}/children", {"id": g.id, "name": g.name}) for g in gw.children(staging.id)]
        moves += [(f"/groups/{delegates.id}/children", {"name": n}) for n in part]
        asyncio.run(_post_all(gw, moves))
        gw.delete_group(staging.id)
        print(f"   {k + len(part)} trees", flush=True)
    return time.perf_counter() - t0


def _reroot(rep: dict, prefix: str) -> dict:
    return {**rep, "path": rep["path"].replace("/adherents", prefix, 1),
            "subGroups": [_reroot(s, prefix) for s in rep.get("subGroups") or []]}


async def _post_all(gw: Gateway, calls: list[tuple[str, dict]], concurrency: int = 8) -> None:
    sem = asyncio.Semaphore(concurrency)
    base = gw.admin_url()

    async def one(client: httpx.AsyncClient, path: str, body: dict) -> None:
        async with sem:
            r = await client.post(base + path, json=body)
            assert r.status_code in (201, 204), (r.status_code, r.text[:200])

    async with httpx.AsyncClient(headers=gw.auth_headers(), timeout=120) as client:
        await asyncio.gather(*(one(client, p, b) for p, b in calls))


def group_ids(gw: Gateway) -> tuple[dict[str, list[str]], dict[str, str]]:
    """{numero: ids of its tree}, {numero: id of /delegates/<n>}, walking the trees with parallel GETs (a partial
    export of 22,000 groups outlasts Keycloak's 300 s transaction timeout: HTTP 500)."""
    top, dtop = gw.group_by_path("/adherents"), gw.group_by_path("/delegates")
    adherents = gw.children(top.id)
    delegates = {g.name: g.id for g in gw.children(dtop.id)}
    params = {"briefRepresentation": "true", "first": 0, "max": 100}
    middles = gw.get_many([(f"/groups/{a.id}/children", params) for a in adherents], workers=4)
    flat = [m for ms in middles for m in ms]
    leaves = dict(zip((m["id"] for m in flat),
                      gw.get_many([(f"/groups/{m['id']}/children", params) for m in flat], workers=4)))
    trees = {a.name: [a.id] + [i for m in ms for i in [m["id"]] + [x["id"] for x in leaves[m["id"]]]]
             for a, ms in zip(adherents, middles)}
    return trees, delegates


async def create_pairs(gw: Gateway, trees: dict, delegates: dict, numeros: list[str],
                       concurrency: int = 4) -> list[float]:
    """The same policy + permission as permissions.ensure_delegation, POSTed concurrently; per-pair seconds."""
    base = gw.admin_url(gw.authz_path())
    sem = asyncio.Semaphore(concurrency)
    durations: list[float] = [0.0] * len(numeros)

    async def one(client: httpx.AsyncClient, i: int, n: str) -> None:
        async with sem:
            client.headers.update(gw.auth_headers())  # master admin tokens live 60 s: renewed as we go
            t0 = time.perf_counter()
            r = await client.post(f"{base}/policy/group", json={
                "name": permissions.policy_name(n), "logic": "POSITIVE",
                "groups": [{"id": delegates[n], "extendChildren": False}]})
            r.raise_for_status()
            r = await client.post(f"{base}/permission/scope", json={
                "name": permissions.permission_name(n), "resourceType": "Groups", "resources": trees[n],
                "scopes": list(permissions.SCOPES), "policies": [r.json()["id"]]})
            r.raise_for_status()
            durations[i] = time.perf_counter() - t0

    async with httpx.AsyncClient(headers=gw.auth_headers(), timeout=120) as client:
        await asyncio.gather(*(one(client, i, n) for i, n in enumerate(numeros)))
    return durations


def user_body(n: str, login: str, leaf: str, password: str = PASSWORD) -> dict:
    return {"username": login, "enabled": True, "firstName": "Bench", "lastName": login, "email": f"{login}@b.ma",
            "groups": [f"/adherents/{n}/{leaf}"] if leaf else [f"/delegates/{n}"],
            "attributes": {"adherent": [n]} | ({"teleservice": [leaf.split("/")[0]]} if leaf else {}),
            "credentials": [{"type": "password", "value": password, "temporary": False}]}


def seed_users(gw: Gateway, n: str) -> dict[str, str]:
    """The delegate of n and five users in its leaves (recreated after each import)."""
    ids = {}
    for login, leaf in [(n, "")] + [(f"u{n}x{i}", leaf) for i, leaf in enumerate(
            ["easypaiement/validateur", "easypaiement/ordonnateur", "compte-adherent/utilisateur",
             "eliquidation/utilisateur", "teledeclaration/formulaire-saisie"])]:
        old = gw.user_by_username(login)
        if old:
            gw.delete_user(old.id)
        ids[login] = gw.create_user(user_body(n, login, leaf))
    return ids


def token(settings: Settings, username: str) -> str:
    r = requests.post(f"{settings.keycloak_url}/realms/{REALM}/protocol/openid-connect/token",
                      data={"grant_type": "password", "client_id": CLIENT, "username": username,
                            "password": PASSWORD}, timeout=60)
    r.raise_for_status()
    return r.json()["access_token"]


def timed(fn, samples: int = SAMPLES) -> dict:
    fn()  # warm-up
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return {"median_ms": round(statistics.median(out), 1), "p90_ms": round(out[int(0.9 * (len(out) - 1))], 1)}


def delegate_calls(settings: Settings, admin: Gateway, n: str, ids: dict[str, str]) -> dict:
    """Latency of a delegate's own-token calls on its adherent (every call asserted allowed), and one baseline."""
    base = f"{settings.keycloak_url}/admin/realms/{REALM}"
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token(settings, n)}"
    user = ids[f"u{n}x2"]
    counter = iter(range(10**6))

    def ok(resp: requests.Response) -> None:
        assert resp.status_code < 300, (resp.status_code, resp.text[:200])

    def create_delete() -> None:
        r = s.post(f"{base}/users", json=user_body(n, f"t{n}y{next(counter)}", "compte-adherent/utilisateur",
                                                   f"Tmp{next(counter):06d}"))
        ok(r)
        ok(s.delete(r.headers["Location"]))

    def baseline() -> None:
        ok(requests.get(f"{base}/users", params={"search": f"u{n}x"}, headers=admin.auth_headers()))

    calls = {
        "read user (GET /users/{id})": lambda: ok(s.get(f"{base}/users/{user}")),
        "update user (PUT /users/{id})": lambda: ok(s.put(f"{base}/users/{user}", json={"firstName": "B"})),
        "list users (GET /users?search=)": lambda: ok(s.get(f"{base}/users", params={"search": f"u{n}x"})),
        "group by path": lambda: ok(s.get(f"{base}/group-by-path/adherents/{n}")),
        "reset password": lambda: ok(s.put(f"{base}/users/{user}/reset-password", json={
            "type": "password", "value": f"Pw{next(counter):07d}", "temporary": True})),
        "create + delete user": create_delete,
        "baseline: master admin GET /users?search=": baseline,
    }
    return {name: timed(fn) for name, fn in calls.items()}


def ensure_latency(writer: Gateway, n: str) -> dict:
    """The approval's permission step on an existing pair (re-check) and from nothing (remove + ensure)."""
    def from_nothing() -> None:
        permissions.remove_delegation(writer, n)
        permissions.ensure_delegation(writer, n)
    return {"ensure_delegation (exists)": timed(lambda: permissions.ensure_delegation(writer, n), 10),
            "ensure_delegation (create)": timed(from_nothing, 10)}


def restart(server: KeycloakServer) -> dict:
    server.stop()
    t0 = time.perf_counter()
    server.start(timeout=600)
    ready = time.perf_counter() - t0
    return {"restart_to_ready_s": round(ready, 1)}


def first_call_after_restart(settings: Settings, n: str, ids: dict[str, str]) -> float:
    base = f"{settings.keycloak_url}/admin/realms/{REALM}"
    t = token(settings, n)
    t0 = time.perf_counter()
    r = requests.get(f"{base}/users", params={"search": f"u{n}x"}, headers={"Authorization": f"Bearer {t}"})
    assert r.ok
    return round((time.perf_counter() - t0) * 1000, 1)


def cold_cache_probe(settings: Settings, n: str) -> dict:
    """Right after a restart, before any admin call: Keycloak's group-by-path (and group paths in POST /users) for
    a confined delegate; our gateway's fallback (exact search)."""
    base = f"{settings.keycloak_url}/admin/realms/{REALM}"
    t = token(settings, n)
    h = {"Authorization": f"Bearer {t}"}
    raw = requests.get(f"{base}/group-by-path/adherents/{n}/easypaiement/validateur", headers=h).status_code
    ours = Gateway.with_token(settings, t).group_by_path(f"/adherents/{n}/easypaiement/validateur") is not None
    created = requests.post(f"{base}/users", headers=h, json=user_body(n, f"c{n}z{int(time.time())}",
                                                                      "compte-adherent/utilisateur", "Cold2026x"))
    if created.status_code == 201:
        requests.delete(created.headers["Location"], headers=h)
    out = {"raw_group_by_path_status": raw, "gateway_group_by_path_found": ours,
           "raw_create_user_with_group_path_status": created.status_code}
    print("cold cache:", out, flush=True)
    return out


def phase(settings, admin, writer, count: int, server: KeycloakServer, trees_exist: bool = False) -> dict:
    print(f"== {count} adherents", flush=True)
    out: dict = {"adherents": count}
    out["import_trees_s"] = None if trees_exist else round(import_adherents(admin, count), 1)
    t0 = time.perf_counter()
    trees, delegates = group_ids(admin)
    out["read_group_ids_s"] = round(time.perf_counter() - t0, 1)
    assert len(trees) == count
    # The OVERWRITE import removed the previous trees: Keycloak deleted their permissions with their last group,
    # the policies stay (with no group). Start from nothing.
    for kind in ("permission", "policy"):
        for p in admin.authz_list(kind):
            if p["name"].startswith((permissions.POLICY_PREFIX, permissions.PERMISSION_PREFIX)):
                admin.delete_authz(p["id"])
    t0 = time.perf_counter()
    durations = asyncio.run(create_pairs(admin, trees, delegates, sorted(trees), concurrency=6))
    out["create_pairs_s"] = round(time.perf_counter() - t0, 1)
    out["pairs_per_s"] = round(count / out["create_pairs_s"], 1)
    head, tail = durations[:min(100, count)], durations[-min(100, count):]
    out["pair_ms_first_100"] = round(statistics.median(head) * 1000, 1)
    out["pair_ms_last_100"] = round(statistics.median(tail) * 1000, 1)
    print(json.dumps(out), flush=True)
    measured = [numero(0), numero(count - 1)]
    seeded = {n: seed_users(admin, n) for n in measured}
    for n in measured:
        assert permissions.check_delegation(admin, n) == [], n
    out["delegate_calls_first_adherent"] = delegate_calls(settings, admin, measured[0], seeded[measured[0]])
    out["delegate_calls_last_adherent"] = delegate_calls(settings, admin, measured[1], seeded[measured[1]])
    out.update(ensure_latency(writer, measured[1]))
    t0 = time.perf_counter()
    out["check_all_cheap_s"] = (len(permissions.check_all(admin)), round(time.perf_counter() - t0, 2))
    print(json.dumps(out), flush=True)
    out.update(restart(server))
    out["first_delegate_list_after_restart_ms"] = first_call_after_restart(settings, measured[0], seeded[measured[0]])
    out["cold_cache"] = cold_cache_probe(settings, measured[0])
    admin = Gateway.as_master_admin(settings)
    admin.group_by_path("/adherents")  # warms Keycloak's cache: confined path lookups work again
    out["delegate_calls_after_restart"] = delegate_calls(settings, admin, measured[0], seeded[measured[0]])
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adherents", type=int, default=2000)
    ap.add_argument("--resume", metavar="LOG", help="the log of a run that failed after creating the large trees: "
                    "reuse its small-phase figures and the trees in the bench-perm database")
    args = ap.parse_args()
    small = None
    if args.resume:
        lines = [json.loads(x) for x in Path(args.resume).read_text().splitlines() if x.startswith('{"adherents": 10,')]
        small = next(x for x in reversed(lines) if "delegate_calls_after_restart" in x)
    server = KeycloakServer(http_port=HTTP, management_port=MGMT, database="bench-perm",
                            log_file=ROOT / "test-output" / "bench-perm-keycloak.log")
    t0 = time.perf_counter()
    server.start(timeout=600)
    first_start = round(time.perf_counter() - t0, 1)
    try:
        env = {"KEYCLOAK_URL": server.url, "KEYCLOAK_REALM": REALM, "KEYCLOAK_ADMIN_USER": "admin",
               "KEYCLOAK_ADMIN_PASSWORD": "admin", "DELEGATIONS_CLIENT_SECRET": "dev-delegations-secret"}
        settings = Settings.from_env(env)
        spec = load_realm_spec(settings.realm_dir, REALM, settings.realm_vars)
        admin = Gateway.as_master_admin(settings)
        if not small:
            admin.delete_realm()
            apply_plan(admin, spec, plan_realm(admin, spec))
            admin.post("/clients", {"clientId": CLIENT, "publicClient": True, "directAccessGrantsEnabled": True,
                                    "standardFlowEnabled": False})
            admin.put("", {"bruteForceProtected": False, "passwordPolicy": ""})  # bench only: no lockout, history
        writer = permissions.writer(settings)
        results = {"conditions": {"cores": os.cpu_count(), "keycloak": "26.7.0 start-dev, dev-file H2, --cache=local",
                                  "heap": os.environ.get("JAVA_OPTS_KC_HEAP", "-Xms256m -Xmx1536m"),
                                  "first_start_s": first_start, "samples_per_call": SAMPLES}}
        if small is None:
            small = phase(settings, admin, writer, 10, server)
            admin = Gateway.as_master_admin(settings)
            writer = permissions.writer(settings)
        else:
            results["conditions"]["resumed_from"] = args.resume
        large = phase(settings, admin, writer, args.adherents, server, trees_exist=bool(args.resume))
        results.update(small=small, large=large)
    finally:
        server.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "permissions.json").write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(r: dict) -> None:
    s, l = r["small"], r["large"]
    print(f"\n| measure | {s['adherents']} adherents | {l['adherents']} adherents | ratio |\n|---|---|---|---|")
    for key in s["delegate_calls_first_adherent"]:
        a = s["delegate_calls_first_adherent"][key]["median_ms"]
        b = l["delegate_calls_first_adherent"][key]["median_ms"]
        c = l["delegate_calls_last_adherent"][key]["median_ms"]
        print(f"| {key}, median ms (first / last adherent at {l['adherents']}) | {a} | {b} / {c} | {b / a:.2f} |")
    for key in ("ensure_delegation (exists)", "ensure_delegation (create)"):
        a, b = s[key]["median_ms"], l[key]["median_ms"]
        print(f"| {key}, median ms | {a} | {b} | {b / a:.2f} |")
    for key in ("restart_to_ready_s", "first_delegate_list_after_restart_ms", "pair_ms_first_100",
                "pair_ms_last_100", "pairs_per_s"):
        print(f"| {key} | {s[key]} | {l[key]} | {l[key] / s[key]:.2f} |")


if __name__ == "__main__":
    main()
