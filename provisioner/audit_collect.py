"""Read what the audit needs, in bulk, with the read-only `auditor` account and from our database.

Never one request per user: users in pages, memberships per role-carrying group (leaf groups and
their like), direct role mappings per role, events in pages. See provisioner/audit.py for the rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from sqlalchemy import or_, select

from provisioner.audit import Account, AdherentInfo, AdminEvent, AuditData, TrailEvent
from provisioner.db import Database, audit_events, secret_questions
from provisioner.errors import Forbidden, ProvisionerError
from provisioner.gateway import Gateway
from provisioner.realm_spec import RealmSpec

CREATION_PREFIXES = ("user.create", "subscription.submit", "staff.create.")


def _standard_leaf(path: str) -> bool:
    """/adherents/<n>/<client>/<role>: the provisioner never creates groups below these."""
    parts = path.strip("/").split("/")
    return len(parts) == 4 and parts[0] == "adherents"


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
    realm, clients = gw.get_many(["", "/clients"])
    client_uuid = {c["clientId"]: c["id"] for c in clients}
    teleservices = tuple(c.client_id for c in spec.teleservices)

    # Roles whose holders matter: teleservice roles, our realm roles, realm administration roles.
    role_paths = {f"{c.client_id}:{r.name}": f"/clients/{client_uuid[c.client_id]}/roles/{quote(r.name)}"
                  for c in spec.teleservices if c.client_id in client_uuid for r in c.roles}
    role_paths |= {f"realm:{r.name}": f"/roles/{quote(r.name)}" for r in spec.realm_roles}
    rm = client_uuid.get("realm-management")
    if rm:
        for r in gw.get_many([f"/clients/{rm}/roles"])[0] or []:
            role_paths[f"realm-management:{r['name']}"] = f"/clients/{rm}/roles/{quote(r['name'])}"

    lap("realm, clients, roles")
    carriers = gw.get_pages([(f"{p}/groups", {"briefRepresentation": "false"}) for p in role_paths.values()],
                            workers=workers)
    group_roles: dict[str, set[str]] = {}
    group_path: dict[str, str] = {}
    parents: list[dict] = []
    for role, groups in zip(role_paths, carriers):
        for g in groups or []:
            group_roles.setdefault(g["path"], set()).add(role)
            group_path[g["id"]] = g["path"]
            if not _standard_leaf(g["path"]) and g["id"] not in {x["id"] for x in parents}:
                parents.append(g)
    # Subgroups inherit their ancestors' roles (e.g. /delegates/<n> under /delegates). Keycloak does not say
    # here whether a group has children: every role-carrying group except the layout's leaves is descended.
    seen = set(group_path)
    while parents:
        kids = gw.get_many([(f"/groups/{g['id']}/children", {"briefRepresentation": "false", "first": 0,
                                                               "max": 100000}) for g in parents], workers=workers)
        next_parents = []
        for parent, children in zip(parents, kids):
            for child in children or []:
                group_roles.setdefault(child["path"], set()).update(group_roles[parent["path"]])
                group_path[child["id"]] = child["path"]
                if child.get("subGroupCount", 1) and child["id"] not in seen:
                    next_parents.append(child)
                seen.add(child["id"])
        parents = next_parents

    lap("role-carrying groups")
    members = gw.audit_members(list(group_path), workers=workers)
    lap(f"members of {len(group_path)} groups")
    users, listing_note = _all_users(gw, realm, clients, {u["id"]: u for ms in members.values() for u in ms},
                                     workers)
    lap("users outside those groups")
    groups_of: dict[str, list[str]] = {}
    for gid, reps in members.items():
        for rep in reps:
            groups_of.setdefault(rep["id"], []).append(group_path[gid])
    direct_of: dict[str, list[str]] = {}
    for role, ids in zip(role_paths, gw.audit_role_users(list(role_paths.values()), workers=workers).values()):
        for uid in ids:
            direct_of.setdefault(uid, []).append(role)

    # Listings by role do not carry serviceAccountClientId: Keycloak names these users after their client.
    sa_names = {f"service-account-{c['clientId']}".lower(): c["clientId"] for c in clients
                if c.get("serviceAccountsEnabled")}
    lap("direct role mappings")
    accounts = tuple(Account(
        id=u["id"], username=u["username"], enabled=bool(u.get("enabled")), created=_ms(u.get("createdTimestamp")),
        adherent=((u.get("attributes") or {}).get("adherent") or [None])[0],
        teleservice=((u.get("attributes") or {}).get("teleservice") or [None])[0],
        service_account=u.get("serviceAccountClientId") or sa_names.get(u["username"]),
        groups=tuple(sorted(groups_of.get(u["id"], ()))), direct_roles=tuple(sorted(direct_of.get(u["id"], ()))),
        categories=tuple((u.get("attributes") or {}).get("categories") or ()))
        for u in users)

    top = next((g for g in gw.get_many([("/groups", {"search": "adherents", "exact": "true",
                                                     "briefRepresentation": "true"})])[0] or []
                if g["path"] == "/adherents"), None)
    adherent_groups = gw.paged_many(f"/groups/{top['id']}/children", page=1000, briefRepresentation="false",
                                    subGroupsCount="false") \
        if top else []
    adherents = tuple(AdherentInfo(
        g["name"], ((g.get("attributes") or {}).get("raison_sociale") or [""])[0],
        ((g.get("attributes") or {}).get("status") or ["active"])[0],
        int(((g.get("attributes") or {}).get("easypaiement_confirmations") or ["1"])[0]),
        tuple((g.get("attributes") or {}).get("categories") or ()))
        for g in adherent_groups)

    lap("adherents")
    last_logins: dict[str, datetime] = {}
    for e in gw.paged_many("/events", page=1000, type="LOGIN"):
        at = _ms(e.get("time"))
        if e.get("userId") and at and (e["userId"] not in last_logins or at > last_logins[e["userId"]]):
            last_logins[e["userId"]] = at
    since = now - timedelta(days=activity_days)
    username_of = {a.id: a.username for a in accounts}
    admin_events = []
    for e in gw.paged_many("/admin-events", page=1000, dateFrom=since.strftime("%Y-%m-%d")):
        path = e.get("resourcePath") or ""
        auth = e.get("authDetails") or {}
        actor = username_of.get(auth.get("userId", ""), f"{auth.get('realmId', '?')[:8]}:{auth.get('userId', '?')[:8]}")
        target = username_of.get(path.split("/")[1]) if path.startswith("users/") and "/" in path else None
        admin_events.append(AdminEvent(_ms(e["time"]), actor, e.get("operationType", ""),
                                       e.get("resourceType", ""), path, target))

    lap("login and admin events")
    trail, with_questions = _read_database(db, since)
    lap("our database")
    drift, note = _drift(gw, spec) if with_drift else (None, "not computed (--no-drift)")
    from provisioner.permissions import audit_problems  # issue 6: adherents without their Keycloak permission
    lap("realm drift")
    delegations = audit_problems(gw)
    lap("admin permissions")
    retention = realm.get("eventsExpiration")
    return AuditData(
        realm=gw.realm, collected_at=now, accounts=accounts, adherents=adherents,
        group_roles={p: tuple(sorted(r)) for p, r in group_roles.items()}, teleservices=teleservices,
        last_logins=last_logins, login_retention_days=retention // 86400 if retention else None,
        secret_question_users=with_questions, trail=trail, admin_events=tuple(admin_events), drift=drift,
        drift_note=note, activity_since=since, reads=gw.bulk_reads, delegations=delegations)


def _all_users(gw: Gateway, realm: dict, clients: list[dict], members: dict[str, dict],
               workers: int) -> tuple[list[dict], str]:
    """Every user with attributes: the members already read, plus (only if ``/users/count`` says some user is
    in none of those groups) the holders of the realm's default role, then (only if still short) the full
    ``/users`` listing.

    With fine-grained admin permissions (v2) on, Keycloak builds the user profile and evaluates the caller's
    permissions for every user ``GET /users`` lists, unless the caller may manage users: for this read-only
    account that costs milliseconds per user (minutes per 10,000), so it is the last resort.
    """
    count = int(gw.get_many(["/users/count"])[0] or 0)
    people = {i: u for i, u in members.items()}
    if len(people) >= count:
        return list(people.values()), ""
    role = (realm.get("defaultRole") or {}).get("name") or f"default-roles-{gw.realm}"
    service_accounts = sum(bool(c.get("serviceAccountsEnabled")) for c in clients)
    for u in gw.paged_many(f"/roles/{quote(role)}/users", total=count + service_accounts, workers=workers,
                           briefRepresentation="false"):
        people.setdefault(u["id"], u)
    sa_names = {f"service-account-{c['clientId']}".lower() for c in clients if c.get("serviceAccountsEnabled")}
    if len([u for u in people.values() if u["username"] not in sa_names]) >= count:
        return list(people.values()), ""
    missing = [u for u in gw.paged_many("/users", total=count, workers=workers, briefRepresentation="false")
               if u["id"] not in people]
    return list(people.values()) + missing, (f"{len(missing)} user(s) in no role-carrying group and without the "
                                             f"default role {role}: read through the slower full user listing")


def _read_database(db: Database | None, since: datetime) -> tuple[tuple[TrailEvent, ...], frozenset[str]]:
    """The trail since ``since`` plus every creation (for 'created by'); who has secret questions."""
    if db is None:
        return (), frozenset()
    c = audit_events.c
    created = or_(*(c.action.startswith(p) for p in CREATION_PREFIXES))
    with db.connect() as conn:
        rows = conn.execute(select(audit_events).where(or_(c.at >= since, created)).order_by(c.id))
        trail = tuple(TrailEvent(_aware(r.at), r.actor, r.actor_role, r.adherent, r.action, r.target, r.outcome,
                                 r.detail) for r in rows)
        questions = frozenset(r[0] for r in conn.execute(select(secret_questions.c.user_id).distinct()))
    return trail, questions


def _drift(gw: Gateway, spec: RealmSpec) -> tuple[tuple[str, ...] | None, str]:
    """The plan's changes when the account may read what plan reads; else None and why."""
    from provisioner.realm_apply import plan_realm

    try:
        plan = plan_realm(gw, spec)
    except Forbidden as exc:
        return None, f"not computed: this read-only account may not read what `plan` reads ({exc})"
    except ProvisionerError as exc:
        return None, f"not computed: {type(exc).__name__}: {exc}"
    changes = tuple(str(c).splitlines()[0] for c in plan.changes)
    return changes, f"computed: {len(changes)} difference(s) with realm/"


def audit_realm(settings, inactive_days: int = 90, activity_days: int = 30, with_drift: bool = True,
                gw: Gateway | None = None):
    """Collect with the read-only auditor account and build the report (what the CLI and the portal call)."""
    from provisioner.audit import build_report
    from provisioner.realm_spec import load_realm_spec

    spec = load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)
    gw = gw or Gateway.as_auditor(settings)
    data = collect(gw, Database(settings.database_url), spec, activity_days=activity_days, with_drift=with_drift)
    return build_report(data, inactive_days=inactive_days)
