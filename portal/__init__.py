"""The CIMR teleservices portal: delegates, CIMR agents, auditors, and users' forgotten passwords.

Thin by design: views parse input, call the provisioner, render French (then English) pages.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from provisioner.settings import Settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal; settings are read once, from ``config["SETTINGS"]`` or the environment."""
    app = Flask(__name__)
    config = dict(config or {})
    settings: Settings = config.pop("SETTINGS", None) or Settings.from_env()
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.portal_secret_key or _dev_secret_key(settings),
        SESSION_COOKIE_NAME="cimr_portal",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=1800,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the server-side session, which expires on its own
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        HSTS=settings.portal_url.startswith("https://"),
        # Delegates call the Admin API with their own token (needs the realm's per-adherent fine-grained
        # permissions); False: the service account, confined by the provisioner's tenant check only.
        DELEGATE_OWN_TOKEN=True,
    )
    app.config.update(config)

    from portal import auth, i18n, observability, security, sessions, services
    from portal.views import agent, auditor, delegate, errors, public, reset
    from portal.views import auth as auth_views

    if app.config.get("CONFIGURE_LOGGING", True):
        observability.configure_logging(settings)
    services.init_app(app)
    observability.init_app(app)
    CSRFProtect(app)
    sessions.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    for bp in (public.bp, reset.bp, reset.link_bp, auth_views.bp, delegate.bp, agent.bp, auditor.bp):
        app.register_blueprint(bp)
    from portal.views import review  # access review campaigns: the delegate's page, the auditors'
    review.init_app(app)
    if settings.portal_trusted_proxies:
        # Behind TLS-terminating proxies: the client's address (reset lockout) and https (HSTS) come from them.
        n = settings.portal_trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return app


def _dev_secret_key(settings: Settings) -> str:
    """Development only (production over https must set PORTAL_SECRET_KEY): stable across gunicorn workers."""
    return hashlib.sha256(f"cimr-portal-dev:{settings.realm}:{settings.portal_client_secret}".encode()).hexdigest()
