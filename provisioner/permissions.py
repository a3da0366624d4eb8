"""Keycloak confines each delegate to its own adherent: fine-grained admin permissions (v2), one pair per adherent.

Per adherent <n>:
- a group policy ``delegate-<n>`` granting the members of ``/delegates/<n>`` (not of its subgroups);
- a Groups scope permission ``adherent-<n>`` over ``/adherents/<n>`` AND every group below it (group-level
  scopes are not inherited by subgroups in Keycloak 26.7), with the scopes below, and that policy only.

And once for the realm, the root every delegate must see to name its own groups by path (``ensure_root``):
- a role policy ``delegates`` granting the holders of realm role ``delegate``;
- a Groups scope permission ``adherents-root`` over ``/adherents`` alone, scope ``view``.

The delegate holds no view-*/manage-* role (those bypass the permissions; realm/realm.yaml gives the
`delegate` role query-users and query-groups only), so these permissions are all it may do on the Admin API.
Writing them needs manage-realm (client `delegations`, ``writer(settings)``); checking them view-realm.
What Keycloak cannot enforce is listed in docs/security.md and kept by our own checks (``attribute_findings``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.errors import Conflict, NotFound
from provisioner.gateway import Gateway, Group
from provisioner.realm.spec import RealmSpec
from provisioner.settings import Settings
from provisioner.tenancy import DELEGATE
from provisioner.tree import ADHERENTS, adherent_path, delegate_group_path

# Each is needed by some delegate action (measured, docs/security.md "Which scope allows what"):
# view: read the tree (group-by-path, children, a user's groups); view-members: list and read users;
# manage-members: update, disable, reset password, log out, unlock; manage-membership: target group of a
# membership change or of a creation; manage-membership-of-members: move a member between groups.
SCOPES = ("view", "view-members", "manage-members", "manage-membership", "manage-membership-of-members")
POLICY_PREFIX, PERMISSION_PREFIX = "delegate-", "adherent-"
# Keycloak 26.7 looks a group path up (a delegate's POST /users naming its groups, group-by-path) through a query
# filtered by what the caller may view whenever the path's groups are not in the node's cache — after a restart,
# clear-realm-cache, or an eviction (10,000 realm-cache entries by default, 120,000 groups at CIMR's size; an audit
# through Keycloak's /roles/<role>/groups evicted ~72,000 and broke delegates' creations that way). No per-adherent
# permission covers /adherents, so the filter dropped it and the delegate's own creations failed with 403
# (docs/security.md, "Cold cache"). `view` on /adherents alone lets it through: a group's scopes do not reach its
# subgroups, so no other adherent becomes visible (tests/test_keycloak_confinement.py attacks it). A role policy,
# not a group policy on /delegates: Keycloak's filter only matches group policies naming the caller's own groups.
ROOT_PATH, ROOT_POLICY, ROOT_PERMISSION, ROOT_SCOPES = f"/{ADHERENTS}", "delegates", "adherents-root", ("view",)
_OURS = re.compile(r"^(delegate|adherent)-[0-9]{4,10}$")


def policy_name(adherent: str) -> str:
    return POLICY_PREFIX + adherent


def permission_name(adherent: str) -> str:
    return PERMISSION_PREFIX + adherent


@dataclass(frozen=True)
class Delegation:
    """What Keycloak holds for one adherent's delegate."""

    numero: str
    policy_id: str
    permission_id: str
    group_ids: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """One problem an audit reports: ``code`` is stable (for machines), ``detail`` is for people."""

    code: str
    adherent: str | None
    target: str
    detail: str


# Finding codes
MISSING = "delegation-missing"            # adherent without its Keycloak permission (or policy)
DRIFTED = "delegation-drifted"            # permission/policy exists but covers other groups, scopes or policies
FOREIGN = "permission-foreign"            # a Users/Groups permission we did not make: may deny or over-grant
TYPE_WIDE = "permission-type-wide"        # a permission with no resources applies to EVERY user/group
ATTRIBUTE = "adherent-attribute-mismatch"  # #40259: user's `adherent` attribute disagrees with its groups
TWO_ADHERENTS = "user-in-two-adherents"   # every permission must grant: neither delegate may manage it


def writer(settings: Settings) -> Gateway:
    """The gateway allowed to write permissions (client `delegations`); ConfigError when its secret is unset."""
    client_id, secret = settings.require_delegations()
    return Gateway.as_service_account(settings, client_id, secret)


# --- pure: what Keycloak should hold, and how the live state differs ---------------------------------------
def desired(delegate_group_id: str, tree_ids: list[str], policy_id: str) -> dict:
    return {"policy_groups": [delegate_group_id],
            "permission": {"resources": sorted(tree_ids), "scopes": sorted(SCOPES), "policies": [policy_id]}}


def differences(want: dict, policy_groups: list[str] | None, permission: dict | None) -> list[str]:
    """Human-readable differences between the desired and the live policy/permission (empty: in order)."""
    out = []
    if policy_groups is None:
        out.append("policy missing")
    elif policy_groups != want["policy_groups"]:
        out.append(f"policy grants {policy_groups}, expected {want['policy_groups']}")
    if permission is None:
        out.append("permission missing")
    else:
        for key, expected in want["permission"].items():
            if permission[key] != expected:
                missing = sorted(set(expected) - set(permission[key]))
                extra = sorted(set(permission[key]) - set(expected))
                out.append(f"permission {key}: missing {missing}, extra {extra}")
    return out


# --- edges ---------------------------------------------------------------------------------------------------
def _groups(gw: Gateway, adherent: str) -> tuple[Group, list[str]]:
    top = gw.group_by_path(adherent_path(adherent))
    delegates = gw.group_by_path(delegate_group_path(adherent))
    if top is None or delegates is None:
        raise NotFound(f"adherent {adherent} has no group tree ({adherent_path(adherent)}, {delegate_group_path(adherent)})")
    return delegates, [g.id for g in gw.subtree(top)]


def ensure_delegation(gw: Gateway, adherent: str) -> Delegation:
    """Create or repair the adherent's policy and permission (re-runnable; call again after adding a subgroup).

    Raises NotFound when the adherent's groups do not exist; Forbidden without manage-realm.
    """
    delegates, tree_ids = _groups(gw, adherent)
    policy_id = _ensure_policy(gw, "group", policy_name(adherent), [delegates.id],
                               f"Delegate of adherent {adherent} (members of {delegate_group_path(adherent)})")
    want = desired(delegates.id, tree_ids, policy_id)["permission"]
    permission_id = _ensure_permission(gw, permission_name(adherent), want,
                                       f"{delegate_group_path(adherent)} manages the users of {adherent_path(adherent)}")
    return Delegation(adherent, policy_id, permission_id, tuple(want["resources"]))


def ensure_root(gw: Gateway) -> str:
    """Create or repair the realm's one root permission (ROOT_PERMISSION, above); its id. NotFound without
    /adherents or the delegate role (apply the realm first); Forbidden without manage-realm."""
    top, role = _root(gw)
    policy_id = _ensure_policy(gw, "role", ROOT_POLICY, [role], "Every delegate (realm role delegate)")
    return _ensure_permission(gw, ROOT_PERMISSION, _root_desired(top, policy_id),
                              f"Delegates see {ROOT_PATH} itself (not its subgroups) to name their own groups by path")


def _ensure_policy(gw: Gateway, kind: str, name: str, members: list[str], description: str) -> str:
    """The id of the POSITIVE ``kind`` ("group" or "role") policy ``name`` granting exactly ``members``."""
    policy = gw.authz_find("policy", name)
    if policy is None:
        try:
            return gw.create_policy(kind, name, members, description)
        except Conflict:  # created meanwhile by a concurrent run
            return gw.authz_find("policy", name)["id"]
    if gw.policy_members(kind, policy["id"]) != sorted(members):
        gw.update_policy(kind, policy["id"], name, members, description)
    return policy["id"]


def _ensure_permission(gw: Gateway, name: str, want: dict, description: str) -> str:
    """The id of the Groups scope permission ``name`` holding exactly ``want`` (resources, scopes, policies)."""
    permission = gw.authz_find("permission", name)
    if permission is None:
        try:
            return gw.create_groups_permission(name, want["resources"], want["scopes"], want["policies"], description)
        except Conflict:
            return gw.authz_find("permission", name)["id"]
    if gw.permission_details(permission["id"]) != want:
        gw.update_groups_permission(permission["id"], name, want["resources"], want["scopes"], want["policies"],
                                    description)
    return permission["id"]


def remove_delegation(gw: Gateway, adherent: str) -> bool:
    """Delete the adherent's permission and policy (before or after its groups); True if anything was deleted.

    Keycloak deletes a permission whose last group is deleted, but keeps the policy (with no group).
    """
    removed = False
    for kind, name in (("permission", permission_name(adherent)), ("policy", policy_name(adherent))):
        found = gw.authz_find(kind, name)
        if found is not None:
            gw.delete_authz(found["id"])
            removed = True
    return removed


def _root(gw: Gateway) -> tuple[Group, str]:
    top, role = gw.group_by_path(ROOT_PATH), gw.realm_role(DELEGATE)
    if top is None or role is None:
        raise NotFound(f"no {ROOT_PATH} group or no realm role {DELEGATE}: apply the realm first")
    return top, role["id"]


def _root_desired(top: Group, policy_id: str) -> dict:
    return {"resources": [top.id], "scopes": sorted(ROOT_SCOPES), "policies": [policy_id]}


def check_root(gw: Gateway) -> list[Finding]:
    """A finding when the root permission is missing or says anything but ``view`` on /adherents for delegates."""
    try:
        top, role = _root(gw)
    except NotFound as exc:
        return [Finding(MISSING, None, ROOT_PERMISSION, str(exc))]
    return _check_pair(gw, "role", ROOT_POLICY, [role], ROOT_PERMISSION, lambda pid: _root_desired(top, pid), None,
                       f"delegates cannot name their groups by path on a cold Keycloak cache ({ROOT_PERMISSION}): ")


def _check_pair(gw: Gateway, kind: str, policy: str, members: list[str], permission: str, want, adherent: str | None,
                prefix: str) -> list[Finding]:
    """A finding when the ``kind`` policy ``policy`` does not grant exactly ``members`` or the permission
    ``permission`` does not hold exactly ``want(policy id)`` (MISSING when either is absent, DRIFTED otherwise)."""
    found_policy = gw.authz_find("policy", policy)
    found_permission = gw.authz_find("permission", permission)
    problems = differences({"policy_groups": sorted(members),
                            "permission": want(found_policy["id"] if found_policy else "?")},
                           gw.policy_members(kind, found_policy["id"]) if found_policy else None,
                           gw.permission_details(found_permission["id"]) if found_permission else None)
    if not problems:
        return []
    code = MISSING if found_policy is None or found_permission is None else DRIFTED
    return [Finding(code, adherent, permission, prefix + "; ".join(problems))]


def check_delegation(gw: Gateway, adherent: str) -> list[Finding]:
    """Findings for one adherent: its policy and permission exist and cover exactly its tree (view-realm)."""
    try:
        delegates, tree_ids = _groups(gw, adherent)
    except NotFound as exc:
        return [Finding(MISSING, adherent, permission_name(adherent), str(exc))]
    return _check_pair(gw, "group", policy_name(adherent), [delegates.id], permission_name(adherent),
                       lambda pid: desired(delegates.id, tree_ids, pid)["permission"], adherent,
                       f"adherent {adherent} without its Keycloak permission: ")


def adherent_numbers(gw: Gateway) -> list[str]:
    """Every adherent that has a group tree (/adherents/<n>), but the terminated ones: their delegation is removed
    on purpose (provisioner/termination.py) until their purge."""
    top = gw.group_by_path("/adherents")
    return sorted(g.name for g in gw.children(top.id) if g.attr("status") != "terminated") if top else []


def check_all(gw: Gateway, deep: bool = False, adherents: list[str] | None = None,
              listings: tuple[list[dict], list[dict]] | None = None) -> list[Finding]:
    """Realm-wide: adherents missing their pair (cheap: three listings), and any Users/Groups permission that is
    not one of ours or covers every user/group. ``deep`` also compares each pair with its tree and reports
    ``attribute_findings`` (~10 + 2 per user calls each). ``numeros``: the adherents, ``listings``: every policy and
    every permission (``authz_listings``), when already read."""
    adherents = adherent_numbers(gw) if adherents is None else adherents
    policy_list, permissions = listings or authz_listings(gw)
    policies = {p["name"] for p in policy_list}
    names = {p["name"] for p in permissions}
    findings: list[Finding] = check_root(gw)
    for numero in adherents:
        if deep:
            findings.extend(check_delegation(gw, numero))
            findings.extend(attribute_findings(gw, numero))
        elif policy_name(numero) not in policies or permission_name(numero) not in names:
            findings.append(Finding(MISSING, numero, permission_name(numero),
                                    f"adherent {numero} without its Keycloak permission"))
    for perm in permissions:
        if perm.get("resourceType") not in ("Users", "Groups"):
            continue
        if perm["name"] == ROOT_PERMISSION:
            continue  # check_root compared it whole
        if not _OURS.match(perm["name"]):
            findings.append(Finding(FOREIGN, None, perm["name"],
                                    f"permission {perm['name']!r} on {perm.get('resourceType')} is not one of the "
                                    "per-adherent permissions: where it overlaps one, Keycloak requires both to "
                                    "grant (delegates refused) or it grants more than one adherent"))
        details = gw.permission_details(perm["id"]) if not _OURS.match(perm["name"]) or deep else None
        # No resources, or the type's own resource (named "Users"/"Groups"): the permission covers every one.
        if details is not None and (not details["resources"] or perm.get("resourceType") in details["resources"]):
            findings.append(Finding(TYPE_WIDE, None, perm["name"],
                                    f"permission {perm['name']!r} has no resources: it applies to every "
                                    f"{perm.get('resourceType', '').lower()[:-1]} of the realm"))
    return findings


def authz_listings(gw: Gateway) -> tuple[list[dict], list[dict]]:
    """Every fine-grained admin policy and every permission of the realm (brief representations)."""
    return gw.authz_list("policy"), gw.authz_list("permission")


def is_ours(permission_name_: str) -> bool:
    """A per-adherent policy or permission, or the root permission (their shapes are checked by name)."""
    return bool(_OURS.match(permission_name_)) or permission_name_ == ROOT_PERMISSION


def repair_all(gw: Gateway, deep: bool = True) -> list[str]:
    """Ensure the pair of every adherent reported missing (or, with ``deep``, drifted) by ``check_all``, and the
    root permission; returns their numbers (and ROOT_PERMISSION). Needs manage-realm (``writer``, or the master
    admin of `apply`)."""
    repaired = []
    for finding in check_all(gw, deep=deep):
        if finding.code in (MISSING, DRIFTED) and finding.target == ROOT_PERMISSION:
            try:
                ensure_root(gw)
            except NotFound:  # no /adherents yet: nothing to see (the finding stays reported)
                continue
            repaired.append(ROOT_PERMISSION)
        elif finding.code in (MISSING, DRIFTED) and finding.adherent:
            try:
                ensure_delegation(gw, finding.adherent)
            except NotFound:  # no /delegates/<n>: no delegate to confine (the finding stays reported)
                continue
            repaired.append(finding.adherent)
    return repaired


# --- what Keycloak cannot enforce, checked by us (docs/security.md) ------------------------------------------
def attribute_findings(gw: Gateway, adherent: str) -> list[Finding]:
    """Users whose `adherent` attribute disagrees with their group tree (a delegate may rewrite it: #40259),
    and users of this adherent who also belong to another adherent's groups."""
    top = gw.group_by_path(adherent_path(adherent))
    if top is None:
        return []
    findings: list[Finding] = []
    members: dict[str, object] = {}
    for group in gw.subtree(top):
        for user in gw.group_members(group.id):
            members[user.id] = user
    for user in members.values():
        if user.attr("adherent") != adherent:
            findings.append(Finding(ATTRIBUTE, adherent, user.username,
                                    f"user {user.username} is in {adherent_path(adherent)} but its adherent "
                                    f"attribute is {user.attr('adherent')!r}"))
        others = sorted({g.path.split("/")[2] for g in gw.user_groups(user.id)
                         if g.path.startswith("/adherents/") and g.path.count("/") >= 2} - {adherent})
        if others:
            findings.append(Finding(TWO_ADHERENTS, adherent, user.username,
                                    f"user {user.username} is also in the groups of adherent(s) {others}: "
                                    "Keycloak lets none of their delegates manage it (every permission must grant)"))
    for user in gw.users_by_attribute("adherent", adherent):
        if user.id in members or user.username == adherent:
            continue
        groups = [g.path for g in gw.user_groups(user.id)]
        if groups != [delegate_group_path(adherent)]:
            findings.append(Finding(ATTRIBUTE, adherent, user.username,
                                    f"user {user.username} claims adherent {adherent} but is not in "
                                    f"{adherent_path(adherent)} (groups: {groups})"))
    return findings


def audit_problems(gw: Gateway, adherents: list[str], listings: tuple[list[dict], list[dict]] | None = None
                   ) -> tuple[tuple[str, str | None, str, str], ...]:
    """``check_all`` as plain tuples (code, adherent, subject, detail) for provisioner/audit/report.py's findings."""
    return tuple((f.code, f.adherent, f.target, f.detail) for f in check_all(gw, adherents=adherents, listings=listings))


# --- what `apply` would repair: `provisioner plan` shows it (a dry-run of repair_all, reads only) ------------------
KIND = "delegation"  # how plan names them, beside the realm's kinds (provisioner/realm/plan.py's KINDS)


@dataclass(frozen=True)
class Repair:
    """A delegation ``repair_all`` would create (missing) or fix (drifted): ``key`` names its permission
    (``adherent-<n>``, or ``adherents-root`` for the one every delegate needs); ``detail`` is what the check found."""

    action: str  # "create" | "update"
    key: str
    adherent: str | None
    detail: str

    def __str__(self) -> str:
        return f"{'+' if self.action == 'create' else '~'} {KIND} {self.key}\n    {self.detail}"

    def to_json(self) -> dict:
        return {"action": self.action, "kind": KIND, "key": self.key, "adherent": self.adherent,
                "detail": self.detail}


def plan_repairs(gw: Gateway, spec: RealmSpec, realm_exists: bool = True) -> tuple[Repair, ...]:
    """What ``permissions.repair_all(gw, deep=False)`` would do now, without writing: the findings of its check
    (``check_all``) that it repairs, but those it skips (no /adherents group or no `delegate` role for the root
    permission; an adherent without /delegates/<n>, whose delegation ``ensure_delegation`` cannot make).

    In a realm not created yet (``realm_exists`` false: the plan creates it) nothing can be read: `apply` then makes
    the root permission once the plan has made /adherents and the `delegate` role, if realm/ declares them."""
    if not realm_exists:
        declared = (any(g.name == ADHERENTS for g in spec.groups) and any(r.name == DELEGATE for r in spec.realm_roles))
        return (Repair("create", ROOT_PERMISSION, None, f"new realm: every delegate's view of {ROOT_PATH}"),) \
            if declared else ()
    out = []
    for finding in check_all(gw, deep=False):
        if finding.code not in (MISSING, DRIFTED):
            continue  # foreign or type-wide permissions: reported by `provisioner permissions`, never repaired
        if finding.target == ROOT_PERMISSION:
            repairable = gw.group_by_path(ROOT_PATH) is not None and gw.realm_role(DELEGATE) is not None
        elif finding.adherent:
            repairable = all(gw.group_by_path(p) is not None
                             for p in (adherent_path(finding.adherent), delegate_group_path(finding.adherent)))
        else:
            repairable = False
        if repairable:
            out.append(Repair("create" if finding.code == MISSING else "update", finding.target, finding.adherent,
                              finding.detail))
    return tuple(out)
