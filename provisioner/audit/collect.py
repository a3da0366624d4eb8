"""Read what the audit needs, in bulk, with the read-only `auditor` account and from our database.

Never one request per user (nor per group): the group tree, the users with their attributes and group
memberships, last logins and admin events through our Keycloak extension (keycloak-extension/, pages of
1,000+); the groups and users holding each role through the Admin API; several pages at once. See
docs/audit.md for the reads, provisioner/audit/rules.py for the rules.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial

from sqlalchemy import or_, select

from provisioner.audit.advisories import (AdminPermission, ClientPolicy, GroupPolicy, SecurityFacts,
                                          load_register)
from provisioner.audit.data import (Account, AdherentInfo, AdminEvent, AuditData, ClientConfig, Mapper, RealmConfig,
                                    ReviewProgress, ServiceAccounts, service_account_username)
from provisioner.audit.report import CREATION_ACTIONS
from provisioner.easypaiement import SINCE as INCOMPLETE_SINCE, parse_since
from provisioner.db import Database, audit_events, secret_questions
from provisioner.errors import Forbidden, KeycloakRejected, ProvisionerError
from provisioner.gateway import Gateway, Role
from provisioner.permissions import audit_problems, authz_listings, is_ours
from provisioner.realm.spec import RealmSpec
from provisioner.realm.schema import realm_spec
from provisioner.tenancy import DELEGATE
from provisioner.tree import TERMINATED_AT
from provisioner.trail import TrailEntry
from provisioner.tree import ACTIVE, ADHERENTS, TERMINATED

def _paths(groups: dict[str, dict]) -> dict[str, str]:
    """Each group's path ("/adherents/<n>/..."), from the names and parents of the whole tree."""
    paths: dict[str, str] = {}

    def path(gid: str) -> str:
        if gid not in paths:
            g = groups[gid]
            parent = g.get("parentId")
            paths[gid] = (path(parent) if parent in groups else "") + "/" + g["name"]
        return paths[gid]

    for gid in groups:
        path(gid)
    return paths


def _ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, timezone.utc) if value else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def collect(gw: Gateway, db: Database | None, spec: RealmSpec, activity_days: int = 30, workers: int = 4,
            with_drift: bool = True, timings: dict[str, float] | None = None) -> AuditData:
    """Everything build_report needs; Forbidden if the account may not read users/groups/events.
    ``timings`` (optional) receives the seconds spent per phase."""
    import time

    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        if timings is not None:
            timings[name] = round(time.perf_counter() - clock[0], 2)
        clock[0] = time.perf_counter()

    now = datetime.now(timezone.utc)
    gw.bulk_reads = 0
    # Reads that need nothing read here go on beside the rest: the drift (what `plan` reads: about sixty small
    # reads), and, once the roles are known, their direct holders, the last logins and the admin events.
    beside = ThreadPoolExecutor(max_workers=3)
    drift_read = beside.submit(_drift, gw, spec) if with_drift else None
    realm, clients = gw.at_once(gw.get_realm, gw.clients)
    client_uuid = {c["clientId"]: c["id"] for c in clients}
    teleservices = tuple(c.client_id for c in spec.teleservices)

    # Roles whose holders matter: teleservice roles, our realm roles, realm administration roles.
    roles = {f"{c.client_id}:{r.name}": Role(r.name, client_uuid[c.client_id])
             for c in spec.teleservices if c.client_id in client_uuid for r in c.roles}
    roles |= {f"realm:{r.name}": Role(r.name) for r in spec.realm_roles}
    # Each client's roles (realm-management's all matter) and the realm's, read once: the group listing names the
    # roles mapped to each group by id, role_key turns an id into our key.
    rm = client_uuid.get("realm-management")
    holders = [c for c in (rm, *(client_uuid.get(t) for t in teleservices)) if c]
    realm_listed, *client_listed = gw.at_once(gw.realm_roles, *(partial(gw.client_roles, c) for c in holders))
    listed = dict(zip(holders, client_listed))
    if rm:
        roles |= {f"realm-management:{r['name']}": Role(r["name"], rm) for r in listed[rm]}
    client_of = {uuid: cid for cid, uuid in client_uuid.items()}
    role_key = {r["id"]: f"realm:{r['name']}" for r in realm_listed}
    role_key |= {r["id"]: f"{client_of[c]}:{r['name']}" for c, rs in listed.items() for r in rs}
    role_key = {rid: key for rid, key in role_key.items() if key in roles}

    lap("realm, clients, roles")
    since = now - timedelta(days=activity_days)
    direct_read = beside.submit(gw.users_with_roles, list(roles.values()), workers=workers)
    logins_read = beside.submit(gw.audit_last_logins)
    events_read = beside.submit(gw.audit_admin_events, int(since.timestamp() * 1000), workers=workers)
    user_count, group_count = gw.at_once(gw.count_users, gw.count_groups)
    groups = {g["id"]: g for g in gw.audit_listing("groups", group_count, workers=workers)}
    group_path = _paths(groups)
    lap(f"groups ({len(groups)})")
    # Roles each group carries itself (in the group listing), then inherited by its subgroups.
    own = {gid: {role_key[r] for r in g.get("roles") or () if r in role_key} for gid, g in groups.items()}
    group_roles: dict[str, set[str]] = {}
    for gid in groups:
        held, cur = set(), gid
        while cur in groups:
            held |= own.get(cur, set())
            cur = groups[cur].get("parentId")
        if held:
            group_roles[group_path[gid]] = held

    lap("role-carrying groups")
    expected = user_count + sum(bool(c.get("serviceAccountsEnabled")) for c in clients)
    users = gw.audit_listing("users", expected, workers=workers)
    lap(f"users with attributes and groups ({len(users)})")
    direct_of: dict[str, list[str]] = {}
    for role, ids in zip(roles, direct_read.result()):
        for uid in ids:
            direct_of.setdefault(uid, []).append(role)

    client_id_of = {c["id"]: c["clientId"] for c in clients}
    lap("direct role mappings")
    # Only groups carrying roles (their own or inherited) matter for who holds what; the others carry nothing.
    accounts = tuple(Account(
        id=u["id"], username=u["username"], enabled=bool(u.get("enabled")), created=_ms(u.get("createdTimestamp")),
        adherent=(u["attributes"].get("adherent") or [None])[0],
        teleservice=(u["attributes"].get("teleservice") or [None])[0],
        service_account=client_id_of.get(u.get("serviceAccountClientLink") or "", u.get("serviceAccountClientLink")),
        groups=tuple(sorted(p for p in (group_path.get(g) for g in u["groups"]) if p in group_roles)),
        direct_roles=tuple(sorted(direct_of.get(u["id"], ()))),
        categories=tuple(u["attributes"].get("categories") or ()),
        credential_types=tuple(u["credentialTypes"]) if "credentialTypes" in u else None)
        for u in users)

    top = next((g for g in groups.values() if g.get("parentId") is None and g["name"] == ADHERENTS), None)
    adherents = tuple(AdherentInfo(
        g["name"], (g["attributes"].get("raison_sociale") or [""])[0],
        (g["attributes"].get("status") or [ACTIVE])[0],
        int((g["attributes"].get("easypaiement_confirmations") or ["1"])[0]),
        tuple(g["attributes"].get("categories") or ()),
        parse_since((g["attributes"].get(INCOMPLETE_SINCE) or [None])[0]),
        parse_since((g["attributes"].get(TERMINATED_AT) or [None])[0]))
        for g in sorted(groups.values(), key=lambda g: g["name"]) if top and g.get("parentId") == top["id"])

    lap("adherents (from the tree)")
    last_logins = {uid: _ms(ms) for uid, ms in logins_read.result().items()}
    username_of = {a.id: a.username for a in accounts}
    admin_events = []
    for e in events_read.result():
        path = e.get("resourcePath") or ""
        target = username_of.get(path.split("/")[1]) if path.startswith("users/") and "/" in path else None
        admin_events.append(AdminEvent(_ms(e["time"]), _event_actor(e, gw.realm, username_of),
                                       e.get("operationType", ""), e.get("resourceType", ""), path, target))
    service_account = {a.service_account: a.username for a in accounts if a.service_account}
    ours = ServiceAccounts(*(service_account.get(client_id, service_account_username(client_id)) for client_id in
                             (gw.settings.provisioner_client_id, gw.settings.delegations_client_id)))

    lap("login and admin events")
    trail, with_questions = _read_database(db, since)
    reviews = _open_reviews(db)
    lap("our database")
    drift, note = drift_read.result() if drift_read else (None, "not computed (--no-drift)")
    beside.shutdown()
    lap("realm drift")
    try:
        listings = authz_listings(gw)
    except Forbidden:
        listings = None
    # Adherents without their Keycloak permission (those terminated lose it on purpose).
    delegations = audit_problems(gw, [a.numero for a in adherents if a.status != TERMINATED], listings)
    lap("admin permissions")
    config, config_note = _realm_config(gw, realm, clients, spec)
    lap("realm configuration")
    admin_roles = _admin_roles(gw, realm_listed, listed.get(rm, []), groups, group_path, users, direct_of)
    security, security_note = _security_facts(gw, realm, clients, spec, listings, admin_roles, config)
    lap("advisories")
    retention = realm.get("eventsExpiration")
    return AuditData(
        realm=gw.realm, collected_at=now, accounts=accounts, adherents=adherents,
        group_roles={p: tuple(sorted(r)) for p, r in group_roles.items()}, teleservices=teleservices,
        declaration_services=tuple(t.client_id for t in spec.catalogue() if t.declares),
        last_logins=last_logins, login_retention_days=retention // 86400 if retention else None,
        secret_question_users=with_questions, trail=trail, admin_events=tuple(admin_events), drift=drift,
        drift_note=note, config=config, service_accounts=ours, activity_since=since,
        notes=tuple(n for n in (config_note, security_note, _credentials_note(users)) if n), reads=gw.bulk_reads,
        security=security, register=load_register(gw.settings.realm_dir),
        delegations=delegations,
        second_factor_roles=tuple(r.replace(".", ":", 1) if "." in r else f"realm:{r}"
                                  for r in spec.second_factor.required_for),
        reviews=reviews)


def _credentials_note(users: list[dict]) -> str:
    if users and not all("credentialTypes" in u for u in users):
        return ("Second factors not checked: this Keycloak's extension does not list credential types "
                "(keycloak-extension/ older than the second-factor work).")
    return ""


def _event_actor(event: dict, realm: str, username_of: dict[str, str]) -> str:
    """Who held the token of an admin event: a username of the audited realm, else ``<realm>/<username>`` (e.g.
    ``master/admin``), as our extension names them (``authRealm``, ``authUsername``); ids when the user is gone."""
    auth = event.get("authDetails") or {}
    user_id = auth.get("userId") or ""
    name = event.get("authUsername") or username_of.get(user_id) or user_id[:8] or "?"
    auth_realm = event.get("authRealm") or (realm if user_id in username_of else (auth.get("realmId") or "?")[:8])
    return name if auth_realm == realm else f"{auth_realm}/{name}"


def _realm_config(gw: Gateway, realm: dict, clients: list[dict], spec: RealmSpec) -> tuple[RealmConfig | None, str]:
    """The realm's security settings for config_findings, with a few reads (the realm and clients already read,
    the client scopes, the `delegate` role's composites level by level); None and why when this account may not
    read them: the report then says so and judges nothing."""
    if "bruteForceProtected" not in realm or any("publicClient" not in c for c in clients):
        return None, "Realm configuration not checked: this account may not read the realm's and clients' settings."
    try:
        scopes, composites = gw.at_once(gw.client_scopes, partial(gw.realm_role_composites, DELEGATE))
        granted = _with_composites(gw, composites)
    except Forbidden as exc:
        return None, f"Realm configuration not checked: {exc}"
    rm = next((c["id"] for c in clients if c["clientId"] == "realm-management"), None)
    return RealmConfig(
        brute_force_protected=bool(realm.get("bruteForceProtected")), events_enabled=bool(realm.get("eventsEnabled")),
        admin_events_enabled=bool(realm.get("adminEventsEnabled")),
        revoke_refresh_token=bool(realm.get("revokeRefreshToken")),
        refresh_token_max_reuse=int(realm.get("refreshTokenMaxReuse") or 0),
        clients=tuple(ClientConfig(
            c["clientId"], bool(c.get("enabled")), bool(c.get("publicClient")), bool(c.get("standardFlowEnabled")),
            bool(c.get("implicitFlowEnabled")), bool(c.get("directAccessGrantsEnabled")),
            (c.get("attributes") or {}).get("pkce.code.challenge.method") or None,
            tuple(c.get("redirectUris") or ()), tuple(c.get("defaultClientScopes") or ()),
            tuple(c.get("optionalClientScopes") or ()), _mappers(c.get("protocolMappers")))
            for c in clients),
        scope_mappers={sc["name"]: _mappers(sc.get("protocolMappers")) for sc in scopes or []},
        delegate_roles=tuple(sorted(r["name"] for r in granted if r.get("clientRole") and r.get("containerId") == rm)),
        our_clients=tuple(c.client_id for c in spec.clients)), ""


def _admin_roles(gw: Gateway, realm_roles: list[dict], rm_roles: list[dict], groups: dict[str, dict],
                 group_path: dict[str, str], users: list[dict], direct_of: dict[str, list[str]]
                 ) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """The realm-management roles each group confers (its own, its parents', through realm roles' composites) and
    each account holds (its groups', its direct ones): (by group path, by username), only where there are some."""
    rm_name = {r["id"]: r["name"] for r in rm_roles}
    realm_name = {r["id"]: r["name"] for r in realm_roles}
    composite = [r for r in realm_roles if r.get("composite")]
    closures = gw.at_once(*(partial(_with_composites, gw, [r]) for r in composite)) if composite else []
    rm_ids = set(rm_name)
    through = {r["name"]: frozenset(rm_name[c["id"]] for c in closure if c["id"] in rm_ids)
               for r, closure in zip(composite, closures)}

    def conferred(role_id: str) -> frozenset[str]:
        if role_id in rm_name:
            return frozenset({rm_name[role_id]})
        return through.get(realm_name.get(role_id, ""), frozenset())

    own = {gid: frozenset().union(*(conferred(r) for r in g.get("roles") or ())) for gid, g in groups.items()}
    by_group: dict[str, frozenset[str]] = {}
    for gid in groups:
        held, cur = set(), gid
        while cur in groups:
            held |= own[cur]
            cur = groups[cur].get("parentId")
        if held:
            by_group[gid] = frozenset(held)
    by_user: dict[str, frozenset[str]] = {}
    for u in users:
        held = set().union(*(by_group.get(g, frozenset()) for g in u.get("groups") or ()))
        for key in direct_of.get(u["id"], ()):
            owner, _, name = key.partition(":")
            held |= {name} if owner == "realm-management" else through.get(name, frozenset()) if owner == "realm" \
                else set()
        if held:
            by_user[u["username"]] = frozenset(held)
    return {group_path[gid]: roles for gid, roles in by_group.items()}, by_user


def _security_facts(gw: Gateway, realm: dict, clients: list[dict], spec: RealmSpec,
                    listings: tuple[list[dict], list[dict]] | None,
                    admin_roles: tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]],
                    config: RealmConfig | None) -> tuple[SecurityFacts | None, str]:
    """What the advisory controls judge (provisioner/audit/advisories.py); None and why when this account may not
    read it all (the report then says that the advisories were not checked)."""
    if "resetPasswordAllowed" not in realm or listings is None:
        return None, "Keycloak advisories not checked: this account may not read the realm's settings and permissions."
    try:
        version = gw.server_version()
        profiles, policies, registration, providers = gw.at_once(
            partial(gw.get, "/client-policies/profiles", **{"include-global-profiles": "true"}), gw.client_policies,
            gw.registration_policies, partial(gw.get, "/identity-provider/instances"))
    except (Forbidden, KeycloakRejected) as exc:
        return None, f"Keycloak advisories not checked: {exc}"
    executors = {p["name"]: tuple(e.get("executor", "") for e in p.get("executors") or ())
                 for p in (profiles or {}).get("profiles", []) + (profiles or {}).get("globalProfiles", [])}
    trusted = [c for c in registration if c.get("subType") == "anonymous" and c.get("providerId") == "trusted-hosts"]
    policy_list, permission_list = listings
    logic = {p["id"]: p.get("logic") for p in policy_list}
    foreign = [p for p in permission_list if not is_ours(p["name"])]
    details = gw.at_once(*(partial(gw.permission_details, p["id"]) for p in foreign)) if foreign else []
    permissions = tuple(AdminPermission(
        p["name"], p.get("resourceType", ""), tuple((d or {}).get("scopes") or ()),
        p.get("logic") == "NEGATIVE" or any(logic.get(i) == "NEGATIVE" for i in (d or {}).get("policies") or ()))
        for p, d in zip(foreign, details))
    by_group, by_user = admin_roles
    return SecurityFacts(
        keycloak_version=version, reset_password_allowed=bool(realm.get("resetPasswordAllowed")),
        organizations_enabled=bool(realm.get("organizationsEnabled")),
        identity_providers=tuple(i.get("alias", "?") for i in providers or ()),
        client_policies=tuple(ClientPolicy(
            p.get("name", ""), bool(p.get("enabled")), tuple(c.get("condition", "") for c in p.get("conditions") or ()),
            tuple(e for name in p.get("profiles") or () for e in executors.get(name, ()))) for p in policies),
        anonymous_registration_hosts=tuple(h for c in trusted for h in (c.get("config") or {}).get("trusted-hosts", ()))
        if trusted else None,
        permissions=permissions,
        group_policies=tuple(_group_policy(p) for p in policy_list if p.get("type") == "group"),
        redirect_uris={c["clientId"]: tuple(c.get("redirectUris") or ()) for c in clients if c.get("enabled")},
        group_admin_roles=by_group, account_admin_roles=by_user,
        delegate_roles=frozenset(config.delegate_roles) if config else frozenset(),
        by_design={service_account_username(c.client_id): frozenset(dict(c.service_account_roles)
                                                                      .get("realm-management", ()))
                   for c in spec.clients if c.service_account_roles}), ""


def _group_policy(rep: dict) -> GroupPolicy:
    config = rep.get("config") or {}
    try:
        groups = json.loads(config.get("groups") or "[]")
    except ValueError:
        groups = []
    return GroupPolicy(rep["name"], any(g.get("extendChildren") for g in groups), config.get("groupsClaim") or "")


def _mappers(reps: list[dict] | None) -> tuple[Mapper, ...]:
    return tuple(Mapper(m.get("name", ""), m.get("protocolMapper", ""), (m.get("config") or {}).get("claim.name"))
                 for m in reps or [])


def _with_composites(gw: Gateway, roles: list[dict]) -> list[dict]:
    """The roles and, transitively, their composites: one batch of reads per level of the role graph."""
    seen = {r["id"]: r for r in roles}
    todo = [r for r in roles if r.get("composite")]
    while todo:
        found = gw.at_once(*(partial(gw.role_composites, r["id"]) for r in todo))
        todo = []
        for r in (r for batch in found for r in batch or []):
            if r["id"] not in seen:
                seen[r["id"]] = r
                todo += [r] if r.get("composite") else []
    return list(seen.values())


def _read_database(db: Database | None, since: datetime) -> tuple[tuple[TrailEntry, ...], frozenset[str]]:
    """The trail since ``since`` plus every creation (for 'created by'); who has secret questions."""
    if db is None:
        return (), frozenset()
    c = audit_events.c
    created = or_(*(c.action.startswith(p) for p in CREATION_ACTIONS))
    with db.connect() as conn:
        rows = conn.execute(select(audit_events).where(or_(c.at >= since, created)).order_by(c.id))
        trail = tuple(TrailEntry(_aware(r.at), r.actor, r.actor_role, r.adherent, r.action, r.target, r.outcome,
                                 r.detail) for r in rows)
        questions = frozenset(r[0] for r in conn.execute(select(secret_questions.c.user_id).distinct()))
    return trail, questions


def _open_reviews(db: Database | None) -> tuple[ReviewProgress, ...]:
    """The open access review campaigns and their completion (our database)."""
    if db is None:
        return ()
    from provisioner.access_reviews import open_progress

    return tuple(ReviewProgress(c.id, c.name, c.deadline, sum(p.total for p in done),
                                sum(p.kept + p.revoked for p in done), tuple(p.adherent for p in done if p.pending))
                 for c, done in open_progress(db))


def _drift(gw: Gateway, spec: RealmSpec) -> tuple[tuple[str, ...] | None, str]:
    """The plan's changes when the account may read what plan reads; else None and why."""
    from provisioner.realm.plan import plan_realm

    try:
        plan = plan_realm(gw, spec)
    except Forbidden as exc:
        return None, f"not computed: this read-only account may not read what `plan` reads ({exc})"
    except ProvisionerError as exc:
        return None, f"not computed: {type(exc).__name__}: {exc}"
    changes = tuple(str(c).splitlines()[0] for c in plan.changes)
    return changes, f"computed: {len(changes)} difference(s) with realm/"


def audit_realm(settings, inactive_days: int = 90, activity_days: int = 30, with_drift: bool = True,
                gw: Gateway | None = None, incomplete_days: int | None = None):
    """Collect with the read-only auditor account and build the report (what the CLI and the portal call)."""
    from provisioner.audit.report import build_report

    spec = realm_spec(settings)
    gw = gw or Gateway.as_auditor(settings)
    data = collect(gw, Database(settings.database_url), spec, activity_days=activity_days, with_drift=with_drift)
    return build_report(data, inactive_days=inactive_days,
                        incomplete_days=settings.easypaiement_incomplete_days if incomplete_days is None
                        else incomplete_days, dormant_days=settings.dormant_days,
                        grace_days=settings.termination_grace_days)
