"""Clients: their settings, roles, protocol mappers, optional client scopes and service accounts."""

from __future__ import annotations

from urllib.parse import quote

from provisioner.errors import NotFound
from provisioner.gateway.transport import Transport


class ClientAdmin(Transport):
    """The Admin API calls on clients. ``client_uuid`` is Keycloak's id of a client, ``client_id`` our name."""

    # --- clients ------------------------------------------------------------------------------------
    def clients(self) -> list[dict]:
        return self.get("/clients") or []

    def client_by_client_id(self, client_id: str) -> dict | None:
        found = self.get("/clients", clientId=client_id) or []
        return found[0] if found else None

    def client_uuid(self, client_id: str) -> str:
        client = self.client_by_client_id(client_id)
        if client is None:
            raise NotFound(f"client {client_id} not found in realm {self.realm}")
        return client["id"]

    def client_rep(self, client_uuid: str) -> dict | None:
        return self.get(f"/clients/{client_uuid}")

    def create_client(self, rep: dict) -> str | None:
        return self.post("/clients", rep)

    def update_client(self, client_uuid: str, rep: dict) -> None:
        self.put(f"/clients/{client_uuid}", rep)

    def delete_client(self, client_uuid: str) -> None:
        self.delete(f"/clients/{client_uuid}")

    def service_account_user(self, client_uuid: str) -> dict:
        return self.get(f"/clients/{client_uuid}/service-account-user")

    def regenerate_client_secret(self, client_uuid: str) -> str:
        """A new secret for a confidential client (the old one stops working at once); returns it."""
        return self.post_json(f"/clients/{client_uuid}/client-secret", None)["value"]

    # --- client roles -------------------------------------------------------------------------------
    def client_roles(self, client_uuid: str) -> list[dict]:
        return self.get(f"/clients/{client_uuid}/roles") or []

    def client_role(self, client_uuid: str, role: str) -> dict:
        rep = self.get(f"/clients/{client_uuid}/roles/{quote(role)}")
        if rep is None:
            raise NotFound(f"client role {role} not found")
        return rep

    def create_client_role(self, client_uuid: str, rep: dict) -> None:
        self.post(f"/clients/{client_uuid}/roles", rep)

    def update_client_role(self, client_uuid: str, role: str, rep: dict) -> None:
        self.put(f"/clients/{client_uuid}/roles/{quote(role)}", rep)

    def delete_client_role(self, client_uuid: str, role: str) -> None:
        self.delete(f"/clients/{client_uuid}/roles/{quote(role)}")

    # --- protocol mappers ---------------------------------------------------------------------------
    def create_mapper(self, client_uuid: str, rep: dict) -> None:
        self.post(f"/clients/{client_uuid}/protocol-mappers/models", rep)

    def update_mapper(self, client_uuid: str, mapper_id: str, rep: dict) -> None:
        self.put(f"/clients/{client_uuid}/protocol-mappers/models/{mapper_id}", rep)

    def delete_mapper(self, client_uuid: str, mapper_id: str) -> None:
        self.delete(f"/clients/{client_uuid}/protocol-mappers/models/{mapper_id}")

    # --- client scopes ------------------------------------------------------------------------------
    def client_scopes(self) -> list[dict]:
        """The realm's client scopes, with their protocol mappers."""
        return self.get("/client-scopes") or []

    def delete_client_scope(self, scope_id: str) -> None:
        """Delete a client scope of the realm (Keycloak unlinks it from every client, its own included)."""
        self.delete(f"/client-scopes/{scope_id}")

    def set_optional_client_scopes(self, client_uuid: str, names: list[str]) -> None:
        """Make the client's optional client scopes exactly these (Keycloak adds the realm's defaults)."""
        want = set(names)
        have = {s["name"]: s["id"] for s in self.get(f"/clients/{client_uuid}/optional-client-scopes") or []}
        for name in sorted(set(have) - want):
            self.delete(f"/clients/{client_uuid}/optional-client-scopes/{have[name]}")
        if want - set(have):
            scopes = {s["name"]: s["id"] for s in self.client_scopes()}
            for name in sorted(want - set(have)):
                self.put(f"/clients/{client_uuid}/optional-client-scopes/{scopes[name]}", None)
