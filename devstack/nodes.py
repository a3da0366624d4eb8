"""The Keycloak nodes of the production shape (devstack/production.py): their `kc.sh start` options, a start held
out of the proxy until the node is ready and warm, drain, graceful stop, kill, the discovery row of a dead node, the
cluster's coordinator, and a rolling update from one build copy to the next. A part of ProductionStack: it uses the
stack's ports, processes, logs, proxy runtime and database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from devstack.artifacts import optimized_keycloak
from devstack.processes import tail


class KeycloakNodes:
    """ProductionStack's nodes (see the module)."""

    def node_options_of(self, i: int) -> list[str]:
        """Node ``i``'s `kc.sh start` options (the same for `update-compatibility`)."""
        ports = self.nodes[i]
        return ["--optimized",
                "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={ports.http}",
                f"--http-management-port={ports.management}",
                f"--hostname={self.public_url}", "--proxy-headers=xforwarded",
                "--proxy-trusted-addresses=127.0.0.1/32",
                f"--db-url={self.postgres.jdbc_url('keycloak')}", "--db-username=keycloak",
                "--db-pool-min-size=2", "--db-pool-max-size=25",
                "--cache=ispn", "--cache-stack=jdbc-ping",
                "--cache-embedded-network-bind-address=127.0.0.1",
                f"--cache-embedded-network-bind-port={ports.jgroups}",
                # The node's name in the cluster view, the metrics' `node` label, the logs, and the `name` of its
                # row in jgroups_ping (which the supervisor deletes once the node's process is gone).
                f"--spi-cache-embedded-default-node-name={self.node_name(i)}",
                f"--shutdown-delay={self.shutdown_delay}", *self.node_options]

    def node_command(self, i: int) -> list[str]:
        return [str(self.homes[i] / "bin" / "kc.sh"), "start", *self.node_options_of(i)]

    def start_node(self, i: int, timeout: float = 300, warm: bool | None = None) -> subprocess.Popen:
        """Start node ``i`` (0-based) and wait for its /health/ready (and, behind the proxy, its warm-up)."""
        self.start_nodes([i], timeout, warm)
        return self.processes[f"keycloak-node{i + 1}"]

    def start_nodes(self, indices: list[int], timeout: float = 300, warm: bool | None = None
                    ) -> dict[int, dict[str, float]]:
        """Start these nodes together (once the schema exists) and wait until each is ready. Once the proxy runs, a
        node gets traffic only when it is warm (``warm``, by default ``warm_up``): the proxy holds it in maintenance
        until then, and this returns once the proxy sends it requests. Returns the seconds each step took, per node."""
        warm = self.warm_up if warm is None else warm
        t0 = time.monotonic()
        gated = self.proxy_running()
        if gated:
            for i in indices:
                self.runtime.set_state(self.server_name(i), "maint")
        steps: dict[int, dict[str, float]] = {i: {} for i in indices}
        try:
            env = self.node_env()
            procs = {i: self._spawn(f"keycloak-node{i + 1}", self.node_command(i), env=env) for i in indices}
            deadline = time.monotonic() + timeout
            waiting = set(indices)
            while waiting and time.monotonic() < deadline:
                for i in sorted(waiting):
                    if procs[i].poll() is not None:
                        raise RuntimeError(f"Keycloak node {i + 1} exited with {procs[i].returncode}:\n"
                                           f"{tail(self.logs / f'keycloak-node{i + 1}.log')}")
                    if self.node_ready(i):
                        waiting.discard(i)
                        steps[i]["ready"] = time.monotonic() - t0
                time.sleep(0.25)
            if waiting:
                i = min(waiting)
                raise RuntimeError(f"Keycloak node {i + 1} not ready after {timeout}s:\n"
                                   f"{tail(self.logs / f'keycloak-node{i + 1}.log')}")
            if gated and warm:
                for i in indices:
                    self.warm_node(i)
                    steps[i]["warm"] = time.monotonic() - t0
        finally:
            if gated:  # in any case: a cold node is better than a node the proxy forgot
                for i in indices:
                    self.runtime.set_state(self.server_name(i), "ready")
        if gated:
            for i in indices:
                self.wait_routed(i)
                steps[i]["routed"] = time.monotonic() - t0
        return steps

    def restart_node(self, i: int, home: Path | None = None, timeout: float = 300) -> dict[str, float]:
        """Start node ``i`` again (it is stopped or dead), on the build copy ``home`` if given; it gets traffic once
        warm (start_nodes). Returns the seconds each step took."""
        if home is not None:
            self.homes[i] = home
        return self.start_nodes([i], timeout)[i]

    def warm_node(self, i: int) -> dict:
        """Exercise node ``i``'s hot paths directly (not through the proxy) until they run warm."""
        from devstack.warmup import warm_up

        result = warm_up(self, i)
        with open(self.logs / "warmup.log", "a") as f:
            f.write(json.dumps({"node": self.node_name(i), "at": time.strftime("%H:%M:%S"), **result}) + "\n")
        return result

    def realm_exists(self, i: int) -> bool:
        try:
            return requests.get(f"{self.node_url(i)}/realms/{self.realm}", timeout=10).ok
        except requests.RequestException:
            return False

    def proxy_running(self) -> bool:
        proc = self.processes.get("haproxy")
        return proc is not None and proc.poll() is None and self.runtime.path.exists()

    def server_name(self, i: int) -> str:
        """Node ``i``'s server in the proxy (and the value of its route cookie, KC_ROUTE)."""
        return f"kc{i + 1}"

    def wait_routed(self, i: int, timeout: float = 60) -> float:
        """Wait until the proxy sends requests to node ``i``: UP in its statistics and a request pinned to it (by the
        route cookie) answered by it. Returns the seconds waited."""
        t0 = time.monotonic()
        name = self.server_name(i)
        host = self.hostname if "." in self.hostname else f"{self.hostname}.local"
        while time.monotonic() - t0 < timeout:
            status = self.runtime.servers().get(name, {}).get("status", "")
            if status.startswith("UP"):
                with requests.Session() as s:
                    s.cookies.set("KC_ROUTE", name, domain=host, path="/")
                    try:
                        resp = s.get(f"{self.public_url}/realms/master/.well-known/openid-configuration",
                                     timeout=5, verify=str(self.ca_file))
                        if resp.ok and resp.headers.get("X-Served-By") == name:
                            return time.monotonic() - t0
                    except requests.RequestException:
                        pass
            time.sleep(0.25)
        raise RuntimeError(f"the proxy did not send traffic to node {i + 1} within {timeout}s: "
                           f"{self.runtime.servers().get(name)}")

    def node_name(self, i: int) -> str:
        return f"kc{i + 1}-{self.nodes[i].http}"

    def node_ready(self, i: int) -> bool:
        try:
            return requests.get(f"{self.management_url(i)}/health/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def node_process(self, i: int) -> subprocess.Popen | None:
        return self.processes.get(f"keycloak-node{i + 1}")

    def kill_node(self, i: int) -> None:
        """SIGKILL node ``i`` (kc.sh and its JVM: the process group we started it in), as a crash: the supervisor,
        when it runs, notices and starts it again."""
        proc = self.processes[f"keycloak-node{i + 1}"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if not self.supervisor:
            with self.lock:
                self.processes.pop(f"keycloak-node{i + 1}", None)

    def stop_node(self, i: int, timeout: float = 60, drain: bool = True) -> None:
        """Stop node ``i`` gracefully, on purpose (the supervisor leaves it stopped): the proxy first stops sending
        it new clients and waits for its requests in flight (``drain``), then SIGTERM (it leaves the cluster and
        deletes its discovery row); SIGKILL after ``timeout``."""
        with self.lock:
            proc = self.processes.pop(f"keycloak-node{i + 1}")
        if drain and self.proxy_running() and proc.poll() is None:
            self.drain(i)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def drain(self, i: int, timeout: float = 15) -> None:
        """No new request to node ``i`` (maintenance: sticky clients go to another node); wait until the requests
        it is serving are done."""
        name = self.server_name(i)
        self.runtime.set_state(name, "maint")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and int(self.runtime.servers().get(name, {}).get("scur") or 0):
            time.sleep(0.1)

    def forget_node(self, i: int, timeout: float = 10) -> int:
        """Delete the discovery row (jgroups_ping) of node ``i``, whose process is known to be gone: without it,
        Keycloak's split-brain guard keeps the survivor not ready until the row is a minute old (docs/operations.md).
        Waits (up to ``timeout``) until another node has taken over as coordinator, so that there always is one.
        Never call it for a node that may be alive: that row is what the guard needs in a real partition."""
        name = self.node_name(i)
        deadline = time.monotonic() + timeout
        with self.postgres.connect("keycloak") as conn:
            while True:
                taken_over = conn.execute("SELECT 1 FROM jgroups_ping WHERE coord AND name <> %s", (name,)).fetchone()
                if taken_over or time.monotonic() > deadline:
                    return conn.execute("DELETE FROM jgroups_ping WHERE name = %s", (name,)).rowcount
                time.sleep(0.1)

    def cluster_size(self, i: int) -> int | None:
        """The cluster size node ``i`` sees, from its metrics (Infinispan's cache-manager gauge)."""
        try:
            text = requests.get(f"{self.management_url(i)}/metrics", timeout=5).text
        except requests.RequestException:
            return None
        found = re.search(r'^vendor_cluster_size\{cache_manager="keycloak"[^}]*\}\s+([\d.]+)', text, re.M)
        return int(float(found.group(1))) if found else None

    def coordinator(self) -> int | None:
        """Which node (0-based) the cluster's coordinator is: the first member of the latest cluster view a running
        node logged (JGroups' view; the discovery table may hold a dead coordinator's row too)."""
        latest: tuple[str, str] | None = None
        for i in range(len(self.nodes)):
            proc = self.node_process(i)
            log = self.logs / f"keycloak-node{i + 1}.log"
            if proc is None or proc.poll() is not None or not log.exists():
                continue
            views = re.findall(r"^(\S+ \S+) .*ISPN00009[34]: Received new,? (?:MERGED )?cluster view for channel \S+: "
                               r"(?:MergeView::)?\[([^(|\]]+)", log.read_text(errors="replace"), re.M)
            if views and (latest is None or views[-1][0] > latest[0]):
                latest = views[-1]
        for i in range(len(self.nodes)):
            if latest and self.node_name(i) == latest[1].strip():
                return i
        return None

    # --- a rolling update -----------------------------------------------------------------------------------
    def update_compatibility(self, new_home: Path) -> tuple[bool, str]:
        """Keycloak's own verdict (`kc.sh update-compatibility`) on moving the nodes from their build copy to
        ``new_home`` one at a time: metadata written by the running version with the nodes' options, checked by the
        new one. (True, its output) when a rolling update is possible, (False, why) when all nodes must stop."""
        metadata = self.state / "update-compatibility.json"
        options = self.node_options_of(0)
        env = self.node_env()
        made = subprocess.run([str(self.homes[0] / "bin" / "kc.sh"), "update-compatibility", "metadata",
                               f"--file={metadata}", *options], env=env, capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"kc.sh update-compatibility metadata failed:\n{made.stdout[-2000:]}{made.stderr[-2000:]}")
        check = subprocess.run([str(new_home / "bin" / "kc.sh"), "update-compatibility", "check",
                                f"--file={metadata}", *options], env=env, capture_output=True, text=True)
        said = (check.stdout + check.stderr).strip().splitlines()
        verdict = next((line for line in reversed(said) if "Rolling Update" in line), said[-1] if said else "")
        if check.returncode not in (0, 3, 4):
            raise RuntimeError(f"kc.sh update-compatibility check failed ({check.returncode}):\n" + "\n".join(said))
        return check.returncode == 0, verdict

    def roll_to(self, version: str, log=lambda msg: print(msg, file=sys.stderr)) -> list[dict]:
        """Move every node to Keycloak ``version`` without downtime, once Keycloak says a rolling update is possible:
        node by node (the coordinator last), each drained, stopped gracefully, started on the new version, warmed and
        given traffic again before the next one stops. Returns each step's timings."""
        new_home = optimized_keycloak(version=version)
        rolling, verdict = self.update_compatibility(new_home)
        log(f"» kc.sh update-compatibility check: {verdict}")
        if not rolling:
            raise RuntimeError(f"Keycloak refuses a rolling update to {version}: {verdict} — stop every node, then "
                               f"start them on {version} (docs/operations.md, Upgrading Keycloak)")
        coordinator = self.coordinator()
        order = sorted(range(len(self.nodes)), key=lambda i: i == coordinator)
        steps = []
        for i in order:
            if self.homes[i] == new_home:
                continue
            t0 = time.monotonic()
            log(f"» node {i + 1}: draining and stopping ({self.homes[i].name}) ...")
            self.stop_node(i)
            stopped = time.monotonic() - t0
            log(f"» node {i + 1}: starting Keycloak {version}, warming it up, then back behind the proxy ...")
            timings = self.restart_node(i, home=new_home)
            steps.append({"node": i + 1, "stopped_s": round(stopped, 1),
                          **{f"{k}_s": round(v + stopped, 1) for k, v in timings.items()}})
            log(f"» node {i + 1}: on {version}, taking traffic ({steps[-1]})")
        self.keycloak_version = version
        return steps
