"""HAProxy in front of the production shape: its configuration (TLS for Keycloak, the portal and the teleservices)
and its runtime API (a node's state, which node answers).

Used by devstack/production.py; docker/haproxy.cfg is the same configuration for docker-compose.yml
(tests/test_docker_compose.py keeps the two in step). Never used by production code.

What it does, and why:

- **TLS everywhere a person types a password**: one frontend per public address (Keycloak, the portal, each
  teleservice), Mozilla's "intermediate" profile (guidelines 5.8: TLS 1.2 and 1.3, AEAD suites only, so no CBC
  suite in TLS 1.2; no session tickets), HSTS on every answer (two years, as Mozilla recommends). Our certificate is
  ECDSA P-256: the profile's DHE-RSA suites could never be negotiated and are left out (no DH parameters needed); the
  client's order of suites is followed (the profile's "server_preferred_order": false: every suite offered is strong,
  and a phone without AES instructions picks ChaCha20).
- **A dead Keycloak node costs nothing but its requests in flight**: a refused connection marks the node down at
  once (`observe layer4`) and is re-sent to the other node (`retry-on conn-failure`, `redispatch`); an idempotent
  request whose node died before answering is re-sent too (`empty-response`), never a POST (an authorization code or
  a form must not be replayed: `disable-l7-retry`). Checks every second, every 250 ms while a state changes, every
  500 ms on a down node; two in a row decide.
- **A node takes traffic when it is warm**: the runtime API (a local admin socket) holds a restarting node in
  maintenance until it has been warmed up (devstack/warmup.py); `slowstart` then ramps its share.
- **Failures speak French**: what the proxy answers itself (no server, a server that died) and a server's 5xx to a
  browser are our page, docker/errors/unavailable.html, with `Retry-After`; API clients keep Keycloak's JSON.
- No `on-marked-down shutdown-sessions`: a node that is marked down because it is stopping (drained first, then
  `--shutdown-delay`) finishes the requests it has; a dead node's sessions end with it anyway.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ERROR_PAGE = ROOT / "docker" / "errors" / "unavailable.html"

# Mozilla Server Side TLS, "intermediate", guidelines 5.8 (ssl-config.mozilla.org), for an ECDSA certificate.
TLS_CIPHERS = ":".join(("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"))
TLS_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
TLS_CURVES = "X25519:P-256:P-384"
HSTS = "max-age=63072000"
RETRY_AFTER = 10  # seconds: what our error page tells the browser (a node is back or replaced within that)
# Health checks of the Keycloak nodes, shared with docker/haproxy.cfg.
NODE_CHECKS = ("check inter 1s fastinter 250ms downinter 500ms fall 2 rise 2 "
               "observe layer4 error-limit 1 on-error mark-down slowstart 30s")
BACKEND = "keycloak_nodes"


def tls_global() -> str:
    """The global TLS settings (Mozilla intermediate), as docker/haproxy.cfg has them too."""
    return f"""    ssl-default-bind-ciphers {TLS_CIPHERS}
    ssl-default-bind-ciphersuites {TLS_CIPHERSUITES}
    ssl-default-bind-curves {TLS_CURVES}
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets prefer-client-ciphers"""


def error_pages(page: Path) -> str:
    """The proxy's own answers (no server, server gone) as our French page."""
    return "\n".join(f'    http-error status {code} content-type "text/html; charset=utf-8" file {page} '
                     f'hdr Retry-After {RETRY_AFTER} hdr Cache-Control no-store' for code in (502, 503, 504))


def browser_errors(page: Path) -> str:
    """A server's 5xx to a browser becomes our page; an API client (no text/html in Accept) keeps the server's answer."""
    return f"""    http-request set-var(txn.html) bool(true) if {{ req.hdr(accept) -m sub text/html }}
    http-response return status 503 content-type "text/html; charset=utf-8" file {page} hdr Retry-After {RETRY_AFTER} hdr Cache-Control no-store if {{ var(txn.html) -m bool }} {{ status 500:599 }}"""


FRONTEND_COMMON = f"""    http-request set-header X-Forwarded-Proto https
    # Only idempotent requests are re-sent after their server died; a connection refused is always re-sent.
    http-request disable-l7-retry unless METH_GET || METH_HEAD
    http-after-response set-header Strict-Transport-Security "{HSTS}\""""


@dataclass(frozen=True)
class Site:
    """A public HTTPS address of the proxy and the loopback server behind it (the portal, a teleservice)."""

    name: str
    bind: str      # host:port the proxy listens on (TLS)
    server: str    # host:port of the application
    health: str = "/healthz"
    branded_errors: bool = True  # its own 5xx pages replaced by ours for browsers (the portal has its own French ones)


def haproxy_config(*, pem: Path, keycloak_bind: str, public_port: int, nodes: list[tuple[str, str, int]],
                   sites: list[Site], admin_socket: Path, page: Path = ERROR_PAGE, stats_port: int | None = None,
                   health_port: int | None = None, resolver: str | None = None,
                   header: str = "# Generated by devstack/proxy.py") -> str:
    """The whole configuration: ``nodes`` are (name, host:http-port, management port). ``resolver``: a DNS server
    (docker's) to find the servers by name when they start, not when the proxy does; ``health_port``: a plain HTTP
    port answering 200 while a Keycloak node is up (compose's health check)."""
    found = " resolvers dns init-addr last,libc,none" if resolver else ""
    servers = "\n".join(f"    server {name} {address} port {management} cookie {name}{found}"
                        for name, address, management in nodes)
    out = [f"""{header}: TLS in front of the Keycloak nodes, the portal and the teleservices.
global
    log stdout format raw local0 info
    maxconn 2000
    # A port already taken is an error at start, not shared with another proxy half of the connections go to.
    noreuseport
    # The runtime API (a local socket, its owner only): a restarting node is held in maintenance until it is warm,
    # a node is drained before it stops.
    stats socket {admin_socket} mode 600 level admin
    # TLS: Mozilla's "intermediate" profile (AEAD suites only: no CBC in TLS 1.2).
{tls_global()}

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    retries 3
    retry-on conn-failure empty-response
    option redispatch 1
{error_pages(page)}
""" + (f"""
resolvers dns
    nameserver docker {resolver}
    hold valid 10s
""" if resolver else "") + f"""
frontend keycloak
    bind {keycloak_bind} ssl crt {pem} alpn http/1.1
{FRONTEND_COMMON}
    http-request set-header X-Forwarded-Port {public_port}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
{browser_errors(page)}
    # Which node answered (tests, operators reading a HAR); drop it if the node names must stay private.
    http-response set-header X-Served-By %[srv_name]
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    # Sticky sessions (Keycloak's advice: fewer remote cache reads); a dead node's clients go to the other.
    cookie KC_ROUTE insert indirect nocache secure httponly
    option httpchk GET /health/ready
    http-check expect status 200
    default-server {NODE_CHECKS}
{servers}
"""]
    for site in sites:
        out.append(f"""frontend {site.name}
    bind {site.bind} ssl crt {pem} alpn http/1.1
{FRONTEND_COMMON}
{browser_errors(page) + chr(10) if site.branded_errors else ''}    default_backend {site.name}

backend {site.name}
    option httpchk GET {site.health}
    http-check expect status 200
    server app {site.server} check inter 2s fastinter 250ms downinter 500ms fall 2 rise 1{found}
""")
    if stats_port:
        out.append(f"""frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /
    stats refresh 5s
""")
    if health_port:
        out.append(f"""frontend health
    bind :{health_port}
    http-request return status 200 content-type text/plain string "ok" if {{ nbsrv({BACKEND}) gt 0 }}
    http-request return status 503 content-type text/plain string "no keycloak node"
""")
    return "\n".join(out).replace("\n\n\n", "\n\n")


# docker-compose.yml's services: the teleservices it runs, on the ports realm/clients.yaml gives them.
COMPOSE_TELESERVICES = {"teledeclaration": 8101, "easypaiement": 8103}


def compose_config() -> str:
    """docker/haproxy.cfg: the same configuration for docker-compose.yml's services (tests/test_docker_compose.py
    checks the file is this; regenerate it with `python -m devstack.proxy > docker/haproxy.cfg`)."""
    etc = Path("/usr/local/etc/haproxy")
    sites = [Site("portal", ":8000", "portal:8000", branded_errors=False)]
    sites += [Site(f"teleservice_{c}", f":{port}", f"{c}:{port}") for c, port in COMPOSE_TELESERVICES.items()]
    return haproxy_config(
        pem=Path("/certs/proxy.pem"), keycloak_bind=":8443", public_port=8443,
        nodes=[("kc1", "keycloak-1:8080", 9000), ("kc2", "keycloak-2:8080", 9000)], sites=sites,
        admin_socket=Path("/tmp/haproxy-admin.sock"), page=etc / "errors" / "unavailable.html", health_port=8405,
        resolver="127.0.0.11:53",
        header="# docker-compose.yml's proxy. Generated by `python -m devstack.proxy > docker/haproxy.cfg` (devstack/proxy.py)")


if __name__ == "__main__":
    print(compose_config(), end="")


class Runtime:
    """HAProxy's runtime API on its admin socket: one command per connection."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def command(self, line: str, timeout: float = 5) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def set_state(self, server: str, state: str, backend: str = BACKEND) -> None:
        """``state``: ready, drain (no new client, sticky ones still come) or maint (nothing)."""
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise RuntimeError(f"haproxy refused 'set server {backend}/{server} state {state}': {answer}")

    def servers(self, backend: str = BACKEND) -> dict[str, dict[str, str]]:
        """Each server of ``backend`` as `show stat` has it (status UP/DOWN/MAINT/DRAIN..., stot, lbtot...)."""
        text = self.command("show stat").lstrip("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text))
                if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND")}
