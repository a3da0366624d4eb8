"""Our database down → the portal answers 503 with its own French page (Retry-After, no stack trace), and comes
back by itself, without a restart, when the database does. Against a real PostgreSQL (devstack/postgres.py),
stopped and started under the running portal."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from devstack.ports import free_port
from devstack.postgres import PostgresServer
from portal import create_app
from provisioner.settings import Settings
from tests.portal_support import text

OUTAGE_TITLE = "Service momentanément indisponible"
OUTAGE_TEXT = "Le portail ne peut pas accéder à ses données pour le moment"


def portal_on(database_url: str):
    """The portal app on this database; no Keycloak is needed for the pages used here."""
    settings = Settings.from_env({"DATABASE_URL": database_url, "KEYCLOAK_URL": "http://127.0.0.1:9",
                                  "PROVISIONER_CLIENT_SECRET": "unused-here",
                                  "PORTAL_SECRET_KEY": "portal-database-tests-key", "PATH": ""})
    return create_app({"SETTINGS": settings, "CONFIGURE_LOGGING": False})


def csrf_of(resp) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True)).group(1)


def assert_outage_page(resp) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code == 503, body[:300]
    assert resp.headers["Retry-After"] == "30"
    assert OUTAGE_TITLE in text(resp) and OUTAGE_TEXT in text(resp)
    assert '<html lang="fr">' in body and 'class="site-header"' in body  # the site's layout, in French
    for leak in ("Traceback", "OperationalError", "psycopg", "sqlalchemy", "127.0.0.1:"):
        assert leak not in body


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster of our own on a free loopback port, with the portal's database."""
    base = Path(tempfile.mkdtemp(prefix="cimr-pg-"))
    base.chmod(0o755)  # the server runs as `postgres` when we are root: it must reach its data directory
    server = PostgresServer(base / "data", free_port())
    server.start()
    server.create_database("cimr_portal")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_database_down_gives_the_french_503_page_and_the_portal_recovers_without_restart(postgres):
    app = portal_on(postgres.url("cimr_portal"))
    client = app.test_client()
    form = client.get("/abonnement")  # writes the visitor's session (and its CSRF token) to PostgreSQL
    assert form.status_code == 200
    token = csrf_of(form)
    assert 'cimr_portal_database_up 1.0' in client.get("/metrics").get_data(as_text=True)

    postgres.stop()
    try:
        assert_outage_page(client.get("/abonnement"))  # the session cannot be read
        assert_outage_page(client.post("/abonnement", data={"csrf_token": token}))  # not a CSRF refusal
        assert_outage_page(app.test_client().get("/abonnement"))  # a new visitor: the session cannot be saved
        assert app.test_client().get("/").status_code == 200  # a page that needs no data (nor a session) answers
        assert 'cimr_portal_database_up 0.0' in client.get("/metrics").get_data(as_text=True)
    finally:
        postgres.start()

    # Same app, same pool, no restart: the dead connections are replaced (pool_pre_ping), the session is back.
    assert client.get("/abonnement").status_code == 200
    # The session survived the outage: the token issued before it is still good (422: the empty form's fields are
    # refused one by one, not a 400 for an unknown session).
    refused = client.post("/abonnement", data={"csrf_token": token})
    assert refused.status_code == 422, refused.status_code
    assert 'cimr_portal_database_up 1.0' in client.get("/metrics").get_data(as_text=True)


def test_portal_started_while_the_database_is_down_comes_up_when_it_returns(postgres):
    postgres.stop()
    try:
        app = portal_on(postgres.url("cimr_portal"))  # starts: tables are created at the first connection
        assert_outage_page(app.test_client().get("/abonnement"))
    finally:
        postgres.start()
    assert app.test_client().get("/abonnement").status_code == 200


def test_unreachable_database_url_gives_the_503_page():
    app = portal_on(f"postgresql+psycopg://cimr@127.0.0.1:{free_port()}/cimr")  # nothing listens there
    assert_outage_page(app.test_client().get("/abonnement"))
