"""Error pages: 400 (CSRF, bad request), 403 (another company's ids), 404, 500, 503 (Keycloak or our database
unreachable). Each dependency's outage is handled here, once, never in a view."""

from __future__ import annotations

import logging

import requests
from flask import Flask, render_template, session
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import InternalServerError

from provisioner.db import UNREACHABLE
from provisioner.errors import Forbidden, KeycloakUnavailable, NotFound, SessionExpired, TenantViolation
from portal.services import services

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf(_e):
        return render_template("error.html", code=400, kind="csrf"), 400

    @app.errorhandler(400)
    def bad_request(_e):
        return render_template("error.html", code=400, kind="bad"), 400

    @app.errorhandler(401)
    @app.errorhandler(SessionExpired)
    def unauthorized(e):
        if isinstance(e, SessionExpired):  # Keycloak ended the session (an agent's action, a logout elsewhere)
            session.clear()
        return render_template("error.html", code=401, kind="expired"), 401

    @app.errorhandler(403)
    @app.errorhandler(TenantViolation)
    @app.errorhandler(Forbidden)
    def forbidden(e):
        if isinstance(e, (TenantViolation, Forbidden)):
            log.warning("refused: %s", e)
        return render_template("error.html", code=403, kind="forbidden"), 403

    @app.errorhandler(404)
    @app.errorhandler(NotFound)
    def not_found(_e):
        return render_template("error.html", code=404, kind="missing"), 404

    @app.errorhandler(KeycloakUnavailable)
    @app.errorhandler(requests.ConnectionError)
    @app.errorhandler(requests.Timeout)
    def unavailable(e):
        log.error("Keycloak unavailable: %s", e)
        services().forget_gateway()  # rebuilt on the next request: recovery without restart
        return render_template("error.html", code=503, kind="unavailable"), 503, {"Retry-After": "30"}

    def database_unavailable(e: Exception):
        # The driver's error class and first line only: never a statement or its values.
        cause = getattr(e, "orig", None) or e
        log.error("database unavailable: %s: %s", type(cause).__name__, (str(cause).splitlines() or [""])[0])
        return render_template("error.html", code=503, kind="database"), 503, {"Retry-After": "30"}

    for error in UNREACHABLE:
        app.register_error_handler(error, database_unavailable)

    @app.errorhandler(InternalServerError)
    def internal(e: InternalServerError):
        # What fails outside a view (saving the session after the response) reaches Flask's 500 handler.
        if isinstance(e.original_exception, UNREACHABLE):
            return database_unavailable(e.original_exception)
        return render_template("error.html", code=500, kind="internal"), 500
