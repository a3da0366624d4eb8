"""Clients: their settings, roles, protocol mappers, optional client scopes and service accounts."""

from __future__ import annotations

from urllib.parse import quote

from provisioner.errors import NotFound
from provisioner.gateway.transport import Transport


class ClientAdmin(Transport):
    """The Admin API calls on clients (python-keycloak's named calls). ``client_uuid`` is Keycloak's id of a client,
    ``client_id`` our name."""

    # --- clients ------------------------------------------------------------------------------------
    def clients(self) -> list[dict]:
        return self.call(self.kc.get_clients) or []

    def client_by_client_id(self, client_id: str) -> dict | None:
        found = self.get("/clients", clientId=client_id) or []  # raw: python-keycloak names only the id's lookup
        return found[0] if found else None

    def client_uuid(self, client_id: str) -> str:
        uuid = self.call(self.kc.get_client_id, client_id)
        if uuid is None:
            raise NotFound(f"client {client_id} not found in realm {self.realm}")
        return uuid

    def client_rep(self, client_uuid: str) -> dict | None:
        return self.call(self.kc.get_client, client_uuid, none_on_404=True)

    def create_client(self, rep: dict) -> str | None:
        return self.call(self.kc.create_client, rep)

    def update_client(self, client_uuid: str, rep: dict) -> None:
        self.call(self.kc.update_client, client_uuid, rep)

    def delete_client(self, client_uuid: str) -> None:
        self.call(self.kc.delete_client, client_uuid)

    def service_account_user(self, client_uuid: str) -> dict:
        return self.call(self.kc.get_client_service_account_user, client_uuid)

    def regenerate_client_secret(self, client_uuid: str) -> str:
        """A new secret for a confidential client (the old one stops working at once); returns it."""
        return self.call(self.kc.generate_client_secrets, client_uuid)["value"]

    # --- client roles -------------------------------------------------------------------------------
    def client_roles(self, client_uuid: str) -> list[dict]:
        return self.call(self.kc.get_client_roles, client_uuid, brief_representation=False) or []

    def client_role(self, client_uuid: str, role: str) -> dict:
        rep = self.call(self.kc.get_client_role, client_uuid, quote(role), none_on_404=True)
        if rep is None:
            raise NotFound(f"client role {role} not found")
        return rep

    def create_client_role(self, client_uuid: str, rep: dict) -> None:
        self.call(self.kc.create_client_role, client_uuid, rep)

    def update_client_role(self, client_uuid: str, role: str, rep: dict) -> None:
        self.call(self.kc.update_client_role, client_uuid, quote(role), rep)

    def delete_client_role(self, client_uuid: str, role: str) -> None:
        self.call(self.kc.delete_client_role, client_uuid, quote(role))

    # --- protocol mappers ---------------------------------------------------------------------------
    def create_mapper(self, client_uuid: str, rep: dict) -> None:
        self.call(self.kc.add_mapper_to_client, client_uuid, rep)

    def update_mapper(self, client_uuid: str, mapper_id: str, rep: dict) -> None:
        self.call(self.kc.update_client_mapper, client_uuid, mapper_id, rep)

    def delete_mapper(self, client_uuid: str, mapper_id: str) -> None:
        self.call(self.kc.remove_client_mapper, client_uuid, mapper_id)

    # --- client scopes ------------------------------------------------------------------------------
    def client_scopes(self) -> list[dict]:
        """The realm's client scopes, with their protocol mappers."""
        return self.call(self.kc.get_client_scopes) or []

    def delete_client_scope(self, scope_id: str) -> None:
        """Delete a client scope of the realm (Keycloak unlinks it from every client, its own included)."""
        self.call(self.kc.delete_client_scope, scope_id)

    def set_optional_client_scopes(self, client_uuid: str, names: list[str]) -> None:
        """Make the client's optional client scopes exactly these (Keycloak adds the realm's defaults)."""
        want = set(names)
        have = {s["name"]: s["id"] for s in self.call(self.kc.get_client_optional_client_scopes, client_uuid) or []}
        for name in sorted(set(have) - want):
            self.call(self.kc.delete_client_optional_client_scope, client_uuid, have[name])
        if want - set(have):
            scopes = {s["name"]: s["id"] for s in self.client_scopes()}
            for name in sorted(want - set(have)):
                self.call(self.kc.add_client_optional_client_scope, client_uuid, scopes[name], {})
