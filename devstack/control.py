"""The control socket of a running production shape (`scripts/start --production`): another terminal asks the process
that owns the nodes to act on them, and reads its progress.

    python -m devstack.control status               # each node: version, ready, cluster size; the supervisor's last events
    python -m devstack.control roll 26.7.5          # a rolling update to that Keycloak version (scripts/upgrade-keycloak)

The socket is var/production/control.sock (mode 0600): only its owner may use it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE = ROOT / "var" / "production"


class ControlServer:
    """Serves one command per connection, on a thread of its own, for ``stack``."""

    def __init__(self, stack):
        self.stack = stack
        self.path = stack.state / "control.sock"
        self.lock = threading.Lock()  # one command at a time (two rolls at once would fight over the nodes)

    def begin(self) -> "ControlServer":
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.sock.listen(2)
        threading.Thread(target=self._serve, name="control", daemon=True).start()
        return self

    def end(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw", encoding="utf-8") as f:
            def say(line: str) -> None:
                f.write(line + "\n")
                f.flush()
            words = f.readline().split()
            if not self.lock.acquire(blocking=False):
                say("error: another command is running")
                return
            try:
                if words == ["status"]:
                    say(json.dumps(self.status(), indent=2))
                elif len(words) == 2 and words[0] == "roll":
                    say(f"rolling to Keycloak {words[1]} ...")
                    steps = self.stack.roll_to(words[1], log=say)
                    say(json.dumps(steps))
                else:
                    say("error: commands are 'status' and 'roll VERSION'")
                    return
                say("ok")
            except Exception as exc:  # noqa: BLE001 - reported to the caller, the shape keeps running
                say(f"error: {exc}")
            finally:
                self.lock.release()

    def status(self) -> dict:
        stack = self.stack
        nodes = [{"node": i + 1, "name": stack.node_name(i), "build": stack.homes[i].name,
                  "ready": stack.node_ready(i), "cluster_size": stack.cluster_size(i)} for i in range(len(stack.nodes))]
        events = [f"{e.clock} {e.service} {e.what} {e.detail}" for e in (stack.supervisor.events[-10:]
                                                                        if stack.supervisor else [])]
        return {"keycloak_version": stack.keycloak_version, "nodes": nodes, "supervisor": events}


def request(command: str, state: Path = DEFAULT_STATE) -> int:
    """Send ``command`` to the running shape and print what it says; 0 when it ends with "ok"."""
    path = Path(state) / "control.sock"
    if not path.exists():
        print(f"no running production shape here ({path} is missing): scripts/start --production", file=sys.stderr)
        return 1
    last = ""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        with s.makefile("rw", encoding="utf-8") as f:
            f.write(command + "\n")
            f.flush()
            for line in f:
                print(line, end="", flush=True)
                last = line.strip()
    return 0 if last == "ok" else 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m devstack.control status | roll VERSION")
    sys.exit(request(" ".join(sys.argv[1:]), Path(os.environ.get("CIMR_PRODUCTION_STATE", DEFAULT_STATE))))
