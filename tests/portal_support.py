"""Fixtures and helpers of the portal tests: the portal served on loopback against the session's realm,
logins through Keycloak's real browser flow, people created through the provisioner's actions.

Its fixtures (``portal``, ``staff``) reach every test module through tests/conftest.py's ``pytest_plugins``;
modules import the helpers they call by name.
"""

from __future__ import annotations

import html
import re
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlparse

import pytest
from werkzeug.serving import make_server

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD
from devstack.logins import keycloak_login
from provisioner.gateway import Gateway
from provisioner.settings import Settings
from provisioner.staff import StaffMember, create_staff
from provisioner.tenancy import Actor

OPERATOR = Actor("test-operator", "agent")


@dataclass
class Portal:
    url: str
    app: object
    settings: Settings

    def client(self):
        return self.app.test_client()


@pytest.fixture(scope="session")
def portal(test_env: dict, realm: str, services) -> Portal:
    """The portal app, served in a thread at the session's PORTAL_URL (the realm's portal client was applied with
    it: tests/conftest.py ``test_env``)."""
    from portal import create_app

    url = test_env["PORTAL_URL"]
    port = urlparse(url).port
    settings = Settings.from_env({**test_env, "PORTAL_SECRET_KEY": "portal-tests-secret-key"})
    # Delegates act with their own token: Keycloak's per-adherent permissions confine them (issue 6).
    app = create_app({"SETTINGS": settings, "DELEGATE_OWN_TOKEN": True})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Portal(url, app, settings)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def staff(service_gw: Gateway, services) -> dict[str, str]:
    """One agent and one auditor, through the provisioner's action; role -> username."""
    out = {}
    for role in ("agent", "auditor"):
        username = f"{role}.{uuid.uuid4().hex[:6]}"
        create_staff(service_gw, services, OPERATOR, StaffMember(username, role, "Test", role.capitalize(),
                                                                 f"{username}@cimr.ma", STAFF_PASSWORD))
        out[role] = username
    return out


@contextmanager
def auditor_secret(portal: Portal):
    """The portal reads the security report with the realm's read-only `auditor` client, whose secret the test
    environment leaves out: given for the duration."""
    services = portal.app.extensions["cimr"]
    saved = services.settings
    services.settings = replace(saved, auditor_client_secret="dev-auditor-secret")
    try:
        yield
    finally:
        services.settings = saved


def login_client(portal: Portal, username: str, password: str):
    """A Flask test client logged in to the portal through Keycloak's browser flow (code + PKCE)."""
    client = portal.client()
    resp = client.get("/auth/login")
    assert resp.status_code == 302
    callback = keycloak_login(resp.headers["Location"], username, password)
    parsed = urlparse(callback)
    assert parsed.path == "/auth/callback" and "code" in parse_qs(parsed.query), callback
    resp = client.get(f"/auth/callback?{parsed.query}")
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return client


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on a page (the session's token)."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def text(resp) -> str:
    """The visible text of a response, for readable assertions."""
    body = re.sub(r"<(script|style).*?</\1>", " ", resp.get_data(as_text=True), flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()


__all__ = ["portal", "staff", "login_client", "csrf_token", "text", "Portal", "auditor_secret"]


def subscription_data(n: str, **over) -> dict:
    """Every field of the Abonnement form, valid; `over` replaces fields by their HTML id."""
    data = {
        "company-numero": n, "company-raison_sociale": "Atlas Textile SARL", "company-rc": "RC 12345",
        "company-patente": "PAT 67890", "company-adresse": "12 bd Zerktouni, Casablanca",
        "company-telephone": "+212 522 11 22 33", "company-site_web": "www.atlas-textile.ma",
        "responsable-civilite": "M", "responsable-nom": "Alaoui", "responsable-prenom": "Karim",
        "responsable-fonction": "Directeur général", "delegate-civilite": "Mme", "delegate-nom": "Bennani",
        "delegate-prenom": "Salma", "delegate-fonction": "Responsable RH", "delegate-email": f"d.{n}@atlas.ma",
        "delegate-password": DELEGATE_PASSWORD, "delegate-password_confirm": DELEGATE_PASSWORD,
    }
    return data | over
