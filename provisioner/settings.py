"""Settings, read once from the environment at start and checked."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from provisioner.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(name, f"must be an http(s) URL such as {default!r}, got {value!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0, high: int = 10**9) -> int:
    raw = env.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value


def _portal_secret_key(env: Mapping[str, str]) -> str | None:
    key = env.get("PORTAL_SECRET_KEY") or None
    if key is None and env.get("PORTAL_URL", "").startswith("https://"):
        raise ConfigError("PORTAL_SECRET_KEY", "is required when the portal is served over https (production)")
    if key is not None and len(key) < 16:
        raise ConfigError("PORTAL_SECRET_KEY", "must be at least 16 characters")
    return key


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, default)
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = env.get("PORTAL_METRICS_TOKEN") or None
    if token is not None and len(token) < 16:
        raise ConfigError("PORTAL_METRICS_TOKEN", "must be at least 16 characters")
    return token


def _multiproc_dir(env: Mapping[str, str]) -> str | None:
    value = env.get("PROMETHEUS_MULTIPROC_DIR") or None
    if value is not None and not (os.path.isdir(value) and os.access(value, os.W_OK)):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR",
                          f"must be an existing, writable (and empty) directory, got {value!r}")
    return value


def _list(env: Mapping[str, str], name: str, sep: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in env:
        return default
    values = tuple(v.strip() for v in env[name].split(sep) if v.strip())
    if not values:
        raise ConfigError(name, f"must list at least one value separated by {sep!r}")
    return values


@dataclass(frozen=True)
class Settings:
    """Everything the provisioner and the portal need from their environment."""

    keycloak_url: str = "http://127.0.0.1:8080"
    realm: str = "cimr"
    # Bootstrap/master admin: only `plan`/`apply` of the realm itself need it.
    admin_realm: str = "master"
    admin_user: str | None = None
    admin_password: str | None = None
    # The realm's automation client (service account, least privilege).
    provisioner_client_id: str = "provisioner"
    provisioner_client_secret: str | None = None
    # The security team's read-only client (`provisioner audit`): view-*/query-* roles only.
    auditor_client_id: str = "auditor"
    auditor_client_secret: str | None = None
    # Writes the per-adherent fine-grained admin permissions (client `delegations`). Keycloak requires
    # manage-realm for that, so it is a client of its own, apart from `provisioner` (docs/security.md).
    delegations_client_id: str = "delegations"
    delegations_client_secret: str | None = None
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'cimr.db'}"
    realm_dir: Path = PROJECT_ROOT / "realm"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    mail_from: str = "teleservices@cimr.ma"
    # Staff categories an adherent declares when its subscription does not say (DEFAULT_CATEGORIES, comma-separated).
    default_categories: tuple[str, ...] = ("cadres", "employes", "ouvriers")
    # Secret questions offered to users (SECRET_QUESTIONS, '|'-separated); free text is accepted too.
    secret_question_choices: tuple[str, ...] = (
        "Nom de jeune fille de votre mère ?", "Ville de naissance de votre père ?",
        "Nom de votre premier animal de compagnie ?", "Nom de votre école primaire ?",
        "Marque de votre première voiture ?")
    # CIMR's promise: a subscription is decided within this many hours (SUBSCRIPTION_SLA_HOURS).
    subscription_sla_hours: int = 48
    # The security audit reports a 2-confirmation adherent lacking its second E@syPaiement validator for more than
    # this many days (EASYPAIEMENT_INCOMPLETE_DAYS); a shorter gap is the brochure's order of work.
    easypaiement_incomplete_days: int = 7
    # A teleservice user without a login for this many days is disabled by `provisioner dormant --apply`
    # (DORMANT_DAYS); it must not exceed the realm's login-event retention (realm.events.retention_days).
    dormant_days: int = 180
    # A terminated adherent (résiliation) can be reinstated for this many days; then `provisioner adherent purge`
    # deletes its accounts and groups and anonymises our records (TERMINATION_GRACE_DAYS; docs/retention.md).
    termination_grace_days: int = 30
    # Values substituted for ${NAME} in realm/ YAML (redirect URIs, client secrets).
    realm_vars: Mapping[str, str] = field(default_factory=dict)
    # --- portal (OIDC client `portal` of the realm; Flask session signing) ---
    portal_url: str = "http://127.0.0.1:8000"
    portal_client_id: str = "portal"
    portal_client_secret: str = "dev-portal-secret"
    portal_secret_key: str | None = None
    # Reverse proxies in front of the portal whose X-Forwarded-For/-Proto are trusted (PORTAL_TRUSTED_PROXIES, 0-5).
    portal_trusted_proxies: int = 0
    # The portal's Prometheus metrics (/metrics): with PORTAL_METRICS_TOKEN, any client sending it as a bearer
    # token; without, loopback clients only, never a request relayed by a proxy (docs/operations.md).
    portal_metrics_token: str | None = None
    # Several gunicorn workers: where prometheus_client keeps every worker's counters so /metrics adds them up
    # (PROMETHEUS_MULTIPROC_DIR, the variable prometheus_client itself reads; emptied at each start).
    metrics_multiproc_dir: str | None = None
    # Logs: one JSON object per line (LOG_FORMAT=json) or text for a terminal (text); LOG_LEVEL.
    log_format: str = "json"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read and check the environment; raises ConfigError naming the bad setting."""
        env = os.environ if env is None else env
        realm = env.get("KEYCLOAK_REALM", "cimr")
        if not realm or not all(c.isalnum() or c in "-_" for c in realm):
            raise ConfigError("KEYCLOAK_REALM", f"must be letters, digits, '-' or '_', got {realm!r}")
        realm_dir = Path(env.get("REALM_DIR", str(PROJECT_ROOT / "realm")))
        if not realm_dir.is_dir():
            raise ConfigError("REALM_DIR", f"{realm_dir} is not a directory holding the realm YAML")
        db = env.get("DATABASE_URL", cls.database_url)
        if "://" not in db:
            raise ConfigError("DATABASE_URL", f"must be an SQLAlchemy URL like sqlite:///var/cimr.db, got {db!r}")
        return cls(
            keycloak_url=_url(env, "KEYCLOAK_URL", cls.keycloak_url),
            realm=realm,
            admin_realm=env.get("KEYCLOAK_ADMIN_REALM", "master"),
            admin_user=env.get("KEYCLOAK_ADMIN_USER") or None,
            admin_password=env.get("KEYCLOAK_ADMIN_PASSWORD") or None,
            provisioner_client_id=env.get("PROVISIONER_CLIENT_ID", "provisioner"),
            provisioner_client_secret=env.get("PROVISIONER_CLIENT_SECRET") or None,
            auditor_client_id=env.get("AUDITOR_CLIENT_ID", "auditor"),
            auditor_client_secret=env.get("AUDITOR_CLIENT_SECRET") or None,
            delegations_client_id=env.get("DELEGATIONS_CLIENT_ID", "delegations"),
            delegations_client_secret=env.get("DELEGATIONS_CLIENT_SECRET") or None,
            database_url=db,
            realm_dir=realm_dir,
            smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=_int(env, "SMTP_PORT", 2525, 1, 65535),
            mail_from=env.get("MAIL_FROM", "teleservices@cimr.ma"),
            default_categories=_list(env, "DEFAULT_CATEGORIES", ",", cls.default_categories),
            secret_question_choices=_list(env, "SECRET_QUESTIONS", "|", cls.secret_question_choices),
            subscription_sla_hours=_int(env, "SUBSCRIPTION_SLA_HOURS", 48, 1, 24 * 30),
            easypaiement_incomplete_days=_int(env, "EASYPAIEMENT_INCOMPLETE_DAYS", 7, 0, 365),
            dormant_days=_int(env, "DORMANT_DAYS", 180, 7, 3650),
            termination_grace_days=_int(env, "TERMINATION_GRACE_DAYS", 30, 0, 3650),
            realm_vars={k[len("REALM_VAR_"):]: v for k, v in env.items() if k.startswith("REALM_VAR_")},
            portal_url=_url(env, "PORTAL_URL", cls.portal_url),
            portal_client_id=env.get("PORTAL_CLIENT_ID", "portal"),
            portal_client_secret=env.get("PORTAL_CLIENT_SECRET", cls.portal_client_secret),
            portal_secret_key=_portal_secret_key(env),
            portal_trusted_proxies=_int(env, "PORTAL_TRUSTED_PROXIES", 0, 0, 5),
            portal_metrics_token=_metrics_token(env),
            metrics_multiproc_dir=_multiproc_dir(env),
            log_format=_choice(env, "LOG_FORMAT", ("json", "text"), "json"),
            log_level=_choice(env, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        )

    def require_admin(self) -> tuple[str, str]:
        """The master admin credentials, or ConfigError naming what is missing."""
        if not self.admin_user:
            raise ConfigError("KEYCLOAK_ADMIN_USER", "is required to plan/apply the realm (a master-realm admin)")
        if not self.admin_password:
            raise ConfigError("KEYCLOAK_ADMIN_PASSWORD", "is required to plan/apply the realm")
        return self.admin_user, self.admin_password

    def require_auditor(self) -> tuple[str, str]:
        """The read-only audit client's credentials, or ConfigError naming what is missing."""
        if not self.auditor_client_secret:
            raise ConfigError("AUDITOR_CLIENT_SECRET", "is required (the realm's read-only 'auditor' client secret)")
        return self.auditor_client_id, self.auditor_client_secret

    def require_service_account(self) -> tuple[str, str]:
        """The automation client's credentials, or ConfigError naming what is missing."""
        if not self.provisioner_client_secret:
            raise ConfigError("PROVISIONER_CLIENT_SECRET", "is required (the realm's 'provisioner' client secret)")
        return self.provisioner_client_id, self.provisioner_client_secret

    def require_delegations(self) -> tuple[str, str]:
        """The `delegations` client's credentials (it writes the delegates' permissions), or ConfigError."""
        if not self.delegations_client_secret:
            raise ConfigError("DELEGATIONS_CLIENT_SECRET",
                              "is required to approve subscriptions (the realm's 'delegations' client secret)")
        return self.delegations_client_id, self.delegations_client_secret
