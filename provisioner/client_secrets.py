"""Rotating the secret of a confidential client of the realm (a teleservice, the portal, a service account).

The realm's configuration, like plan/apply: a master-realm administrator does it (the provisioner's service
account may not manage clients). Keycloak makes the new secret and refuses the old one at once; the new one is
handed back once, to the operator, and never written to the trail. realm/clients.yaml reads each secret from a
variable (``secret: ${TELEDECLARATION_CLIENT_SECRET}``): where the client runs, that variable must now hold the
new secret, and where plan/apply run, ``REALM_VAR_<NAME>`` too — until then `plan` reports the secret as drift
and `apply` would put the old one back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from provisioner.core import Services
from provisioner.errors import Message, RuleViolation
from provisioner.gateway import Gateway
from provisioner.realm.spec import RealmSpec
from provisioner.tenancy import Actor
from provisioner.trail import audited

_VARIABLE = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)\}$")


@dataclass(frozen=True)
class RotatedSecret:
    """A client's new secret, and the variable holding it for the client and for plan/apply."""

    client_id: str
    secret: str = field(repr=False)
    variable: str | None  # realm/clients.yaml's ${NAME} for this client's secret; None when written literally

    def instructions(self) -> str:
        """What the operator must update now (English, like the CLI's other output)."""
        if self.variable is None:
            return (f"realm/clients.yaml writes the secret of '{self.client_id}' literally: replace it there, or "
                    "`provisioner apply` will put the old secret back.")
        return (f"Update {self.variable} wherever '{self.client_id}' runs (then restart it: settings are read at "
                f"start), and REALM_VAR_{self.variable} wherever `provisioner plan/apply` run: until then `plan` "
                "reports the secret as drift and `apply` would put the old secret back.")


def confidential_clients(spec: RealmSpec) -> list[str]:
    """The clients of realm/ that authenticate with a secret."""
    return sorted(c.client_id for c in spec.clients if c.secret)


def secret_variable(realm_dir: Path, client_id: str) -> str | None:
    """The ${NAME} realm/clients.yaml reads this client's secret from (the spec keeps only its value)."""
    data = yaml.safe_load((realm_dir / "clients.yaml").read_text(encoding="utf-8")) or {}
    for section in ("teleservices", "clients"):
        body = (data.get(section) or {}).get(client_id)
        if isinstance(body, dict):
            match = _VARIABLE.match(str(body.get("secret", "")))
            return match.group(1) if match else None
    return None


def check_client_id(spec: RealmSpec, client_id: str) -> None:
    """RuleViolation('client_id') unless realm/ declares this confidential client."""
    known = confidential_clients(spec)
    if client_id not in known:
        raise RuleViolation("client_id", Message(
            f"« {client_id} » n'est pas un client confidentiel de realm/ (l'un de : {', '.join(known)}).",
            f"'{client_id}' is not a confidential client of realm/ (one of: {', '.join(known)})."))


def rotate_client_secret(gw: Gateway, services: Services, spec: RealmSpec, actor: Actor,
                         client_id: str) -> RotatedSecret:
    """A new secret for the client (the old one is refused from now on), recorded in the trail without the secret.

    ``gw`` must be allowed to manage clients (a master-realm admin). Raises RuleViolation('client_id') for a client
    realm/ does not declare as confidential, NotFound when the live realm lacks it (not applied yet)."""
    with audited(services.db, actor, "client.rotate_secret", None, f"client:{client_id}") as entry:
        check_client_id(spec, client_id)
        variable = secret_variable(services.settings.realm_dir, client_id)
        secret = gw.regenerate_client_secret(gw.client_uuid(client_id))
        entry.after = {"secret_rotated": True, "secret_variable": variable}
    return RotatedSecret(client_id, secret, variable)
