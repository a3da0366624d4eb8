"""Read the live realm into the plan's shape, and apply a plan through the gateway."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from provisioner.errors import RealmSpecError
from provisioner.gateway import Gateway
from provisioner.realm.desired import (ABSENT_CLIENT_SCOPES, BUILTIN_CLIENTS, CLIENT_POLICY_PREFIX, FLOW_PREFIX,
                                       desired_state)
from provisioner.realm.plan import Change, Plan, compute_plan
from provisioner.realm.spec import RealmSpec

Key = tuple[str, str]


def _builtin_realm_roles(realm: str) -> set[str]:
    return {f"default-roles-{realm}", "offline_access", "uma_authorization"}


def read_live(gw: Gateway, spec: RealmSpec) -> tuple[dict[Key, Any], set[Key]]:
    """The live objects of the kinds realm/ declares, and the subset this project owns."""
    realm = gw.get_realm()
    if realm is None:
        return {}, set()
    live: dict[Key, Any] = {("realm", spec.name): realm}
    if realm.get("browserFlow"):
        live[("flow-binding", "browser")] = {"browserFlow": realm["browserFlow"]}  # compared, never owned
    owned: set[Key] = set()
    all_clients = gw.clients()
    client_ids = {c["id"]: c["clientId"] for c in all_clients}
    for role in gw.realm_roles():
        if role["name"] not in _builtin_realm_roles(spec.name):
            live[("realm-role", role["name"])] = {**role, "composites": _live_composites(gw, role, client_ids)}
            owned.add(("realm-role", role["name"]))
    profile = gw.user_profile()
    for attr in profile.get("attributes", []):
        live[("user-profile-attribute", attr["name"])] = attr

    flows = {f["id"]: f for f in gw.flows()}
    ours = [f for f in flows.values() if f["alias"].startswith(FLOW_PREFIX)]
    for flow, read in zip(ours, gw.at_once(*(partial(read_flow, gw, f) for f in ours))):  # independent reads
        live[("flow", flow["alias"])] = read
        owned.add(("flow", flow["alias"]))

    declared = {c.client_id for c in spec.clients}
    builtin = {b.client_id for b in spec.builtin_clients}
    # Each declared client's roles and service account's roles: independent reads, made at once.
    mine = [c for c in all_clients if c["clientId"] in declared and c["clientId"] not in BUILTIN_CLIENTS]
    roles_of = dict(zip((c["id"] for c in mine), gw.at_once(*(partial(gw.client_roles, c["id"]) for c in mine))))
    with_sa = [c for c in mine if c.get("serviceAccountsEnabled")]
    sa_roles = dict(zip((c["id"] for c in with_sa),
                        gw.at_once(*(partial(_live_service_account_roles, gw, c["id"]) for c in with_sa))))
    for client in all_clients:
        cid = client["clientId"]
        if cid in builtin:
            live[("builtin-client", cid)] = client  # compared, never owned: Keycloak makes and keeps them
        if cid in BUILTIN_CLIENTS:
            continue
        rep = dict(client)
        overrides = rep.get("authenticationFlowBindingOverrides") or {}
        rep["authenticationFlowBindingOverrides"] = {
            k: flows[v]["alias"] if v in flows else v for k, v in overrides.items()}
        live[("client", cid)] = rep
        owned.add(("client", cid))
        if cid not in declared:
            continue
        for role in roles_of[client["id"]]:
            live[("client-role", f"{cid}/{role['name']}")] = role
            owned.add(("client-role", f"{cid}/{role['name']}"))
        for mapper in client.get("protocolMappers") or []:
            live[("mapper", f"{cid}/{mapper['name']}")] = mapper
            owned.add(("mapper", f"{cid}/{mapper['name']}"))
        if client.get("serviceAccountsEnabled"):
            live[("service-account-roles", cid)] = sa_roles[client["id"]]
    scopes = {sc["name"]: sc for sc in gw.client_scopes()}
    for name in ABSENT_CLIENT_SCOPES:  # compared, never owned: present or not
        live[("client-scope", name)] = {"present": name in scopes, "id": (scopes.get(name) or {}).get("id")}
    for kind, reps in (("client-profile", gw.client_profiles()), ("client-policy", gw.client_policies())):
        for rep in reps:
            if rep.get("name", "").startswith(CLIENT_POLICY_PREFIX):
                live[(kind, rep["name"])] = rep
                owned.add((kind, rep["name"]))
    for group, read in zip(spec.groups, gw.at_once(*(partial(_live_group, gw, g.name) for g in spec.groups))):
        if read:
            live[("group", "/" + group.name)] = read
    return live, owned


def _live_group(gw: Gateway, name: str) -> dict | None:
    found = gw.group_by_path("/" + name)
    if found is None:
        return None
    return {"name": found.name, "id": found.id, "realmRoles": sorted(r["name"] for r in gw.group_realm_roles(found.id))}


def _live_composites(gw: Gateway, role: dict, client_ids: dict[str, str]) -> list[str]:
    """The realm role's direct composites in ``realm.desired.composite_keys`` form."""
    if not role.get("composite"):
        return []
    found = gw.role_composites(role["id"])
    return sorted(f"{client_ids.get(r['containerId'], r['containerId'])}/{r['name']}" if r.get("clientRole")
                  else r["name"] for r in found)


def _live_service_account_roles(gw: Gateway, client_uuid: str) -> dict[str, list[str]]:
    sa = gw.service_account_user(client_uuid)
    mappings = gw.user_role_mappings(sa["id"])
    return {owner: sorted(r["name"] for r in m.get("mappings", []))
            for owner, m in (mappings.get("clientMappings") or {}).items()}


def read_flow(gw: Gateway, flow: dict) -> dict:
    """A live flow normalised to the steps of ``realm.desired.browser_flow`` (its steps' configs read at once)."""
    executions = gw.flow_executions(flow["alias"])
    configured = [ex for ex in executions if ex.get("authenticationConfig")]
    configs = dict(zip((ex["id"] for ex in configured), gw.at_once(
        *(partial(gw.authenticator_config, ex["authenticationConfig"]) for ex in configured))))
    steps = []
    for ex in executions:
        step: dict[str, Any] = {"level": ex["level"]}
        if ex.get("authenticationFlow"):
            step["flow"] = ex["displayName"].rsplit(" ", 1)[-1]
        else:
            step["provider"] = ex.get("providerId")
        step["requirement"] = ex["requirement"]
        if ex.get("authenticationConfig"):
            step["config"] = (configs[ex["id"]] or {}).get("config", {})
        steps.append(step)
    return {"alias": flow["alias"], "description": flow.get("description"), "steps": steps, "id": flow["id"]}


def plan_realm(gw: Gateway, spec: RealmSpec) -> Plan:
    """Read the live realm and compare it with realm/ (no change made)."""
    live, owned = read_live(gw, spec)
    return compute_plan(desired_state(spec), live, owned)


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
