"""A delegate's listing (the data of its home page and teleservice tabs): the previous path against ours, side by side.

  - naive: what the portal did before — the adherent by path, each of its leaf groups by path and its members,
    and a search of the users by their `adherent` attribute, all with the delegate's own token: about 15 Admin
    API reads, each judged by Keycloak's fine-grained permissions (most of them user by user);
  - ours: users.overview — one read of our extension's /cimr-adherent/users (the permission judged once per
    group of the adherent's tree).

Starts its OWN Keycloak (ports 8280/9280, dev-file database "bench-pages"; never the shared :8080), applies
realm/, approves --adherents subscriptions through the real path (the delegate's tree and its fine-grained
permission each), gives one of them --users users, then measures sequential latency (p50/p95) and --threads
concurrent delegates for --seconds each (pages/s, p50/p95). Writes bench/results/delegate_pages.json and
prints a Markdown table for docs/benchmarks.md.

    KEYCLOAK_HOME=/tmp/bench-pages/keycloak-26.7.0 .venv/bin/python -m bench.bench_delegate_pages [--adherents 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from devstack.builders import DELEGATE_PASSWORD, approved_adherent, make_user
from devstack.keycloak_server import KeycloakServer
from devstack.ports import free_port
from provisioner import adherents, users
from provisioner.context import Context
from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.realm.schema import realm_spec
from provisioner.settings import Settings
from provisioner.tenancy import Actor

ROOT = Path(__file__).resolve().parent.parent
HTTP, MGMT = 8280, 9280
RESULTS = ROOT / "bench" / "results"
CLIENT = "bench-pages-cli"  # a public direct-grant client of the bench's own realm, for the delegate's token


def naive(gw: Gateway, services: Services, me: Actor, n: str) -> int:
    """The previous listing: the adherent, each leaf group and its members, the users by attribute."""
    adherents.get_adherent(Context(gw, services, me, n))
    for client, roles in services.catalogue.powers().items():
        for role in roles:
            gw.group_members(gw.group_by_path(f"/adherents/{n}/{client}/{role}").id)
    return len(gw.users_by_attribute("adherent", n))


def ours(gw: Gateway, services: Services, me: Actor, n: str) -> int:
    _, by_service = users.overview(Context(gw, services, me, n))
    return sum(len(v) for v in by_service.values())


def sequential(fn, samples: int) -> dict:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "samples": samples}


def concurrent(fn, threads: int, seconds: float) -> dict:
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                fn()
            except Exception:  # counted, not raised: the run goes on
                with lock:
                    errors[0] += 1
                continue
            with lock:
                times.append((time.perf_counter() - t) * 1000)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    times.sort()
    return {"pages_per_s": round(len(times) / elapsed, 1), "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "pages": len(times), "errors": errors[0],
            "threads": threads, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adherents", type=int, default=20)
    ap.add_argument("--users", type=int, default=30, help="users of the measured adherent")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--threads", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    smtp_port = free_port()  # approval mails go to devstack's SMTP sink
    sink = subprocess.Popen([sys.executable, str(ROOT / "devstack" / "smtp_sink.py"), str(work), str(smtp_port)],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    server = KeycloakServer(http_port=HTTP, management_port=MGMT, database="bench-pages", log_file=work / "kc.log")
    server.database_file.unlink(missing_ok=True)
    server.start()
    try:
        env = {"KEYCLOAK_URL": server.url, "KEYCLOAK_REALM": "cimr", "KEYCLOAK_ADMIN_USER": "admin",
               "KEYCLOAK_ADMIN_PASSWORD": "admin", "PROVISIONER_CLIENT_SECRET": "dev-provisioner-secret",
               "DELEGATIONS_CLIENT_SECRET": "dev-delegations-secret", "DATABASE_URL": f"sqlite:///{work}/cimr.db",
               "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "PATH": os.environ.get("PATH", "")}
        settings = Settings.from_env(env)
        spec = realm_spec(settings)
        admin = Gateway.as_master_admin(settings)
        apply_plan(admin, spec, plan_realm(admin, spec))
        services = Services.from_settings(settings, spec)
        service = Gateway.as_service_account(settings)
        agent = Actor.agent("bench.agent")
        t = time.perf_counter()
        numeros = [approved_adherent(service, services, agent) for _ in range(args.adherents)]
        seeding = time.perf_counter() - t
        n, me = numeros[0], Actor.delegate(numeros[0])
        teleservices = [("easypaiement", ("validateur",)), ("compte-adherent", ()), ("eliquidation", ())]
        for i in range(args.users):
            teleservice, powers = teleservices[i % len(teleservices)]
            make_user(service, services, me, n, teleservice, powers)
        admin.post("/clients", {"clientId": CLIENT, "publicClient": True, "directAccessGrantsEnabled": True,
                                "standardFlowEnabled": False, "fullScopeAllowed": True})
        gw = Gateway.with_token(settings, _token(settings, n))
        assert naive(gw, services, me, n) >= ours(gw, services, me, n) == args.users
        result = {"adherents": args.adherents, "users": args.users, "seeding_s": round(seeding, 1),
                  "load_before": os.getloadavg()[0]}
        for name, fn in (("naive", naive), ("ours", ours)):
            result[name] = {"sequential": sequential(lambda: fn(gw, services, me, n), args.samples),
                            "concurrent": concurrent(lambda: fn(gw, services, me, n), args.threads, args.seconds)}
        result["ratio_p50"] = round(result["naive"]["sequential"]["p50_ms"] / result["ours"]["sequential"]["p50_ms"], 1)
        result["ratio_throughput"] = round(result["ours"]["concurrent"]["pages_per_s"]
                                           / max(result["naive"]["concurrent"]["pages_per_s"], 0.1), 1)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "delegate_pages.json").write_text(json.dumps(result, indent=2) + "\n")
        print_table(result)
    finally:
        server.stop()
        sink.terminate()


def _token(settings: Settings, username: str) -> str:
    import requests

    resp = requests.post(f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token", timeout=30,
                         data={"grant_type": "password", "client_id": CLIENT, "username": username,
                               "password": DELEGATE_PASSWORD})
    resp.raise_for_status()
    return resp.json()["access_token"]


def print_table(r: dict) -> None:
    print(f"\n{r['adherents']} adherents, {r['users']} users in the measured one (load {r['load_before']:.1f})\n")
    print("| path | sequential p50 | p95 | concurrent pages/s | p50 | p95 | errors |")
    print("|---|---|---|---|---|---|---|")
    for name in ("naive", "ours"):
        s, c = r[name]["sequential"], r[name]["concurrent"]
        print(f"| {name} | {s['p50_ms']} ms | {s['p95_ms']} ms | {c['pages_per_s']} | {c['p50_ms']} ms | "
              f"{c['p95_ms']} ms | {c['errors']} |")
    print(f"\nours vs naive: {r['ratio_p50']}x faster (sequential p50), {r['ratio_throughput']}x the throughput")


if __name__ == "__main__":
    main()
