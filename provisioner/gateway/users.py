"""Users: their representation, credentials, sessions, lockout, realm roles and direct client-role mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from provisioner.errors import ProvisionerError
from provisioner.gateway.transport import Transport


@dataclass(frozen=True)
class User:
    """A Keycloak user in our words."""

    id: str
    username: str
    enabled: bool
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created_ms: int | None = None

    def attr(self, name: str) -> str | None:
        values = self.attributes.get(name) or ()
        return values[0] if values else None

    @classmethod
    def from_rep(cls, rep: dict) -> "User":
        return cls(id=rep["id"], username=rep["username"], enabled=bool(rep.get("enabled")),
                   email=rep.get("email"), first_name=rep.get("firstName"), last_name=rep.get("lastName"),
                   attributes={k: tuple(v) for k, v in (rep.get("attributes") or {}).items()},
                   created_ms=rep.get("createdTimestamp"))


class UserAdmin(Transport):
    """The Admin API calls on users."""

    def create_user(self, rep: dict) -> str:
        """Create a user (with groups, attributes and credentials in the same call); returns its id."""
        return self.post("/users", rep)

    async def create_users_concurrently(self, reps: list[dict], concurrency: int = 8,
                                        on_done: Callable[[int, str | ProvisionerError], None] | None = None
                                        ) -> list[str | ProvisionerError]:
        """Create many users with bounded concurrency; each result is the new id or the translated error."""
        return await self.post_each("/users", reps, concurrency, on_done)

    def user(self, user_id: str) -> User | None:
        rep = self.user_rep(user_id)
        return User.from_rep(rep) if rep else None

    def user_rep(self, user_id: str) -> dict | None:
        """The raw representation (to send back whole on update: a partial PUT may drop attributes)."""
        return self.get(f"/users/{quote(user_id)}")

    def user_by_username(self, username: str) -> User | None:
        if not username:  # Keycloak treats an empty filter as "no filter"
            return None
        reps = self.get("/users", username=username, exact="true") or []
        reps = [r for r in reps if r["username"] == username.lower()]
        return User.from_rep(reps[0]) if reps else None

    def users_by_attribute(self, name: str, value: str) -> list[User]:
        return [User.from_rep(r) for r in self.paged("/users", q=f"{name}:{value}", briefRepresentation="false")]

    def search_users(self, search: str) -> list[User]:
        return [User.from_rep(r) for r in self.paged("/users", search=search, briefRepresentation="false")]

    def count_users(self, **params: Any) -> int:
        return int(self.get("/users/count", **params) or 0)

    def update_user(self, user_id: str, rep: dict) -> None:
        self.put(f"/users/{user_id}", rep)

    def delete_user(self, user_id: str) -> None:
        self.delete(f"/users/{user_id}")

    def set_password(self, user_id: str, password: str, temporary: bool) -> None:
        self.put(f"/users/{user_id}/reset-password", {"type": "password", "value": password, "temporary": temporary})

    def logout_user(self, user_id: str) -> None:
        self.post(f"/users/{user_id}/logout", {})

    def user_sessions(self, user_id: str) -> list[dict]:
        return self.get(f"/users/{user_id}/sessions") or []

    def credentials(self, user_id: str) -> list[dict]:
        return self.get(f"/users/{user_id}/credentials") or []

    def delete_credential(self, user_id: str, credential_id: str) -> None:
        self.delete(f"/users/{user_id}/credentials/{credential_id}")

    def brute_force_status(self, user_id: str) -> dict:
        return self.get(f"/attack-detection/brute-force/users/{user_id}") or {}

    def clear_brute_force(self, user_id: str) -> None:
        self.delete(f"/attack-detection/brute-force/users/{user_id}")

    def effective_realm_roles(self, user_id: str) -> set[str]:
        """Names of the user's realm roles, through groups and composites."""
        return {r["name"] for r in self.get(f"/users/{user_id}/role-mappings/realm/composite") or []}

    def user_role_mappings(self, user_id: str) -> dict:
        """The user's direct role mappings: {"realmMappings": [...], "clientMappings": {client_id: {...}}}."""
        return self.get(f"/users/{user_id}/role-mappings") or {}

    def map_client_roles_to_user(self, user_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.post(f"/users/{user_id}/role-mappings/clients/{client_uuid}", roles)

    def unmap_client_roles_from_user(self, user_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.delete(f"/users/{user_id}/role-mappings/clients/{client_uuid}", roles)
