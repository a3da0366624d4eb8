"""The production shape's supervisor: what crashes is started again, and says so in its log.

`scripts/start --production` runs it beside the stack, as systemd runs the units devstack/systemd.py writes
(Restart=always): a Keycloak node, the portal's gunicorn (whose master restarts its own workers), a teleservice, the
SMTP sink, HAProxy, PostgreSQL. A Keycloak node is special in two ways:

- once its process is known to be gone, its row in Keycloak's discovery table (jgroups_ping) is deleted at once
  (ProductionStack.forget_node): otherwise Keycloak's split-brain guard keeps the other node not ready until the row
  is a minute old (keycloak/keycloak#47970, #46298; docs/operations.md). A node that is alive but cut off (a real
  partition) never exits, so its row stays and the guard works as Keycloak designed it;
- it is started again behind the proxy's back and given traffic once warm (ProductionStack.restart_node).

What was stopped on purpose (ProductionStack.stop_node, stop_postgres, stop) is left alone. Each event is logged
(var/production/logs/supervisor.log) and kept in ``events`` for the tests.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

BURST, WINDOW = 5, 300  # more than 5 crashes of one service in 5 minutes: it is left down (systemd's StartLimitBurst)


@dataclass(frozen=True)
class Event:
    at: float      # time.monotonic()
    clock: str     # wall clock, for the log
    service: str
    what: str      # exited, forgotten, restarted, back, failed, gave-up
    detail: str = ""


def describe(returncode: int | None) -> str:
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class Supervisor:
    """Watches the stack's processes every ``poll`` seconds and restarts those that exited unexpectedly."""

    def __init__(self, stack, log=print, poll: float = 0.25):
        self.stack = stack
        self.log = log
        self.poll = poll
        self.events: list[Event] = []
        self.busy: set[str] = set()
        self.crashes: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def begin(self) -> "Supervisor":
        self.note("supervisor", "started", "watching " + ", ".join(sorted(self.stack.processes)) + ", postgresql")
        self._thread.start()
        return self

    def end(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def note(self, service: str, what: str, detail: str = "") -> Event:
        event = Event(time.monotonic(), time.strftime("%H:%M:%S"), service, what, detail)
        self.events.append(event)
        line = f"{event.clock} supervisor: {service} {what}{': ' + detail if detail else ''}"
        with open(self.stack.logs / "supervisor.log", "a") as f:
            f.write(line + "\n")
        self.log(f"» {line}")
        return event

    def since(self, service: str, at: float) -> list[Event]:
        """The events of ``service`` from ``at`` (time.monotonic()) on."""
        return [e for e in self.events if e.service == service and e.at >= at]

    # --- the watch ----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._watch_postgres()
            with self.stack.lock:
                snapshot = list(self.stack.processes.items())
            for name, proc in snapshot:
                if name in self.busy or proc.poll() is None:
                    continue
                with self.stack.lock:
                    if self.stack.processes.get(name) is not proc:  # stopped on purpose meanwhile
                        continue
                    self.busy.add(name)
                threading.Thread(target=self._recover, args=(name, proc), name=f"restart-{name}", daemon=True).start()

    def _watch_postgres(self) -> None:
        pg = self.stack.postgres
        if not self.stack.postgres_wanted or "postgresql" in self.busy:
            return
        proc = pg.process
        dead = proc.poll() is not None if proc is not None else pg.pid is None
        if dead:
            self.busy.add("postgresql")
            threading.Thread(target=self._recover_postgres, name="restart-postgresql", daemon=True).start()

    def _allowed(self, service: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self.crashes.get(service, []) if now - t < WINDOW] + [now]
        self.crashes[service] = recent
        if len(recent) > BURST:
            self.note(service, "gave-up", f"{len(recent)} crashes in {WINDOW} s: left down, see its log")
            return False
        return True

    def _recover(self, name: str, proc) -> None:
        exited = self.note(name, "exited", f"pid {proc.pid}, {describe(proc.returncode)}")
        if not self._allowed(name):
            return  # stays busy: never restarted again by this supervisor
        delay = 1.0
        while not self._stop.is_set():
            try:
                self._restart(name, exited)
                break
            except Exception as exc:  # noqa: BLE001 - a failed restart is logged and tried again
                self.note(name, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 30)
        self.busy.discard(name)

    def _restart(self, name: str, exited: Event) -> None:
        stack = self.stack
        if self._stop.is_set():
            return
        if name.startswith("keycloak-node"):
            i = int(name.removeprefix("keycloak-node")) - 1
            rows = stack.forget_node(i)
            self.note(name, "forgotten", f"{rows} discovery row(s) of {stack.node_name(i)} deleted "
                                         f"{time.monotonic() - exited.at:.1f} s after the exit")
            steps = stack.restart_node(i)
            back = self._wait_cluster(i)
            self.note(name, "back", f"in the cluster ({back} members) and taking traffic "
                                    f"{time.monotonic() - exited.at:.1f} s after the exit "
                                    + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        elif name == "haproxy":
            stack.start_proxy()
            self.note(name, "back", f"{time.monotonic() - exited.at:.1f} s after the exit")
        else:
            stack.start_app(name)
            self.note(name, "back", f"answering {time.monotonic() - exited.at:.1f} s after the exit")

    def _wait_cluster(self, i: int, timeout: float = 60) -> int | None:
        deadline = time.monotonic() + timeout
        size = None
        while time.monotonic() < deadline and not self._stop.is_set():
            size = self.stack.cluster_size(i)
            if size == len(self.stack.nodes):
                break
            time.sleep(0.5)
        return size

    def _recover_postgres(self) -> None:
        pg = self.stack.postgres
        exited = self.note("postgresql", "exited", f"postmaster gone ({pg.data_dir})")
        if not self._allowed("postgresql"):
            return  # stays busy: left down
        try:
            pg.kill()  # reap what is left
            pg.start()
            self.note("postgresql", "back", f"accepting connections {time.monotonic() - exited.at:.1f} s after "
                                            "the exit; Keycloak and the portal reconnect by themselves")
        except Exception as exc:  # noqa: BLE001 - logged; the next look tries again
            self.note("postgresql", "failed", f"{type(exc).__name__}: {exc}")
        self.busy.discard("postgresql")
