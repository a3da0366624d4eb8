"""What every action needs besides a Gateway: our database, the mailer, the realm's rules, the settings.

The Gateway is passed to each action separately, so the same action runs under the provisioner's service
account (CLI) or under a delegate's own token (portal: ``Gateway.with_token``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from provisioner.catalogue import Catalogue
from provisioner.db import Database
from provisioner.gateway import Gateway
from provisioner.mailer import Mailer
from provisioner.realm.spec import RealmSpec
from provisioner.rules import PasswordPolicy
from provisioner.realm.schema import realm_spec
from provisioner.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    mailer: Mailer
    password_policy: PasswordPolicy
    catalogue: Catalogue = Catalogue(())  # the teleservices of realm/ (from_settings reads them)
    # The provisioner's service account, for the few writes our rules allow a delegate but Keycloak's
    # fine-grained permissions (rightly) do not: the adherent group's own attributes (E@syPaiement
    # confirmations), which also hold its status. Our tenant check and audit trail still apply.
    automation: Callable[[], Gateway] | None = None

    def automation_gateway(self, fallback: Gateway) -> Gateway:
        return self.automation() if self.automation else fallback

    @classmethod
    def from_settings(cls, settings: Settings, spec: RealmSpec | None = None) -> "Services":
        """Open the database (tables created); read the password policy and the teleservices from realm/."""
        spec = spec or realm_spec(settings)
        automation = (functools.cache(lambda: Gateway.as_service_account(settings))
                      if settings.provisioner_client_secret else None)
        return cls(settings, Database(settings.database_url), Mailer.from_settings(settings), spec.password_policy,
                   spec.catalogue(), automation)
