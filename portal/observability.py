"""What operators watch: Prometheus metrics on /metrics (restricted), one JSON log line per event, no secret.

Metrics (prometheus_client, a registry per app): requests by endpoint, method and status, their duration, and at
each scrape whether our database answers and how many mails wait in the outbox. Under gunicorn with several
workers, PROMETHEUS_MULTIPROC_DIR makes every worker write its counters there and /metrics add them all up.
/metrics answers a client bearing ``PORTAL_METRICS_TOKEN`` when it is set; otherwise loopback clients only, and
never a request a proxy relayed (it would come from loopback too). Anyone else gets a plain 404.

Logs (python-json-logger): one JSON object per line on stderr, an access line per request (path without its query
string: the OIDC callback's ``code`` never reaches a log), the portal's own events (login, logout, refusals,
outages). A filter on the handler blanks anything that looks like a secret in any record, from any library.
"""

from __future__ import annotations

import hmac
import logging
import re
import sys
import time
from datetime import datetime, timezone
from typing import IO

from flask import Flask, Response, abort, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from pythonjsonlogger.json import JsonFormatter

from provisioner.db import UNREACHABLE
from provisioner.gateway.transport import count_calls
from provisioner.settings import Settings

access_log = logging.getLogger("portal.access")

# --- logs ---------------------------------------------------------------------------------------------------------

REDACTED = "[redacted]"
# Names whose values are secrets, wherever they appear: key=value, "key": "value", key: value.
_SECRET_NAMES = (r"password|passwd|mot_de_passe|secret|client_secret|token|access_token|refresh_token|id_token|"
                 r"code|code_verifier|authorization|csrf_token|cookie|answer|reponse")
_SECRET_PAIR = re.compile(rf"(?i)(\b(?:{_SECRET_NAMES})\b[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
SECRET_FIELDS = frozenset({"password", "password_confirm", "secret", "client_secret", "token", "access_token",
                           "refresh_token", "id_token", "code", "authorization", "cookie", "answers"})


def redact(text: str) -> str:
    """``text`` with every value that looks like a secret replaced by [redacted]."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecrets(logging.Filter):
    """On the handler, so it sees every record (ours and libraries'): message and extra fields lose their secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key in SECRET_FIELDS & record.__dict__.keys():
            setattr(record, key, REDACTED)
        return True


class _Redacting:
    """Tracebacks go through ``redact`` too (an exception's message may quote a value)."""

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return redact(super().formatStack(stack_info))


class JsonLines(_Redacting, JsonFormatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"})

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


class TextLines(_Redacting, logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """The process's log handler (replacing a previous one of ours): JSON or text lines on stderr, secrets
    redacted, at LOG_LEVEL. Werkzeug's own request lines (with query strings) give way to our access lines."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "cimr_portal", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.cimr_portal = True
    handler.setFormatter(JsonLines() if settings.log_format == "json" else TextLines())
    handler.addFilter(RedactSecrets())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return handler


# --- metrics ------------------------------------------------------------------------------------------------------

class _DatabaseCollector:
    """Read at each scrape: does our database answer, and how many mails wait in the outbox (and since when)."""

    def __init__(self, app: Flask):
        self.app = app

    def describe(self):
        return []  # nothing to read at registration

    def collect(self):
        from provisioner import outbox

        up = GaugeMetricFamily("cimr_portal_database_up", "1 when the portal's database answers, else 0")
        try:
            backlog = outbox.backlog(self.app.extensions["cimr"].core)
        except UNREACHABLE:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("cimr_mail_outbox_unsent", "Mails the SMTP server has not taken yet",
                                value=backlog.unsent)
        yield GaugeMetricFamily("cimr_mail_outbox_oldest_unsent_age_seconds",
                                "Age of the oldest mail still waiting (0 when none)", value=backlog.oldest_age_seconds)


class PortalMetrics:
    """The app's registry and instruments (one registry per app: several apps in one process never collide)."""

    def __init__(self, app: Flask, multiproc_dir: str | None):
        self.registry = CollectorRegistry()
        self.multiproc_dir = multiproc_dir
        if multiproc_dir is None:  # one process: its own figures (several workers: per-worker, meaningless summed)
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.database = _DatabaseCollector(app)
        self.requests = Counter("cimr_portal_requests", "HTTP requests answered by the portal",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.duration = Histogram("cimr_portal_request_duration_seconds", "Time to answer a request",
                                  ["endpoint"], registry=self.registry)
        self.keycloak_calls = Histogram("cimr_portal_keycloak_calls", "Calls to Keycloak made to answer a request",
                                        ["endpoint"], buckets=(0, 1, 2, 3, 5, 8, 13, 21), registry=self.registry)
        self.registry.register(self.database)

    def scrape(self) -> bytes:
        """The text Prometheus reads: this process's registry, or every worker's counters added up."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
        registry.register(self.database)
        return generate_latest(registry)


def _metrics_allowed(settings: Settings) -> bool:
    if settings.portal_metrics_token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {settings.portal_metrics_token}".encode())
    relayed = any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
    return request.remote_addr in ("127.0.0.1", "::1") and not relayed


def init_app(app: Flask) -> None:
    settings: Settings = app.config["SETTINGS"]
    metrics = PortalMetrics(app, settings.metrics_multiproc_dir)
    app.extensions["cimr_metrics"] = metrics

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()
        g.keycloak_calls = count_calls()

    @app.after_request
    def count_and_log(resp: Response) -> Response:
        if request.endpoint in ("metrics", "healthz"):
            return resp
        endpoint = request.url_rule.endpoint if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.requests.labels(endpoint, request.method, str(resp.status_code)).inc()
        metrics.duration.labels(endpoint).observe(elapsed)
        calls = g.keycloak_calls() if "keycloak_calls" in g else 0
        metrics.keycloak_calls.labels(endpoint).observe(calls)
        user = (g.get("user") or {}).get("username")
        access_log.info("request", extra={"method": request.method, "path": request.path, "endpoint": endpoint,
                                          "status": resp.status_code, "duration_ms": round(elapsed * 1000, 1),
                                          "keycloak_calls": calls, "client": request.remote_addr, "user": user})
        return resp

    def metrics_view() -> Response:
        if not _metrics_allowed(settings):
            if settings.portal_metrics_token:
                return Response("bearer token required\n", 401, {"WWW-Authenticate": "Bearer"},
                                mimetype="text/plain")
            abort(404)
        return Response(metrics.scrape(), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics_view)

    def healthz() -> Response:
        """The process answers (the proxy's and compose's check): no database, no Keycloak, so that during their
        outages the portal stays in the proxy and answers its own French 503 page."""
        return Response("ok\n", mimetype="text/plain")

    app.add_url_rule("/healthz", "healthz", healthz)
