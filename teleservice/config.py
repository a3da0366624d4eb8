"""A reference teleservice's settings: which client it is, read once from the environment and realm/."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlparse

from provisioner.errors import ConfigError
from provisioner.realm.schema import realm_spec
from provisioner.settings import Settings



def secret_variable(client_id: str) -> str:
    """The environment variable holding a teleservice's own client secret: EASYPAIEMENT_CLIENT_SECRET, ..."""
    return client_id.upper().replace("-", "_") + "_CLIENT_SECRET"


@dataclass(frozen=True)
class TeleserviceConfig:
    client_id: str
    name: str
    base_url: str  # where the app is reached; redirect URI = base_url + "/callback"
    client_secret: str
    keycloak_url: str
    realm: str
    roles: tuple[str, ...]
    role_descriptions: tuple[tuple[str, str], ...] = ()  # realm/clients.yaml: role -> what it is for
    session_idle_seconds: int = 1800
    # The acr value of a login with the second factor (realm/realm.yaml second_factor.levels), and the roles whose
    # actions ask for it again (step-up): E@syPaiement's validators confirming a payment.
    acr_second_factor: str = "2fa"
    step_up_seconds: int = 120  # how recent a step-up must be to confirm a payment

    @property
    def issuer(self) -> str:
        return f"{self.keycloak_url}/realms/{self.realm}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def port(self) -> int:
        return urlparse(self.base_url).port or 80

    @classmethod
    def from_env(cls, client_id: str, env: Mapping[str, str] | None = None,
                 base_url: str | None = None) -> "TeleserviceConfig":
        """The teleservice ``client_id`` as declared in realm/clients.yaml; raises ConfigError."""
        env = os.environ if env is None else env
        settings = Settings.from_env(env)
        spec = realm_spec(settings)
        client = next((c for c in spec.teleservices if c.client_id == client_id), None)
        if client is None:
            names = ", ".join(c.client_id for c in spec.teleservices)
            raise ConfigError("TELESERVICE", f"{client_id!r} is not a teleservice of realm/ ({names})")
        return cls(client_id=client_id, name=client.name, base_url=(base_url or client.url).rstrip("/"),
                   # Its own secret: <CLIENT_ID>_CLIENT_SECRET, else the one realm/ gives the client.
                   client_secret=env.get(secret_variable(client_id)) or client.secret,
                   keycloak_url=settings.keycloak_url, realm=settings.realm,
                   roles=tuple(r.name for r in client.roles),
                   role_descriptions=tuple((r.name, r.description) for r in client.roles),
                   session_idle_seconds=spec.sessions.idle_seconds,
                   acr_second_factor=spec.second_factor.acr_second_factor)
