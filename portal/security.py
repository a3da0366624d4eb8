"""Security headers on every response, and the one check for redirect targets."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Flask, Response, request

from provisioner.settings import Settings


def content_security_policy(settings: Settings) -> str:
    # form-action must allow Keycloak: a posted logout is answered by a redirect to its end-session page.
    keycloak = f"{urlparse(settings.keycloak_url).scheme}://{urlparse(settings.keycloak_url).netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"font-src 'self'; connect-src 'self'; form-action 'self' {keycloak}; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'")


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to, never another site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or any(ord(c) < 32 for c in target):
        return default
    return target


def init_app(app: Flask) -> None:
    csp = content_security_policy(app.config["SETTINGS"])

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", csp)
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: over https Flask-WTF refuses a form whose Referer is missing or another
        # host's (WTF_CSRF_SSL_STRICT), and browsers send it only if allowed; other sites still never see our URLs.
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if app.config.get("HSTS") or request.is_secure:
            resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if not request.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp
