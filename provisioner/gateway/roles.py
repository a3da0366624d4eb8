"""Roles: realm roles, composites, and who carries a role directly (groups, users)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from provisioner.gateway.transport import Transport


@dataclass(frozen=True)
class Role:
    """A role by name: a client's (``client_uuid``, Keycloak's id of the client) or the realm's (None)."""

    name: str
    client_uuid: str | None = None


def _path(role: Role) -> str:
    if role.client_uuid:
        return f"/clients/{role.client_uuid}/roles/{quote(role.name)}"
    return f"/roles/{quote(role.name)}"


class RoleAdmin(Transport):
    """The Admin API calls on roles (client roles themselves: ClientAdmin), python-keycloak's named calls."""

    # --- realm roles --------------------------------------------------------------------------------
    def realm_roles(self) -> list[dict]:
        return self.call(self.kc.get_realm_roles, brief_representation=False) or []

    def realm_role(self, name: str) -> dict | None:
        return self.call(self.kc.get_realm_role, quote(name), none_on_404=True)

    def create_realm_role(self, rep: dict) -> None:
        self.call(self.kc.create_realm_role, rep)

    def update_realm_role(self, name: str, rep: dict) -> None:
        self.call(self.kc.update_realm_role, quote(name), rep)

    def delete_realm_role(self, name: str) -> None:
        self.call(self.kc.delete_realm_role, quote(name))

    # --- composites ---------------------------------------------------------------------------------
    def realm_role_composites(self, name: str) -> list[dict]:
        """The realm role's direct composites (realm and client roles)."""
        return self.call(self.kc.get_composite_realm_roles_of_role, quote(name), none_on_404=True) or []

    def role_composites(self, role_id: str) -> list[dict]:
        """The direct composites of the role with this id (a realm or a client role)."""
        return self.call(self.kc.get_role_composites_by_id, role_id, none_on_404=True) or []

    def add_role_composites(self, name: str, roles: list[dict]) -> None:
        self.call(self.kc.add_composite_realm_roles_to_role, quote(name), roles)

    def remove_role_composites(self, name: str, roles: list[dict]) -> None:
        self.call(self.kc.remove_composite_realm_roles_to_role, quote(name), roles)

    # --- who carries each role directly (the audit: one paged listing per role, several at once) ----------
    def users_with_roles(self, roles: list[Role], workers: int = 4) -> list[list[str]]:
        """For each role, the ids of the users it is mapped to directly (not through groups)."""
        pages = self.get_pages([(f"{_path(r)}/users", {"briefRepresentation": "true"}) for r in roles], workers=workers)
        return [[u["id"] for u in users] for users in pages]
