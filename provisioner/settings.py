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
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'cimr.db'}"
    realm_dir: Path = PROJECT_ROOT / "realm"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    mail_from: str = "teleservices@cimr.ma"
    # Values substituted for ${NAME} in realm/ YAML (redirect URIs, client secrets).
    realm_vars: Mapping[str, str] = field(default_factory=dict)

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
            database_url=db,
            realm_dir=realm_dir,
            smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=_int(env, "SMTP_PORT", 2525, 1, 65535),
            mail_from=env.get("MAIL_FROM", "teleservices@cimr.ma"),
            realm_vars={k[len("REALM_VAR_"):]: v for k, v in env.items() if k.startswith("REALM_VAR_")},
        )

    def require_admin(self) -> tuple[str, str]:
        """The master admin credentials, or ConfigError naming what is missing."""
        if not self.admin_user:
            raise ConfigError("KEYCLOAK_ADMIN_USER", "is required to plan/apply the realm (a master-realm admin)")
        if not self.admin_password:
            raise ConfigError("KEYCLOAK_ADMIN_PASSWORD", "is required to plan/apply the realm")
        return self.admin_user, self.admin_password

    def require_service_account(self) -> tuple[str, str]:
        """The automation client's credentials, or ConfigError naming what is missing."""
        if not self.provisioner_client_secret:
            raise ConfigError("PROVISIONER_CLIENT_SECRET", "is required (the realm's 'provisioner' client secret)")
        return self.provisioner_client_id, self.provisioner_client_secret
