"""Users laid out as docs/domain-model.md says, created with the master-admin gateway.

The SSO and audit tests need users with a final (not temporary) password, to log in through the browser
flow, and broken objects the provisioner's actions would refuse to create; adherents, disabling,
suspension and delegate replacement go through the provisioner's actions (devstack/builders.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from provisioner.gateway import Gateway

PASSWORD = "Pass2026"


@dataclass
class Adherent:
    numero: str
    group_id: str


def create_user(gw: Gateway, adherent: Adherent | None, client: str | None, roles: tuple[str, ...] = (),
                enabled: bool = True, username: str | None = None, **attrs: str | list[str]) -> tuple[str, str]:
    """A teleservice user in the leaf groups of `roles`; returns (id, username)."""
    username = username or f"u{uuid.uuid4().hex[:10]}"
    attributes: dict[str, list[str]] = {k: v if isinstance(v, list) else [v] for k, v in attrs.items()}
    if adherent:
        attributes.setdefault("adherent", [adherent.numero])
    if client:
        attributes.setdefault("teleservice", [client])
    groups = [f"/adherents/{adherent.numero}/{client}/{r}" for r in roles] if adherent else []
    uid = gw.create_user({"username": username, "enabled": enabled, "email": f"{username}@example.ma",
                          "firstName": "Test", "lastName": username.capitalize(), "attributes": attributes,
                          "groups": groups,
                          "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]})
    return uid, username


def adherent_of(gw: Gateway, numero_: str) -> Adherent:
    """An adherent approved by the provisioner (its group tree exists), for create_user."""
    return Adherent(numero_, gw.group_by_path(f"/adherents/{numero_}").id)
