"""Keycloak's split-brain guard still works: two live nodes that cannot see each other do not both serve.

The supervisor deletes a node's discovery row only once that node's process has exited (test_production_failover):
a node cut off from the other is alive, so its row stays and Keycloak decides as it was designed to (the coordinator
with the larger partition, then the smaller address, wins; the other reports not ready). A real partition on
loopback: nftables rejects the JGroups traffic between the two nodes (their transport ports and FD_SOCK2's, port +
50000), in a table of this test's own, deleted at its end. Then the partition heals and the cluster merges again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

SPLIT_BOUND = 90   # seconds for both sides to see a one-member cluster (FD_SOCK2 and VERIFY_SUSPECT2 in practice)
# Seconds for the cluster to be whole again once the partition heals: MERGE3 merges every 10-30 s, then the losing
# side's coordinator row, no longer refreshed, must age (60 s): until then both nodes report not ready (observed with
# 26.7.0; docs/operations.md).
MERGE_BOUND = 180
STABLE = 30  # seconds both nodes must stay ready in one cluster to call it healed


def nft(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True)


@pytest.fixture
def partition(stack):
    """A function cutting the nodes' JGroups traffic (both ways); the cut is removed at the end in any case."""
    if not shutil.which("nft"):
        pytest.skip("nftables (nft) is not installed: the partition cannot be made on loopback")
    table = f"cimr_partition_{os.getpid()}"
    ports = sorted({p for n in stack.nodes for p in (n.jgroups, n.jgroups + 50000)})
    made = []

    def cut() -> None:
        rules = f"""table inet {table} {{
    chain out {{
        type filter hook output priority 0; policy accept;
        tcp dport {{ {', '.join(map(str, ports))} }} reject with tcp reset
        tcp sport {{ {', '.join(map(str, ports))} }} reject with tcp reset
    }}
}}
"""
        result = nft("-f", "-", stdin=rules)
        if result.returncode:
            pytest.skip(f"nftables refused a table here ({result.stderr.strip()}): no partition on this machine")
        made.append(table)

    def heal() -> None:
        if made:
            nft("delete", "table", "inet", table)
            made.clear()

    yield cut, heal
    heal()


def test_two_live_nodes_that_cannot_see_each_other_do_not_both_serve(both_nodes, partition):
    stack = both_nodes
    cut, heal = partition
    mark = time.monotonic()
    cut()
    deadline = time.monotonic() + SPLIT_BOUND
    while time.monotonic() < deadline and [stack.cluster_size(i) for i in range(2)] != [1, 1]:
        time.sleep(1)
    split_after = time.monotonic() - mark
    assert [stack.cluster_size(i) for i in range(2)] == [1, 1], "the partition did not split the cluster"
    time.sleep(8)  # a few readiness probes for the guard to decide
    ready = [stack.node_ready(i) for i in range(2)]
    with stack.postgres.connect("keycloak") as conn:
        rows = conn.execute("SELECT name, coord FROM jgroups_ping ORDER BY name").fetchall()
    status = {name: row["status"] for name, row in stack.runtime.servers().items()}
    heal()
    # Exactly one side serves (the guard), both processes alive, and the supervisor forgot nobody.
    assert ready.count(True) == 1, (ready, rows)
    assert all(stack.node_process(i).poll() is None for i in range(2))
    assert not [e for e in stack.supervisor.events if e.at >= mark and e.what in ("forgotten", "exited")]
    assert sum(1 for s in status.values() if s.startswith("UP")) == 1, status

    # Healed: one cluster again, both nodes ready and staying so for 30 s (after a merge, Keycloak's guard can
    # report both not ready for a while: the merged discovery rows settle; observed with 26.7, docs/operations.md).
    healed = time.monotonic()
    deadline = healed + MERGE_BOUND
    merged = stable_since = None
    outage: list[float] = []  # seconds after healing when neither node was ready
    while time.monotonic() < deadline:
        in_one = all(stack.cluster_size(i) == 2 for i in range(2))
        merged = merged or (time.monotonic() if in_one else None)
        ready_now = [stack.node_ready(i) for i in range(2)]
        if not any(ready_now):
            outage.append(time.monotonic() - healed)
        whole = in_one and all(ready_now)
        stable_since = (stable_since or time.monotonic()) if whole else None
        if stable_since and time.monotonic() - stable_since > STABLE:
            break
        time.sleep(0.5)
    assert stable_since and time.monotonic() - stable_since > STABLE, "the partition did not heal"
    print(f"\npartition: split after {split_after:.0f} s; ready {ready}, rows {rows}, proxy {status}; merged "
          f"{merged - healed:.0f} s after the traffic flowed again; neither node ready "
          + (f"from {outage[0]:.0f} to {outage[-1]:.0f} s" if outage else "never")
          + f"; whole and stable from {stable_since - healed:.0f} s")
