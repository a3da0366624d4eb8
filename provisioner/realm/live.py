"""The live realm read into the plan's shape: ``{(kind, key): object}`` for the kinds realm/ declares, and the keys
this project owns (``realm.plan`` deletes only those). Reads only, through the gateway; independent reads at once."""

from __future__ import annotations

from functools import partial
from typing import Any

from provisioner.gateway import Gateway
from provisioner.realm.desired import ABSENT_CLIENT_SCOPES, BUILTIN_CLIENTS, CLIENT_POLICY_PREFIX, FLOW_PREFIX
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
