"""Adherents and users laid out as docs/domain-model.md says, created with the master-admin gateway.

Used by the SSO and audit tests to plant exactly the objects they need (including broken ones the
provisioner's actions would refuse to create, such as a login holding roles of two teleservices).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from provisioner.gateway import Gateway

PASSWORD = "Pass2026"
LEAVES = {"teledeclaration": ("fichier-preetabli", "formulaire-saisie"), "compte-adherent": ("utilisateur",),
          "easypaiement": ("ordonnateur", "validateur"), "eliquidation": ("utilisateur",)}


def numero() -> str:
    return str(uuid.uuid4().int % 10**8).rjust(8, "1")


@dataclass
class Adherent:
    numero: str
    group_id: str
    leaves: dict[str, str]  # "client/role" -> group id


def create_adherent(gw: Gateway, n: str | None = None, status: str = "active", confirmations: int = 1,
                    categories: tuple[str, ...] = ("cadres", "employes")) -> Adherent:
    """/adherents/<n> with its leaf groups carrying the client roles."""
    n = n or numero()
    parent = gw.group_by_path("/adherents")
    gid = gw.create_group(n, parent.id, {"raison_sociale": [f"Société {n}"], "status": [status],
                                         "easypaiement_confirmations": [str(confirmations)],
                                         "categories": list(categories)})
    leaves = {}
    for client, roles in LEAVES.items():
        cgid = gw.create_group(client, gid)
        cuuid = gw.client_uuid(client)
        for role in roles:
            lid = gw.create_group(role, cgid)
            gw.map_client_roles_to_group(lid, cuuid, [gw.get(f"/clients/{cuuid}/roles/{role}")])
            leaves[f"{client}/{role}"] = lid
    return Adherent(n, gid, leaves)


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


def create_delegate(gw: Gateway, adherent: Adherent, enabled: bool = True) -> str:
    """The adherent's delegate: username = numéro, member of /delegates/<n>."""
    parent = gw.group_by_path("/delegates")
    existing = gw.group_by_path(f"/delegates/{adherent.numero}")
    gid = existing.id if existing else gw.create_group(adherent.numero, parent.id)
    uid = gw.create_user({"username": adherent.numero, "enabled": enabled, "email": f"d{adherent.numero}@example.ma",
                          "firstName": "Délégué", "lastName": adherent.numero,
                          "attributes": {"adherent": [adherent.numero]},
                          "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]})
    gw.add_to_group(uid, gid)
    return uid


def disable_user(gw: Gateway, adherent: Adherent, user_id: str, login: str) -> None:
    """The delegate disables a user (a user leaves the company)."""
    user = gw.get(f"/users/{user_id}")
    gw.update_user(user_id, {**user, "enabled": False})
    gw.logout_user(user_id)  # disabling alone does not end sessions nor send back-channel logouts


def suspend_adherent(gw: Gateway, adherent: Adherent) -> None:
    """CIMR suspends the adherent: status=suspended, its enabled users disabled (tagged) and logged out."""
    group = gw.get(f"/groups/{adherent.group_id}")
    gw.update_group(adherent.group_id, {**group, "attributes": {**group["attributes"], "status": ["suspended"]}})
    for user in gw.users_by_attribute("adherent", adherent.numero):
        if user.enabled:
            rep = gw.get(f"/users/{user.id}")
            rep["attributes"] = {**(rep.get("attributes") or {}), "suspended_by_cimr": ["true"]}
            gw.update_user(user.id, {**rep, "enabled": False})
            gw.logout_user(user.id)


def replace_delegate(gw: Gateway, adherent: Adherent, new_password: str) -> None:
    """Réabonnement: the delegate account gets the new person; the previous password and sessions stop working."""
    user = gw.user_by_username(adherent.numero)
    rep = gw.get(f"/users/{user.id}")
    gw.update_user(user.id, {**rep, "firstName": "Nouveau", "email": f"new{adherent.numero}@example.ma"})
    gw.set_password(user.id, new_password, temporary=False)
    gw.logout_user(user.id)
