"""Fine-grained admin permissions (v2): the group policies and Groups scope permissions that confine delegates.

They live in the authorization server of the realm's `admin-permissions` client. Reading them needs view-realm,
writing them manage-realm (Keycloak 26.7): see docs/security.md.
"""

from __future__ import annotations

from typing import Any

from provisioner.errors import Forbidden, NotFound
from provisioner.gateway.transport import Transport


class PermissionAdmin(Transport):
    """The Admin API calls on the realm's admin permissions: policies (who) and permissions (on what)."""

    _authz_base: str | None = None

    def authz_path(self, path: str = "") -> str:
        """``path`` under the admin-permissions authorization server, relative to the realm's Admin API."""
        if self._authz_base is None:
            realm = self.get("") or {}
            if "adminPermissionsEnabled" not in realm:  # the caller only gets the tiny realm representation
                raise Forbidden("reading fine-grained admin permissions needs view-realm, writing them manage-realm")
            client = realm.get("adminPermissionsClient") or {}
            if not client.get("id"):
                raise NotFound(f"fine-grained admin permissions are not enabled in realm {self.realm}")
            self._authz_base = f"/clients/{client['id']}/authz/resource-server"
        return self._authz_base + path

    def authz_find(self, kind: str, name: str) -> dict | None:
        """The policy (kind="policy") or permission (kind="permission") with exactly this name, or None."""
        return self.get(self.authz_path(f"/{kind}/search"), name=name) or None

    def authz_list(self, kind: str, **params: Any) -> list[dict]:
        """Every policy (kind="policy", permissions excluded) or permission (brief representations)."""
        if kind == "policy":
            params.setdefault("permission", "false")
        return self.paged(self.authz_path(f"/{kind}"), **params)

    # A policy's members as Keycloak represents them: groups (exactly these, not their subgroups) or roles (held
    # directly, through a composite or through a group).
    _MEMBERS = {"group": ("groups", lambda i: {"id": i, "extendChildren": False}),
                "role": ("roles", lambda i: {"id": i, "required": False})}

    def create_policy(self, kind: str, name: str, members: list[str], description: str = "") -> str:
        """A POSITIVE ``kind`` ("group" or "role") policy granting ``members`` (ids); its id."""
        key, member = self._MEMBERS[kind]
        body = {"name": name, "description": description, "logic": "POSITIVE", key: [member(i) for i in members]}
        return self.post_json(self.authz_path(f"/policy/{kind}"), body)["id"]

    def update_policy(self, kind: str, policy_id: str, name: str, members: list[str], description: str = "") -> None:
        key, member = self._MEMBERS[kind]
        body = {"id": policy_id, "name": name, "description": description, "type": kind, "logic": "POSITIVE",
                "decisionStrategy": "UNANIMOUS", key: [member(i) for i in members]}
        self.put(self.authz_path(f"/policy/{kind}/{policy_id}"), body)

    def policy_members(self, kind: str, policy_id: str) -> list[str] | None:
        """The sorted member ids of a ``kind`` policy (None when the policy is gone)."""
        rep = self.get(self.authz_path(f"/policy/{kind}/{policy_id}"))
        return None if rep is None else sorted(m["id"] for m in rep.get(self._MEMBERS[kind][0]) or [])

    def create_groups_permission(self, name: str, group_ids: list[str], scopes: list[str], policy_ids: list[str],
                                 description: str = "") -> str:
        """A scope permission over exactly these groups (resourceType Groups); its id."""
        body = {"name": name, "description": description, "resourceType": "Groups", "resources": group_ids,
                "scopes": scopes, "policies": policy_ids}
        return self.post_json(self.authz_path("/permission/scope"), body)["id"]

    def update_groups_permission(self, permission_id: str, name: str, group_ids: list[str], scopes: list[str],
                                 policy_ids: list[str], description: str = "") -> None:
        """Replace the permission whole (Keycloak answers 201 to this PUT)."""
        body = {"id": permission_id, "name": name, "description": description, "type": "scope",
                "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS", "resourceType": "Groups",
                "resources": group_ids, "scopes": scopes, "policies": policy_ids}
        self.put(self.authz_path(f"/permission/scope/{permission_id}"), body)

    def permission_details(self, permission_id: str) -> dict | None:
        """{"resources": sorted group (or user) ids, "scopes": sorted names, "policies": sorted ids}; None if gone."""
        resources = self.get(self.authz_path(f"/policy/{permission_id}/resources"))
        if resources is None:
            return None
        scopes = self.get(self.authz_path(f"/policy/{permission_id}/scopes")) or []
        policies = self.get(self.authz_path(f"/policy/{permission_id}/associatedPolicies")) or []
        return {"resources": sorted(r["name"] for r in resources), "scopes": sorted(s["name"] for s in scopes),
                "policies": sorted(p["id"] for p in policies)}

    def delete_authz(self, policy_or_permission_id: str) -> None:
        """Delete a policy or a permission; already gone is fine."""
        try:
            self.delete(self.authz_path(f"/policy/{policy_or_permission_id}"))
        except NotFound:
            pass
