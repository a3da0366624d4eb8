"""The portal is as available as Keycloak: its gunicorn workers killed one at a time under load cost at most the
request each was serving (gunicorn's master starts another; the proxy re-sends an idempotent request whose worker
died), and the master itself, killed, is started again by the supervisor."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import requests

from tests.production.load import Load


def workers(stack) -> list[int]:
    """The PIDs of the portal's gunicorn workers: the children of the master this stack started."""
    master = stack.processes["portal"].pid
    return sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == master)


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def wait_workers(stack, count: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = workers(stack)
        if len(found) == count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gunicorn has {len(workers(stack))} workers, not {count}")


def test_killing_the_portals_workers_one_at_a_time_loses_at_most_the_requests_in_flight(
        both_nodes, settings, spec, services, service_gw, make_adherent):
    stack = both_nodes
    load = Load.prepared(stack, settings, spec, service_gw, services, make_adherent, delegates=2, logins=0).begin()
    before = wait_workers(stack, stack.portal_workers)
    try:
        time.sleep(2)
        for pid in before:
            os.kill(pid, signal.SIGKILL)  # a worker of the master we started, by its PID
            wait_workers(stack, stack.portal_workers)
            time.sleep(1)
        time.sleep(2)
    finally:
        load.end()
    after = workers(stack)
    assert not set(after) & set(before), (before, after)  # every worker replaced, by gunicorn's master
    pages = load.count("page")
    failed = load.failed("page")
    assert pages >= 20 and len(failed) <= len(before), failed  # at most the one each worker was serving
    print(f"\n{len(before)} portal workers killed one at a time: {len(failed)} of {pages} pages failed {failed}")


def test_the_portals_master_killed_is_started_again_by_the_supervisor(both_nodes):
    stack = both_nodes
    proc = stack.processes["portal"]
    killed = time.monotonic()
    os.killpg(proc.pid, signal.SIGKILL)  # the master and its workers: the process group we started
    proc.wait(timeout=30)
    deadline = killed + 120
    while time.monotonic() < deadline and not any(e.what == "back" for e in stack.supervisor.since("portal", killed)):
        time.sleep(0.5)
    assert [e.what for e in stack.supervisor.since("portal", killed)][-1] == "back", stack.supervisor.events[-4:]
    assert requests.get(f"{stack.portal_url}/", timeout=10).status_code == 200
    back = stack.supervisor.since("portal", killed)[-1]
    print(f"\nportal (gunicorn master) killed: back after {back.at - killed:.1f} s ({back.detail})")
