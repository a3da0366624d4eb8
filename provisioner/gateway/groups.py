"""Groups: the tree, its members and memberships, and the roles groups carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from provisioner.errors import Conflict, NotFound
from provisioner.gateway.transport import Transport
from provisioner.gateway.users import User


@dataclass(frozen=True)
class Group:
    """A Keycloak group in our words."""

    id: str
    name: str
    path: str
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sub_group_count: int = 0

    def attr(self, name: str) -> str | None:
        values = self.attributes.get(name) or ()
        return values[0] if values else None

    @classmethod
    def from_rep(cls, rep: dict) -> "Group":
        return cls(id=rep["id"], name=rep["name"], path=rep.get("path", "/" + rep["name"]),
                   attributes={k: tuple(v) for k, v in (rep.get("attributes") or {}).items()},
                   sub_group_count=rep.get("subGroupCount", len(rep.get("subGroups") or ())))


class GroupAdmin(Transport):
    """The Admin API calls on groups and group memberships."""

    # --- the tree -----------------------------------------------------------------------------------
    def group_by_path(self, path: str) -> Group | None:
        rep = self.get(f"/group-by-path/{quote(path.strip('/'), safe='/')}")
        if rep is None and self.confined:
            return self._group_by_search(path)  # Keycloak's cold-cache 404 for confined admins
        return Group.from_rep(rep) if rep else None

    def _group_by_search(self, path: str) -> Group | None:
        """The group at `path` found by an exact-name search. Keycloak 26.7 answers 404 to group-by-path for an
        admin confined by fine-grained permissions until the path's top-level group is in its cache (after a
        restart or an eviction); the search works cold (bench/bench_permissions.py, docs/security.md)."""
        name = path.rstrip("/").rsplit("/", 1)[-1]
        todo = list(self.get("/groups", search=name, exact="true", briefRepresentation="false") or [])
        while todo:
            rep = todo.pop()
            if rep.get("path") == path:
                return Group.from_rep(rep)
            todo.extend(rep.get("subGroups") or [])
        return None

    def children(self, group_id: str) -> list[Group]:
        return [Group.from_rep(g) for g in self.paged(f"/groups/{group_id}/children", briefRepresentation="false")]

    def subtree(self, group: Group) -> list[Group]:
        """The group and all its descendants, parents before children."""
        out, todo = [], [group]
        while todo:
            current = todo.pop(0)
            out.append(current)
            todo.extend(self.children(current.id))
        return out

    def count_groups(self) -> int:
        """How many groups the realm holds, subgroups included."""
        return int((self.get("/groups/count", top="false") or {}).get("count", 0))

    def create_group(self, name: str, parent_id: str | None = None, attributes: dict | None = None) -> str:
        body = {"name": name, "attributes": attributes or {}}
        return self.post(f"/groups/{parent_id}/children" if parent_id else "/groups", body)

    def ensure_group(self, parent: Group | None, name: str, attributes: dict | None = None) -> Group:
        """The group `name` under parent (top level when None), created if missing; re-runnable."""
        path = f"{parent.path if parent else ''}/{name}"
        group = self.group_by_path(path)
        if group is None:
            try:
                self.create_group(name, parent.id if parent else None, attributes)
            except Conflict:  # created meanwhile by a concurrent run
                pass
            group = self.group_by_path(path)
            if group is None:
                raise NotFound(f"group {path} could not be created")
        return group

    def set_group_attributes(self, group: Group, attributes: dict[str, list[str]]) -> None:
        """Merge attributes into the group's (others kept)."""
        rep = self.get(f"/groups/{group.id}") or {}
        rep["attributes"] = {**(rep.get("attributes") or {}), **attributes}
        self.put(f"/groups/{group.id}", rep)

    def delete_group(self, group_id: str) -> None:
        self.delete(f"/groups/{group_id}")

    # --- members and memberships ---------------------------------------------------------------------
    def group_members(self, group_id: str) -> list[User]:
        return [User.from_rep(r) for r in self.paged(f"/groups/{group_id}/members", briefRepresentation="false")]

    def user_groups(self, user_id: str) -> list[Group]:
        return [Group.from_rep(g) for g in self.get(f"/users/{user_id}/groups", briefRepresentation="false") or []]

    def add_to_group(self, user_id: str, group_id: str) -> None:
        self.put(f"/users/{user_id}/groups/{group_id}", {})

    def remove_from_group(self, user_id: str, group_id: str) -> None:
        self.delete(f"/users/{user_id}/groups/{group_id}")

    # --- the roles a group carries -------------------------------------------------------------------
    def group_realm_roles(self, group_id: str) -> list[dict]:
        return self.get(f"/groups/{group_id}/role-mappings/realm") or []

    def group_client_roles(self, group_id: str, client_uuid: str) -> set[str]:
        return {r["name"] for r in self.get(f"/groups/{group_id}/role-mappings/clients/{client_uuid}") or []}

    def map_realm_roles_to_group(self, group_id: str, roles: list[dict]) -> None:
        self.post(f"/groups/{group_id}/role-mappings/realm", roles)

    def unmap_realm_roles_from_group(self, group_id: str, roles: list[dict]) -> None:
        self.delete(f"/groups/{group_id}/role-mappings/realm", roles)

    def map_client_roles_to_group(self, group_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.post(f"/groups/{group_id}/role-mappings/clients/{client_uuid}", roles)
