"""Users: their representation, credentials, sessions, lockout, realm roles and direct client-role mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from provisioner.errors import ProvisionerError
from provisioner.gateway.transport import PAGE, Transport


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
    """The Admin API calls on users (python-keycloak's named calls)."""

    def create_user(self, rep: dict) -> str:
        """Create a user (with groups, attributes and credentials in the same call); returns its id."""
        return self.call(self.kc.create_user, rep)

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
        return self.call(self.kc.get_user, quote(user_id), none_on_404=True)

    def user_by_username(self, username: str) -> User | None:
        if not username:  # Keycloak treats an empty filter as "no filter"
            return None
        reps = self.call(self.kc.get_users, {"username": username, "exact": "true", "first": 0, "max": PAGE}) or []
        reps = [r for r in reps if r["username"] == username.lower()]
        return User.from_rep(reps[0]) if reps else None

    def users_by_attribute(self, name: str, value: str) -> list[User]:
        return self._users({"q": f"{name}:{value}", "briefRepresentation": "false"})

    def search_users(self, search: str) -> list[User]:
        return self._users({"search": search, "briefRepresentation": "false"})

    def _users(self, query: dict) -> list[User]:
        read = lambda first, size: self.call(self.kc.get_users, {**query, "first": first, "max": size})  # noqa: E731
        return [User.from_rep(r) for r in self.pages(read)]

    def count_users(self, **params: Any) -> int:
        return int(self.call(self.kc.users_count, params) or 0)

    def update_user(self, user_id: str, rep: dict) -> None:
        self.call(self.kc.update_user, user_id, rep)

    def delete_user(self, user_id: str) -> None:
        self.call(self.kc.delete_user, user_id)

    def set_password(self, user_id: str, password: str, temporary: bool) -> None:
        self.call(self.kc.set_user_password, user_id, password, temporary)

    def logout_user(self, user_id: str) -> None:
        self.call(self.kc.user_logout, user_id)

    def user_sessions(self, user_id: str) -> list[dict]:
        return self.call(self.kc.get_sessions, user_id) or []

    def credentials(self, user_id: str) -> list[dict]:
        return self.call(self.kc.get_credentials, user_id) or []

    def delete_credential(self, user_id: str, credential_id: str) -> None:
        self.call(self.kc.delete_credential, user_id, credential_id)

    def brute_force_status(self, user_id: str) -> dict:
        return self.call(self.kc.get_bruteforce_detection_status, user_id, none_on_404=True) or {}

    def clear_brute_force(self, user_id: str) -> None:
        self.call(self.kc.clear_bruteforce_attempts_for_user, user_id)

    def effective_realm_roles(self, user_id: str) -> set[str]:
        """Names of the user's realm roles, through groups and composites."""
        return {r["name"] for r in self.call(self.kc.get_composite_realm_roles_of_user, user_id) or []}

    def user_role_mappings(self, user_id: str) -> dict:
        """The user's direct role mappings: {"realmMappings": [...], "clientMappings": {client_id: {...}}}."""
        return self.call(self.kc.get_all_roles_of_user, user_id) or {}

    def map_client_roles_to_user(self, user_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.call(self.kc.assign_client_role, user_id, client_uuid, roles)

    def unmap_client_roles_from_user(self, user_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.call(self.kc.delete_client_roles_of_user, user_id, client_uuid, roles)
