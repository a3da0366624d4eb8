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
    """The Admin API calls on groups and group memberships (python-keycloak's named calls)."""

    # --- the tree -----------------------------------------------------------------------------------
    def group_by_path(self, path: str) -> Group | None:
        rep = self.call(self.kc.get_group_by_path, quote(path.strip("/"), safe="/"), none_on_404=True)
        if rep is None and self.confined:
            return self._group_by_search(path)  # Keycloak's cold-cache 404 for confined admins
        return Group.from_rep(rep) if rep else None

    def _group_by_search(self, path: str) -> Group | None:
        """The group at `path` found by an exact-name search. Keycloak 26.7 answers 404 to group-by-path for an
        admin confined by fine-grained permissions until the path's top-level group is in its cache (after a
        restart or an eviction); the search works cold (bench/bench_permissions.py, docs/security.md)."""
        name = path.rstrip("/").rsplit("/", 1)[-1]
        # Raw: python-keycloak's get_groups replaces each match's subGroups by a children listing of its own (a
        # request per group, which a confined delegate may not make), where the search answers the branch.
        todo = list(self.get("/groups", search=name, exact="true", briefRepresentation="false") or [])
        while todo:
            rep = todo.pop()
            if rep.get("path") == path:
                return Group.from_rep(rep)
            todo.extend(rep.get("subGroups") or [])
        return None

    def children(self, group_id: str) -> list[Group]:
        read = lambda first, size: self.call(  # noqa: E731
            self.kc.get_group_children, group_id, {"briefRepresentation": "false", "first": first, "max": size})
        return [Group.from_rep(g) for g in self.pages(read)]

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
        return int((self.call(self.kc.groups_count, {"top": "false"}) or {}).get("count", 0))

    def create_group(self, name: str, parent_id: str | None = None, attributes: dict | None = None) -> str:
        return self.call(self.kc.create_group, {"name": name, "attributes": attributes or {}}, parent_id)

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
        rep = self.get(f"/groups/{group.id}") or {}  # raw: get_group also lists the children, unused here
        rep["attributes"] = {**(rep.get("attributes") or {}), **attributes}
        self.call(self.kc.update_group, group.id, rep)

    def delete_group(self, group_id: str) -> None:
        self.call(self.kc.delete_group, group_id)

    # --- members and memberships ---------------------------------------------------------------------
    def group_members(self, group_id: str) -> list[User]:
        read = lambda first, size: self.call(  # noqa: E731
            self.kc.get_group_members, group_id, {"briefRepresentation": "false", "first": first, "max": size})
        return [User.from_rep(r) for r in self.pages(read)]

    def user_groups(self, user_id: str) -> list[Group]:
        return [Group.from_rep(g) for g in self.call(self.kc.get_user_groups, user_id,
                                                     brief_representation=False) or []]

    def add_to_group(self, user_id: str, group_id: str) -> None:
        self.call(self.kc.group_user_add, user_id, group_id)

    def remove_from_group(self, user_id: str, group_id: str) -> None:
        self.call(self.kc.group_user_remove, user_id, group_id)

    # --- the roles a group carries -------------------------------------------------------------------
    def group_realm_roles(self, group_id: str) -> list[dict]:
        return self.call(self.kc.get_group_realm_roles, group_id, brief_representation=False) or []

    def group_client_roles(self, group_id: str, client_uuid: str) -> set[str]:
        return {r["name"] for r in self.call(self.kc.get_group_client_roles, group_id, client_uuid) or []}

    def map_realm_roles_to_group(self, group_id: str, roles: list[dict]) -> None:
        self.call(self.kc.assign_group_realm_roles, group_id, roles)

    def unmap_realm_roles_from_group(self, group_id: str, roles: list[dict]) -> None:
        self.call(self.kc.delete_group_realm_roles, group_id, roles)

    def map_client_roles_to_group(self, group_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.call(self.kc.assign_group_client_roles, group_id, client_uuid, roles)
