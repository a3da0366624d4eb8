"""Loopback ports for the servers the tests and the benchmarks start (SMTP sink, portal, reference teleservices,
the production shape's processes)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortPicker:
    """Free loopback ports from fixed ranges, never the same one twice."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def pick(self, low: int, high: int, also=lambda p: True) -> int:
        for port in range(low, high + 1):
            if port not in self.taken and port_is_free(port) and also(port):
                self.taken.add(port)
                return port
        raise RuntimeError(f"no free port in {low}-{high}")


# --- the production shape on free ports (tests/production/, bench/) ------------------------------------------------
TELESERVICE_HOST = "127.0.0.2"  # realm/ fixes the teleservices' ports; another loopback address avoids clashes


def production_stack(state):
    """A ProductionStack (devstack/production.py) whose state lives in ``state``, on ports found free in fixed
    ranges (8400-8499 HTTP, 9400-9499 management and proxy statistics, 55400-55499 PostgreSQL, 7850-7899 JGroups);
    not started."""
    from devstack.production import NodePorts, ProductionStack

    ports = PortPicker()
    proxy = ports.pick(8400, 8499, lambda p: port_is_free(p + 1000))  # + 1000: its statistics page
    ports.taken.add(proxy + 1000)
    nodes = tuple(NodePorts(ports.pick(8400, 8499), ports.pick(9400, 9499),
                            # JGroups' failure detection listens on bind port + 50000
                            ports.pick(7850, 7899, lambda p: port_is_free(p + 50000)))
                  for _ in range(2))
    teleservices = {"compte-adherent": 8102} if port_is_free(8102, TELESERVICE_HOST) else {}
    backends = {c: ports.pick(8400, 8499, lambda p: port_is_free(p, TELESERVICE_HOST)) for c in teleservices}
    return ProductionStack(state=state, proxy_port=proxy, nodes=nodes, postgres_port=ports.pick(55400, 55499),
                           portal_port=ports.pick(8400, 8499), portal_backend_port=ports.pick(8400, 8499),
                           smtp_port=free_port(), teleservices=teleservices, teleservice_backends=backends,
                           teleservices_host=TELESERVICE_HOST)
