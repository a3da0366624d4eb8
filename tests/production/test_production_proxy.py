"""The proxy, as a person (or a scanner) meets it: TLS on every address where a password is typed (Keycloak, the
portal, the teleservices) with Mozilla's "intermediate" profile and HSTS; and when nothing can answer, our French
page in CIMR's look rather than HAProxy's English one or Keycloak's JSON — while the trail keeps a sentence."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from devstack.builders import DELEGATE_PASSWORD, new_user
from devstack.logins import PinnedBrowser
from devstack.proxy import ERROR_PAGE, HSTS, browser_errors, error_pages
from provisioner import trail
from provisioner.context import Context
from provisioner.errors import KeycloakUnavailable
from provisioner.tenancy import Actor
from provisioner.users import create_user
from tests.production.test_production_failover import csrf, portal_login, text_of, user_form

CBC_TLS12 = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
             "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA", "AES128-SHA", "AES256-SHA"]


def public_addresses(stack) -> list[tuple[str, int]]:
    """(host, port) of every TLS address of the proxy."""
    out = [(stack.hostname, stack.proxy_port), (stack.hostname, stack.portal_port)]
    return out + [(stack.teleservices_host, port) for port in stack.teleservices.values()]


def handshake(stack, host: str, port: int, version: ssl.TLSVersion, ciphers: str | None = None) -> str | None:
    """The cipher negotiated, or None when the proxy refuses the handshake."""
    ctx = ssl.create_default_context(cafile=str(stack.ca_file))
    ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    try:
        with socket.create_connection((host, port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            return s.cipher()[0]
    except (ssl.SSLError, ConnectionResetError):
        return None


def test_every_public_address_speaks_tls_with_the_intermediate_profile_and_hsts(stack):
    for host, port in public_addresses(stack):
        assert handshake(stack, host, port, ssl.TLSVersion.TLSv1_3), (host, port)
        assert handshake(stack, host, port, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"), (host, port)
        for cipher in CBC_TLS12:  # sslscan found these accepted before (advisories issue, item 5)
            assert handshake(stack, host, port, ssl.TLSVersion.TLSv1_2, cipher) is None, (host, port, cipher)
        assert handshake(stack, host, port, ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0") is None, (host, port)
        resp = requests.get(f"https://{host}:{port}/", timeout=10, verify=str(stack.ca_file), allow_redirects=False)
        assert resp.headers.get("Strict-Transport-Security") == HSTS, (host, port, dict(resp.headers))
    # Nothing of ours listens in plain HTTP on a public address: the applications are on loopback behind the proxy.
    assert f"127.0.0.1:{stack.portal_backend_port}" in (stack.state / "haproxy.cfg").read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{stack.hostname}:{stack.portal_port}/", timeout=5)


def test_with_no_keycloak_node_to_answer_people_see_our_page_and_the_trail_a_sentence(both_nodes, make_adherent,
                                                                                       services, service_gw):
    stack = both_nodes
    n = make_adherent()
    browser = PinnedBrowser(stack.public_url, node=1)
    portal_login(stack, browser, n, DELEGATE_PASSWORD)
    new_page = f"{stack.portal_url}/delegue/t/compte-adherent/nouveau"
    token = csrf(browser, new_page)
    user = new_user()
    servers = [stack.server_name(i) for i in range(len(stack.nodes))]
    for server in servers:  # both nodes out of the proxy, as during a full outage (PostgreSQL down, both dead)
        stack.runtime.set_state(server, "maint")
    try:
        login_page = requests.get(f"{stack.public_url}/realms/{stack.realm}/account", timeout=10,
                                  headers={"Accept": "text/html"})
        api = requests.get(f"{stack.public_url}/realms/{stack.realm}/.well-known/openid-configuration", timeout=10,
                           headers={"Accept": "application/json"})
        created = browser.session.post(new_page, data={"csrf_token": token, **user_form(user.login)},
                                       allow_redirects=False, timeout=60)
        with pytest.raises(KeycloakUnavailable):  # the same action through the provisioner (the CLI, a job)
            create_user(Context(service_gw, services, Actor.delegate(n), n), user)
    finally:
        for server in servers:
            stack.runtime.set_state(server, "ready")
        for i in range(len(stack.nodes)):
            stack.wait_routed(i)
    for resp in (login_page, api):
        page = text_of(resp)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "10", (resp.status_code, page[:300])
        assert "Service momentanément indisponible" in page and "réessayez dans quelques instants" in page, page[:500]
        assert "CIMR" in resp.text and "#0b2d5b" in resp.text  # CIMR's look: its navy, its brand mark
        assert resp.headers["Strict-Transport-Security"] == HSTS
    # The portal's own French page for the interrupted action, and a sentence in the trail, not the proxy's HTML.
    assert created.status_code == 503 and "indisponible" in text_of(created), text_of(created)[:300]
    entry = next(e for e in trail.events(services.db, adherent=n, limit=20) if e.target == user.login)
    assert entry.outcome == "error" and "<" not in entry.detail, entry.detail
    assert "Keycloak did not answer (HTTP 503 from its proxy" in entry.detail, entry.detail
    # The same create, sent again once Keycloak is back: done, once.
    again = browser.session.post(new_page, data={"csrf_token": token, **user_form(user.login)},
                                 allow_redirects=False, timeout=60)
    assert again.status_code == 302, text_of(again)[:300]
    assert len([u for u in service_gw.search_users(user.login) if u.username == user.login]) == 1


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - Keycloak's answer to a login during a database outage (issue #24)
        body = b'{"error":"unknown_error"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_servers_5xx_becomes_our_page_for_a_browser_and_stays_json_for_an_api_client(stack, tmp_path):
    """The rules of devstack/proxy.py in front of a server that answers 500 (Keycloak's raw JSON during a database
    outage): a browser gets our page (503, Retry-After), an API client the server's own answer."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""global
    noreuseport
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
{error_pages(ERROR_PAGE)}
frontend f
    bind 127.0.0.1:{port}
{browser_errors(ERROR_PAGE)}
    default_backend b
backend b
    server s 127.0.0.1:{server.server_address[1]}
""")
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    proc = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                browser = requests.get(f"http://127.0.0.1:{port}/realms/cimr/login-actions/authenticate", timeout=5,
                                       headers={"Accept": "text/html,application/xhtml+xml"})
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        api = requests.get(f"http://127.0.0.1:{port}/realms/cimr/protocol/openid-connect/token", timeout=5,
                           headers={"Accept": "application/json"})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
    assert browser.status_code == 503 and "Service momentanément indisponible" in browser.text
    assert browser.headers["Retry-After"] == "10"
    assert api.status_code == 500 and api.json() == {"error": "unknown_error"}
