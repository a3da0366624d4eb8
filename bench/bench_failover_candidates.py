"""The coordinator's SIGKILL, candidate by candidate (issue #24, goal 1): what each of Keycloak's and HAProxy's knobs
does to the requests failing at the proxy, side by side in one run.

  proxy-only     the new proxy settings (devstack/proxy.py: checks every second, 250 ms while a state changes, a
                 refused connection marks a node down and is re-sent to the other), nothing else
  three-nodes    the same with a third Keycloak node (the survivors are the larger partition)
  supervisor     the same with the supervisor deleting the dead node's discovery row (devstack/supervisor.py)
  fd-config      JGroups' failure detection and the discovery's staleness through --cache-config-file: a node is
                 started with a stack of our own (the only way to set FD_ALL3, VERIFY_SUSPECT2 or staleness_timeout),
                 and what Keycloak does with it is recorded

Each of the first three: its own production shape (no apps: Keycloak and the proxy), --kills coordinator kills; a
prober asks Keycloak's discovery document through the proxy every 100 ms. Per kill: failed probes, their window, how
long the survivor reported not ready, when JGroups installed the survivor's new view (its log). Results:
bench/results/failover_candidates.json.

    .venv/bin/python -m bench.bench_failover_candidates [--kills 2] [--candidates proxy-only,three-nodes,supervisor,fd-config]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import requests

from devstack.ports import PortPicker, port_is_free, production_stack
from devstack.postgres import PostgresServer
from devstack.production import NodePorts

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "var" / "bench-failover"
RESULTS = ROOT / "bench" / "results" / "failover_candidates.json"
VIEW = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) .*ISPN000094: Received new cluster view .*\((\d+)\)", re.M)
# A stack of our own: JGroups' failure detection made faster, the discovery's staleness shorter.
FD_XML = """<?xml version="1.0" encoding="UTF-8"?>
<infinispan xmlns="urn:infinispan:config:16.0">
    <jgroups>
        <stack name="tcp-fast" extends="tcp">
            <FD_ALL3 timeout="6000" interval="1500"/>
            <VERIFY_SUSPECT2 timeout="500"/>
        </stack>
    </jgroups>
    <cache-container name="keycloak">
        <transport lock-timeout="60000" stack="tcp-fast"/>
    </cache-container>
</infinispan>
"""


def stack_for(name: str, nodes: int, supervise: bool):
    state = STATE / name
    PostgresServer(state / "postgres", 0).stop()
    shutil.rmtree(state, ignore_errors=True)
    stack = production_stack(state)
    if nodes > len(stack.nodes):
        ports = PortPicker()
        ports.taken |= {p for n in stack.nodes for p in (n.http, n.management, n.jgroups)} | {
            stack.proxy_port, stack.proxy_port + 1000, stack.portal_port, stack.portal_backend_port,
            *stack.teleservice_backends.values()}
        extra = tuple(NodePorts(ports.pick(8400, 8499), ports.pick(9400, 9499),
                                ports.pick(7850, 7899, lambda p: port_is_free(p + 50000)))
                      for _ in range(nodes - len(stack.nodes)))
        stack.nodes = stack.nodes + extra
    stack.supervise = supervise
    stack.warm_up = False  # the kill, not the restart, is measured here
    return stack


def view_times(stack, i: int) -> list[tuple[float, int]]:
    """(epoch seconds, members) of each cluster view node ``i`` logged."""
    import datetime

    text = (stack.logs / f"keycloak-node{i + 1}.log").read_text(errors="replace")
    return [(datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f").timestamp(), int(size))
            for t, size in VIEW.findall(text)]


def kill_coordinator(stack) -> dict:
    url = f"{stack.public_url}/realms/master/.well-known/openid-configuration"
    failures: list[tuple[float, str]] = []
    count = [0]
    stop = threading.Event()

    def probe():
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    status = s.get(url, timeout=10, verify=str(stack.ca_file)).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                count[0] += 1
                if status != 200:
                    failures.append((time.monotonic(), str(status)))
                time.sleep(0.1)

    victim = stack.coordinator()
    survivors = [i for i in range(len(stack.nodes)) if i != victim]
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(2)
    killed, killed_epoch = time.monotonic(), time.time()
    stack.kill_node(victim)
    not_ready: list[float] = []
    while time.monotonic() - killed < 90:
        if not all(stack.node_ready(i) for i in survivors):
            not_ready.append(time.monotonic() - killed)
        elif time.monotonic() - killed > 15 and (not not_ready or time.monotonic() - killed - not_ready[-1] > 5):
            break
        time.sleep(0.2)
    time.sleep(3)
    stop.set()
    thread.join(timeout=15)
    views = [t - killed_epoch for t, size in view_times(stack, survivors[0]) if t > killed_epoch]
    return {"victim": victim + 1, "probes": count[0], "failed": len(failures),
            "window_s": round(failures[-1][0] - failures[0][0], 1) if failures else 0.0,
            "statuses": sorted({s for _, s in failures}),
            "survivor_not_ready_s": round(not_ready[-1] - not_ready[0], 1) if not_ready else 0.0,
            "new_view_after_s": round(views[0], 1) if views else None}


def candidate(name: str, kills: int) -> dict:
    stack = stack_for(name, 3 if name == "three-nodes" else 2, supervise=name == "supervisor")
    print(f"» {name}: starting ({len(stack.nodes)} nodes)", file=sys.stderr, flush=True)
    stack.start(with_apps=False)
    runs = []
    try:
        for k in range(kills):
            runs.append(kill_coordinator(stack))
            print(f"» {name} kill {k + 1}: {runs[-1]}", file=sys.stderr, flush=True)
            missing = [i for i in range(len(stack.nodes)) if stack.node_process(i) is None]
            if missing:  # no supervisor: a person starts it again
                stack.start_nodes(missing)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not all(
                    stack.node_ready(i) and stack.cluster_size(i) == len(stack.nodes) for i in range(len(stack.nodes))):
                time.sleep(1)
            while stack.supervisor and stack.supervisor.busy and time.monotonic() < deadline:
                time.sleep(1)
            time.sleep(5)
    finally:
        stack.stop()
    return {"candidate": name, "nodes": len(stack.nodes), "kills": runs}


def fd_config() -> dict:
    """Start one node with a JGroups stack of our own; what Keycloak says."""
    stack = stack_for("fd-config", 2, supervise=False)
    stack.logs.mkdir(parents=True, exist_ok=True)
    from devstack.artifacts import load_secrets, optimized_keycloak

    stack.secrets = load_secrets(stack.state / "secrets.json")
    stack.start_postgres()
    try:
        stack.postgres.create_database("keycloak", owner="keycloak", password=stack.secrets["KC_DB_PASSWORD"])
        home = optimized_keycloak(version=stack.keycloak_version)
        stack.homes = {0: home, 1: home}
        (home / "conf" / "cimr-fd-bench.xml").write_text(FD_XML)
        # --cache-stack overrides the file's stack: leave it out, as Keycloak's guide says for a stack of one's own.
        stack.node_options = ("--cache-config-file=cimr-fd-bench.xml",)
        options = [o for o in stack.node_options_of(0) if not o.startswith("--cache-stack")]
        import subprocess

        proc = subprocess.Popen([str(home / "bin" / "kc.sh"), "start", *options], env=stack.node_env(),
                                stdout=open(stack.logs / "keycloak-node1.log", "wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and not stack.node_ready(0):
            time.sleep(1)
        ready = stack.node_ready(0)
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=60)
        log = (stack.logs / "keycloak-node1.log").read_text(errors="replace")
        said = [line for line in log.splitlines() if re.search(
            r"JDBC_PING|Custom stack|cluster health|ERROR|ISPN000540|MPING|jdbc-ping", line)][:8]
        with stack.postgres.connect("keycloak") as conn:
            rows = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'jgroups_ping'"
                                ).fetchone()[0]
        (home / "conf" / "cimr-fd-bench.xml").unlink()
        return {"candidate": "fd-config", "ready": ready, "exit": proc.returncode, "jgroups_ping_table": bool(rows),
                "log": said}
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--candidates", default="proxy-only,three-nodes,supervisor,fd-config")
    args = parser.parse_args()
    results = []
    for name in args.candidates.split(","):
        results.append(fd_config() if name == "fd-config" else candidate(name, args.kills))
        print(json.dumps(results[-1], indent=2), file=sys.stderr, flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"at": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg()[0],
                                   "results": results}, indent=2) + "\n")
    print("| candidate | nodes | kill | failed probes | window | survivor not ready | new view after |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for k, run in enumerate(r.get("kills", []), 1):
            print(f"| {r['candidate']} | {r['nodes']} | {k} | {run['failed']} of {run['probes']} | {run['window_s']} s | "
                  f"{run['survivor_not_ready_s']} s | {run['new_view_after_s']} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
