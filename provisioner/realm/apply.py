"""Carry a plan out through the gateway, in its safe order: one applier per kind of object."""

from __future__ import annotations

from typing import Callable

from provisioner.errors import RealmSpecError
from provisioner.gateway import Gateway
from provisioner.realm.plan import Change, Plan
from provisioner.realm.spec import RealmSpec


def apply_plan(gw: Gateway, spec: RealmSpec, plan: Plan, progress: Callable[[Change], None] | None = None) -> None:
    """Carry out the plan in its safe order (creates/updates by kind, then deletions in reverse)."""
    for change in plan.changes:
        if progress:
            progress(change)
        _APPLY[change.kind](gw, spec, change)


# --- appliers, one per kind ------------------------------------------------------------------------

def _realm(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    if ch.action == "create":
        gw.create_realm(ch.desired)
    else:
        gw.update_realm(ch.desired)


def _realm_role(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    if ch.action == "delete":
        gw.delete_realm_role(ch.key)
        return
    want = (ch.desired or {}).get("composites", [])
    have = (ch.live or {}).get("composites", [])
    plain = {k: v for k, v in ch.desired.items() if k != "composites"}
    if ch.action == "create":
        gw.create_realm_role(plain)
    else:
        live = {k: v for k, v in ch.live.items() if k != "composites"}
        gw.update_realm_role(ch.key, {**live, **plain})
    if set(want) - set(have):
        gw.add_role_composites(ch.key, [_role_rep(gw, k) for k in sorted(set(want) - set(have))])
    if set(have) - set(want):
        gw.remove_role_composites(ch.key, [_role_rep(gw, k) for k in sorted(set(have) - set(want))])


def _role_rep(gw: Gateway, key: str) -> dict:
    """The role named "client/role" (a client role) or "role" (a realm role)."""
    if "/" in key:
        client_id, name = key.split("/", 1)
        return gw.client_role(gw.client_uuid(client_id), name)
    return gw.realm_role(key)


def _profile_attribute(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    profile = gw.user_profile()
    attrs = [a for a in profile["attributes"] if a["name"] != ch.key]
    if ch.action != "delete":
        attrs.append(ch.desired)
    profile["attributes"] = attrs
    gw.set_user_profile(profile)


def _flow(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    if ch.action == "create":
        build_flow(gw, ch.desired, ch.key)
        return
    if ch.action == "delete":
        gw.delete_flow(ch.live["id"])
        return
    # Update without a window where the client is unprotected: build the new flow beside the old,
    # move the clients over, delete the old one, rename the new one.
    new_alias = ch.key + ".new"
    stale = next((f for f in gw.flows() if f["alias"] == new_alias), None)
    if stale:
        gw.delete_flow(stale["id"])
    new_id = build_flow(gw, ch.desired, new_alias)
    _rebind_clients(gw, ch.live["id"], new_id)
    if (gw.get_realm() or {}).get("browserFlow") == ch.key:  # the realm's own binding moves too (kept by id)
        gw.update_realm({"browserFlow": new_alias})
    gw.delete_flow(ch.live["id"])
    gw.rename_flow(new_id, ch.key)


def build_flow(gw: Gateway, desired: dict, alias: str) -> str:
    """Create a top-level flow with its sub-flows, requirements and configs; returns its id."""
    flow_id = gw.create_flow(alias, desired["description"])
    parents = [alias]
    for step in desired["steps"]:
        parent = parents[step["level"]]
        del parents[step["level"] + 1:]
        if "flow" in step:
            sub = f"{alias} {step['flow']}"
            gw.add_subflow(parent, sub)
            parents.append(sub)
        else:
            gw.add_flow_execution(parent, step["provider"])
    executions = gw.flow_executions(alias)
    for i, (ex, step) in enumerate(zip(executions, desired["steps"])):
        if ex["requirement"] != step["requirement"]:
            gw.update_flow_execution(alias, {**ex, "requirement": step["requirement"]})
        if step.get("config"):
            gw.add_execution_config(ex["id"], f"{alias}-{i}", step["config"])
    return flow_id


def _rebind_clients(gw: Gateway, old_id: str, new_id: str) -> None:
    for client in gw.clients():
        overrides = client.get("authenticationFlowBindingOverrides") or {}
        if old_id in overrides.values():
            client["authenticationFlowBindingOverrides"] = {k: new_id if v == old_id else v
                                                            for k, v in overrides.items()}
            gw.update_client(client["id"], client)


def _flow_binding(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    """The realm's own browser flow (by alias): never deleted, Keycloak's built-in one is bound again by hand."""
    if ch.action != "delete":
        gw.update_realm(ch.desired)


def _flow_ids(gw: Gateway) -> dict[str, str]:
    return {f["alias"]: f["id"] for f in gw.flows()}


def _client(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    if ch.action == "delete":
        gw.delete_client(ch.live["id"])
        return
    rep = dict(ch.desired)
    if "authenticationFlowBindingOverrides" in rep:
        ids = _flow_ids(gw)
        rep["authenticationFlowBindingOverrides"] = {k: ids[v] for k, v in rep["authenticationFlowBindingOverrides"].items()}
    if ch.action == "create":
        gw.create_client({k: v for k, v in rep.items() if k != "optionalClientScopes"})
        _sync_optional_scopes(gw, gw.client_uuid(ch.key), rep)
    else:
        _update_client(gw, ch.live["id"], rep)


def _update_client(gw: Gateway, uuid: str, rep: dict) -> None:
    """PUT the declared fields over the live client (attributes merged), then its optional client scopes."""
    live = gw.client_rep(uuid)
    plain = {k: v for k, v in rep.items() if k != "optionalClientScopes"}
    merged = {**live, **plain, "attributes": {**(live.get("attributes") or {}), **(rep.get("attributes") or {})}}
    gw.update_client(uuid, merged)
    _sync_optional_scopes(gw, uuid, rep)


def _sync_optional_scopes(gw: Gateway, uuid: str, rep: dict) -> None:
    """Make the client's optional client scopes exactly the declared ones (Keycloak adds realm defaults)."""
    if "optionalClientScopes" in rep:
        gw.set_optional_client_scopes(uuid, rep["optionalClientScopes"])


def _builtin_client(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    """Never created nor deleted: Keycloak makes them with the realm (a "create" is planned for a new realm)."""
    live = ch.live or gw.client_by_client_id(ch.key)
    if live is None:
        raise RealmSpecError("clients.yaml", f"builtin_clients.{ch.key}", "Keycloak has no such client in this realm")
    _update_client(gw, live["id"], ch.desired)


def _client_role(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    client_id, role = ch.key.split("/", 1)
    uuid = gw.client_uuid(client_id)
    if ch.action == "create":
        gw.create_client_role(uuid, ch.desired)
    elif ch.action == "update":
        gw.update_client_role(uuid, role, {**ch.live, **ch.desired})
    else:
        gw.delete_client_role(uuid, role)


def _mapper(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    client_id = ch.key.split("/", 1)[0]
    uuid = gw.client_uuid(client_id)
    if ch.action == "create":
        gw.create_mapper(uuid, ch.desired)
    elif ch.action == "update":
        gw.update_mapper(uuid, ch.live["id"],
                         {**ch.desired, "id": ch.live["id"], "config": {**ch.live["config"], **ch.desired["config"]}})
    else:
        gw.delete_mapper(uuid, ch.live["id"])


def _service_account_roles(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    sa = gw.service_account_user(gw.client_uuid(ch.key))
    live = ch.live or {}
    for owner in set(ch.desired or {}) | set(live):
        owner_uuid = gw.client_uuid(owner)
        want, have = set((ch.desired or {}).get(owner, [])), set(live.get(owner, []))
        roles = {r["name"]: r for r in gw.client_roles(owner_uuid)}
        if want - have:
            gw.map_client_roles_to_user(sa["id"], owner_uuid, [roles[n] for n in sorted(want - have)])
        if have - want:
            gw.unmap_client_roles_from_user(sa["id"], owner_uuid, [roles[n] for n in sorted(have - want)])


def _group(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    if ch.action == "delete":
        gw.delete_group(ch.live["id"])
        return
    group_id = gw.create_group(ch.desired["name"]) if ch.action == "create" else ch.live["id"]
    have = set((ch.live or {}).get("realmRoles", []))
    want = set(ch.desired["realmRoles"])
    if want - have:
        gw.map_realm_roles_to_group(group_id, [gw.realm_role(n) for n in sorted(want - have)])
    if have - want:
        gw.unmap_realm_roles_from_group(group_id, [gw.realm_role(n) for n in sorted(have - want)])


def _client_policies(read: Callable[[Gateway], list[dict]], write: Callable[[Gateway, list[dict]], None]) -> Callable:
    """Client profiles and policies are written all at once: ours replaced, added or removed, the others kept."""
    def apply(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
        kept = [rep for rep in read(gw) if rep.get("name") != ch.key]
        write(gw, kept if ch.action == "delete" else [*kept, ch.desired])
    return apply


def _client_scope(gw: Gateway, spec: RealmSpec, ch: Change) -> None:
    """A client scope the realm must not have (ABSENT_CLIENT_SCOPES): deleted (in a new realm too, where the plan
    could not see it: Keycloak makes it with the realm)."""
    found = next((sc for sc in gw.client_scopes() if sc["name"] == ch.key), None)
    if found and not ch.desired.get("present"):
        gw.delete_client_scope(found["id"])


_APPLY: dict[str, Callable[[Gateway, RealmSpec, Change], None]] = {
    "realm": _realm, "realm-role": _realm_role, "user-profile-attribute": _profile_attribute, "flow": _flow,
    "flow-binding": _flow_binding, "client": _client, "builtin-client": _builtin_client, "client-role": _client_role,
    "mapper": _mapper, "service-account-roles": _service_account_roles, "group": _group,
    "client-profile": _client_policies(Gateway.client_profiles, Gateway.set_client_profiles),
    "client-policy": _client_policies(Gateway.client_policies, Gateway.set_client_policies),
    "client-scope": _client_scope,
}
