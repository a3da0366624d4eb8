"""Keycloak itself confines each delegate to its own adherent (fine-grained admin permissions v2).

These tests bypass our code: a real delegate token of adherent A (password grant on the tests' own client,
`password_grant_client`, never on the real clients) calls the Admin API directly. Every call on adherent B's users
and groups is refused by Keycloak; the same call on A's succeeds. Then the known gaps (docs/security.md),
each asserting what Keycloak does TODAY, so that an upgrade that changes it fails a test and is noticed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import requests

from devstack.builders import DELEGATE_PASSWORD, make_user
from provisioner import permissions
from provisioner.tenancy import Actor
from tests.oidc_flow import PASSWORD_CLIENT, password_token



def fresh_password() -> str:
    """A new valid password each time (the realm keeps a password history)."""
    return f"Chg{uuid.uuid4().int % 10**6:06d}"


@dataclass
class Company:
    numero: str
    token: str                  # its delegate's own access token
    delegate_id: str
    users: dict[str, str]       # login -> id (validateur, utilisateur)
    groups: dict[str, str]      # path relative to /adherents/<n> ("" = top) -> id


class Api:
    """Raw Admin API calls of the session realm with one bearer token (no code of ours in between)."""

    def __init__(self, settings, token: str):
        self.base = f"{settings.keycloak_url}/admin/realms/{settings.realm}"
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, json=None, **params) -> requests.Response:
        return requests.request(method, self.base + path, json=json, params=params, headers=self.headers, timeout=30)


def delegate_token(settings, username: str, password: str = DELEGATE_PASSWORD) -> str:
    return password_token(settings, username, password)


def build_company(settings, admin_gw, service_gw, services, make_adherent) -> Company:
    numero = make_adherent()  # the real approval: tree, delegation, delegate enabled
    agent = Actor.agent("agent.confinement")
    users = {}
    for teleservice, powers, key in (("easypaiement", ("validateur",), "validateur"),
                                     ("compte-adherent", (), "utilisateur")):
        user = make_user(service_gw, services, agent, numero, teleservice, powers)
        users[key] = user.id
    top = admin_gw.group_by_path(f"/adherents/{numero}")
    groups = {g.path[len(top.path):].lstrip("/"): g.id for g in admin_gw.subtree(top)}
    delegate = admin_gw.user_by_username(numero)
    return Company(numero, delegate_token(settings, numero), delegate.id, users, groups)


@pytest.fixture(scope="module")
def companies(settings, admin_gw, service_gw, services, make_adherent, password_grant_client) -> tuple[Company, Company]:
    return (build_company(settings, admin_gw, service_gw, services, make_adherent),
            build_company(settings, admin_gw, service_gw, services, make_adherent))


@pytest.fixture(scope="module")
def a(companies) -> Company:
    return companies[0]


@pytest.fixture(scope="module")
def b(companies) -> Company:
    return companies[1]


@pytest.fixture
def as_a(settings, a) -> Api:
    return Api(settings, a.token)


def new_user_body(numero: str, leaf: str) -> dict:
    login = f"x{uuid.uuid4().hex[:8]}"
    return {"username": login, "enabled": True, "firstName": "Test", "lastName": "Attack",
            "email": f"{login}@example.ma", "groups": [f"/adherents/{numero}/{leaf}"],
            "attributes": {"adherent": [numero], "teleservice": [leaf.split("/")[0]]},
            "credentials": [{"type": "password", "value": "Init2026", "temporary": True}]}


# --- the attack matrix: (name, call(api, target company, admin rep of the target user)) ------------------
VALIDATEUR, UTILISATEUR = "easypaiement/validateur", "compte-adherent/utilisateur"
ATTACKS = [
    ("read user", lambda api, c: api("GET", f"/users/{c.users['validateur']}"), 200),
    ("read user's groups", lambda api, c: api("GET", f"/users/{c.users['validateur']}/groups"), 200),
    ("read credentials", lambda api, c: api("GET", f"/users/{c.users['validateur']}/credentials"), 200),
    ("read sessions", lambda api, c: api("GET", f"/users/{c.users['validateur']}/sessions"), 200),
    ("update user", lambda api, c: api("PUT", f"/users/{c.users['utilisateur']}", {"firstName": "Pirate"}), 204),
    ("disable user", lambda api, c: api("PUT", f"/users/{c.users['utilisateur']}", {"enabled": False}), 204),
    ("reset password", lambda api, c: api("PUT", f"/users/{c.users['utilisateur']}/reset-password",
                                          {"type": "password", "value": fresh_password(), "temporary": True}), 204),
    ("log out user", lambda api, c: api("POST", f"/users/{c.users['utilisateur']}/logout"), 204),
    ("unlock user", lambda api, c: api("DELETE", f"/attack-detection/brute-force/users/{c.users['utilisateur']}"),
     204),
    ("add user to a group", lambda api, c: api("PUT", f"/users/{c.users['utilisateur']}/groups/"
                                                      f"{c.groups[VALIDATEUR]}"), 204),
    ("create user in a group", lambda api, c: api("POST", "/users", new_user_body(c.numero, UTILISATEUR)), 201),
    ("read group", lambda api, c: api("GET", f"/groups/{c.groups['']}"), 200),
    ("read group by path", lambda api, c: api("GET", f"/group-by-path/adherents/{c.numero}"), 200),
    ("list group members", lambda api, c: api("GET", f"/groups/{c.groups[VALIDATEUR]}/members"), 200),
    ("list subgroups", lambda api, c: api("GET", f"/groups/{c.groups['']}/children"), 200),
]


@pytest.mark.parametrize("name, attack, allowed", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_keycloak_refuses_a_delegate_every_call_on_another_adherent(settings, a, b, name, attack, allowed):
    resp = attack(Api(settings, a.token), b)
    assert resp.status_code == 403, f"{name} on B with A's token: {resp.status_code} {resp.text[:200]}"


@pytest.mark.parametrize("name, attack, allowed", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_the_same_calls_succeed_on_the_delegates_own_adherent(settings, admin_gw, a, name, attack, allowed):
    resp = attack(Api(settings, a.token), a)
    assert resp.status_code == allowed, f"{name} on A with A's token: {resp.status_code} {resp.text[:200]}"
    admin_gw.update_user(a.users["utilisateur"], {"enabled": True})  # undo "disable" for the next rows


def test_moving_an_own_user_into_another_adherents_group_is_refused(as_a, a, b):
    assert as_a("PUT", f"/users/{a.users['utilisateur']}/groups/{b.groups[VALIDATEUR]}").status_code == 403
    assert as_a("PUT", f"/users/{b.users['utilisateur']}/groups/{a.groups[VALIDATEUR]}").status_code == 403
    body = new_user_body(a.numero, UTILISATEUR)
    body["groups"].append(f"/adherents/{b.numero}/{VALIDATEUR}")
    assert as_a("POST", "/users", body).status_code == 403
    assert as_a("GET", "/users", username=body["username"], exact="true").json() == []  # nothing created


@pytest.mark.parametrize("groups", [[], ["/delegates/{a}"], ["/delegates/{b}"], ["/agents"], ["/adherents"]],
                         ids=["no group", "own delegates group", "other delegates group", "agents", "root"])
def test_a_delegate_cannot_create_users_outside_its_tree(as_a, a, b, groups):
    body = new_user_body(a.numero, UTILISATEUR)
    body["groups"] = [g.format(a=a.numero, b=b.numero) for g in groups]
    assert as_a("POST", "/users", body).status_code == 403


@pytest.mark.parametrize("group", ["/agents", "/auditors", "/delegates/{a}"])
def test_a_delegate_cannot_escalate_itself_or_a_user_into_staff_groups(admin_gw, as_a, a, group):
    gid = admin_gw.group_by_path(group.format(a=a.numero)).id
    assert as_a("PUT", f"/users/{a.users['utilisateur']}/groups/{gid}").status_code == 403
    assert as_a("PUT", f"/users/{a.delegate_id}/groups/{gid}").status_code == 403


def test_listing_shows_only_the_delegates_own_users(as_a, a, b):
    listed = {u["id"] for u in as_a("GET", "/users", max=1000).json()}
    assert set(a.users.values()) <= listed
    assert not listed & set(b.users.values())
    assert as_a("GET", "/users", search=b.numero).json() == [] or all(
        u["id"] not in b.users.values() for u in as_a("GET", "/users", search=b.numero).json())
    assert as_a("GET", "/users", q=f"adherent:{b.numero}").json() == []
    found = as_a("GET", "/groups", search=b.numero).json()
    assert b.numero not in str(found)


@pytest.mark.parametrize("path", ["/roles", "/clients", "/events", "/admin-events", "/users/{self}",
                                  "/groups/{adherents}/members", "/groups/{delegates}",
                                  "/attack-detection/brute-force/users/{b_user}"])
def test_a_delegate_reads_nothing_outside_its_tree(admin_gw, as_a, a, b, path):
    path = path.format(self=a.delegate_id, adherents=admin_gw.group_by_path("/adherents").id,
                       delegates=admin_gw.group_by_path("/delegates").id, b_user=b.users["validateur"])
    assert as_a("GET", path).status_code == 403


def test_the_delegate_holds_only_the_query_roles(settings, a):
    import base64
    import json

    payload = a.token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert sorted(claims["resource_access"]["realm-management"]["roles"]) == ["query-groups", "query-users"]


def test_agents_and_automation_keep_working_on_every_adherent(service_gw, a, b):
    """The provisioner's service account holds manage-users: Keycloak skips the per-adherent permissions."""
    for company in (a, b):
        assert service_gw.user(company.users["validateur"]) is not None
        service_gw.update_user(company.users["utilisateur"], {"enabled": True})


def test_admin_events_name_the_delegate_as_the_actor(settings, admin_gw, as_a, a):
    assert as_a("PUT", f"/users/{a.users['utilisateur']}", {"firstName": "Evenement"}).status_code == 204
    events = admin_gw.get("/admin-events", resourceTypes="USER", operationTypes="UPDATE", max=20) or []
    mine = [e for e in events if e.get("resourcePath") == f"users/{a.users['utilisateur']}"]
    assert mine and mine[0]["authDetails"]["userId"] == a.delegate_id


def test_leaving_the_delegates_group_ends_the_access_at_once(settings, admin_gw, as_a, a):
    """The group policy is evaluated on every call: the same token is refused as soon as the membership ends."""
    group = admin_gw.group_by_path(f"/delegates/{a.numero}")
    admin_gw.remove_from_group(a.delegate_id, group.id)
    try:
        assert as_a("GET", f"/users/{a.users['validateur']}").status_code == 403
    finally:
        admin_gw.add_to_group(a.delegate_id, group.id)
    assert as_a("GET", f"/users/{a.users['validateur']}").status_code == 200


# --- each scope is needed (fewer do not suffice) -----------------------------------------------------------
@pytest.mark.parametrize("scope, call", [
    ("view", lambda api, c: api("GET", f"/group-by-path/adherents/{c.numero}/{VALIDATEUR}")),
    ("view-members", lambda api, c: api("GET", f"/users/{c.users['validateur']}")),
    ("manage-members", lambda api, c: api("PUT", f"/users/{c.users['utilisateur']}/reset-password",
                                          {"type": "password", "value": fresh_password(), "temporary": True})),
    ("manage-membership", lambda api, c: api("POST", "/users", new_user_body(c.numero, UTILISATEUR))),
    ("manage-membership-of-members",
     lambda api, c: api("PUT", f"/users/{c.users['utilisateur']}/groups/{c.groups[VALIDATEUR]}")),
])
def test_every_scope_is_needed_by_a_delegate_action(settings, admin_gw, as_a, a, scope, call):
    writer = permissions.writer(settings)
    delegation = permissions.ensure_delegation(writer, a.numero)
    others = [s for s in permissions.SCOPES if s != scope]
    writer.update_groups_permission(delegation.permission_id, permissions.permission_name(a.numero),
                                    list(delegation.group_ids), others, [delegation.policy_id])
    try:
        assert call(as_a, a).status_code == 403
    finally:
        permissions.ensure_delegation(writer, a.numero)
    assert call(as_a, a).status_code in (200, 201, 204)


# --- check / repair (the audit finding "adherent without its Keycloak permission") ---------------------------
def test_a_delegate_sees_the_root_itself_and_under_it_only_its_own_adherent(admin_gw, as_a, a, b):
    root = admin_gw.group_by_path("/adherents").id
    shown = as_a("GET", f"/groups/{root}").json()
    assert shown["attributes"] == {} and shown["subGroupCount"] == 1  # how many adherents there are: not told
    assert shown["access"] == {"view": True, "viewMembers": False, "manageMembers": False, "manage": False,
                               "manageMembership": False}
    assert [g["name"] for g in as_a("GET", f"/groups/{root}/children", max=1000).json()] == [a.numero]
    assert as_a("GET", f"/group-by-path/adherents/{b.numero}").status_code in (403, 404)
    assert as_a("GET", f"/groups/{root}/members").status_code == 403
    assert as_a("PUT", f"/groups/{root}", {"name": "adherents", "attributes": {"x": ["y"]}}).status_code == 403
    assert as_a("POST", f"/groups/{root}/children", {"name": "99999991"}).status_code == 403
    assert as_a("PUT", f"/users/{a.users['utilisateur']}/groups/{root}").status_code == 403
    assert as_a("DELETE", f"/groups/{root}").status_code == 403


def clear_realm_cache(settings, admin_gw) -> None:
    """Empty every node's cache of realm objects (groups, roles, clients), as a restart or evictions do."""
    resp = requests.post(f"{settings.keycloak_url}/admin/realms/{settings.realm}/clear-realm-cache", timeout=30,
                         headers=admin_gw.auth_headers())
    assert resp.status_code == 204, resp.text


def test_a_delegate_names_its_groups_by_path_on_a_cold_keycloak_cache(settings, admin_gw, as_a, a):
    """Keycloak 26.7 looks a path up filtered by what the caller may view when it is not cached: without the root
    permission a delegate's own creation fails (what it does TODAY, so that an upgrade that changes it is noticed);
    the audit reports the permission missing and `apply`'s repair puts it back."""
    writer = permissions.writer(settings)
    writer.delete_authz(admin_gw.authz_find("permission", permissions.ROOT_PERMISSION)["id"])
    try:
        clear_realm_cache(settings, admin_gw)
        assert as_a("POST", "/users", new_user_body(a.numero, UTILISATEUR)).status_code == 403
        assert as_a("GET", f"/group-by-path/adherents/{a.numero}").status_code == 404
        assert [(f.code, f.target) for f in permissions.check_all(admin_gw) if f.adherent is None] == [
            (permissions.MISSING, permissions.ROOT_PERMISSION)]
    finally:
        assert permissions.ROOT_PERMISSION in permissions.repair_all(writer, deep=False)
    clear_realm_cache(settings, admin_gw)
    assert as_a("POST", "/users", new_user_body(a.numero, UTILISATEUR)).status_code == 201
    assert as_a("GET", f"/group-by-path/adherents/{a.numero}").status_code == 200


def test_a_root_permission_granting_more_than_view_is_drift_and_repaired(settings, admin_gw):
    writer = permissions.writer(settings)
    root = admin_gw.authz_find("permission", permissions.ROOT_PERMISSION)
    details = admin_gw.permission_details(root["id"])
    writer.update_groups_permission(root["id"], permissions.ROOT_PERMISSION, details["resources"],
                                    ["view", "view-members"], details["policies"])
    [finding] = permissions.check_root(admin_gw)
    assert finding.code == permissions.DRIFTED and "view-members" in finding.detail
    assert permissions.ROOT_PERMISSION in permissions.repair_all(writer, deep=False)
    assert permissions.check_root(admin_gw) == []


def test_an_approved_adherent_has_exactly_its_permission(settings, admin_gw, a):
    assert permissions.check_delegation(admin_gw, a.numero) == []
    details = admin_gw.permission_details(admin_gw.authz_find("permission", f"adherent-{a.numero}")["id"])
    assert details["resources"] == sorted(a.groups.values()) and len(a.groups) == 11
    assert details["scopes"] == sorted(permissions.SCOPES)


def test_a_missing_permission_is_found_and_repaired(settings, admin_gw, a, as_a):
    writer = permissions.writer(settings)
    assert permissions.remove_delegation(writer, a.numero)
    assert as_a("GET", f"/users/{a.users['validateur']}").status_code == 403
    found = permissions.check_all(admin_gw)
    assert [(f.code, f.adherent) for f in found if f.adherent == a.numero] == [(permissions.MISSING, a.numero)]
    assert a.numero in permissions.repair_all(writer)
    assert permissions.check_delegation(admin_gw, a.numero) == []
    assert as_a("GET", f"/users/{a.users['validateur']}").status_code == 200


def test_a_permission_missing_a_subgroup_is_drift(settings, admin_gw, a):
    writer = permissions.writer(settings)
    delegation = permissions.ensure_delegation(writer, a.numero)
    writer.update_groups_permission(delegation.permission_id, permissions.permission_name(a.numero),
                                    [a.groups[""]], list(permissions.SCOPES), [delegation.policy_id])
    [finding] = permissions.check_delegation(admin_gw, a.numero)
    assert finding.code == permissions.DRIFTED and "resources" in finding.detail
    permissions.ensure_delegation(writer, a.numero)
    assert permissions.check_delegation(admin_gw, a.numero) == []


def test_the_delegations_client_cannot_touch_users(settings, a):
    """It holds manage-realm (to write permissions) and only reads users."""
    writer = permissions.writer(settings)
    with pytest.raises(Exception) as err:
        writer.set_password(a.users["utilisateur"], fresh_password(), True)
    assert type(err.value).__name__ == "Forbidden"


def test_the_provisioner_service_account_cannot_write_permissions(service_gw, a):
    with pytest.raises(Exception) as err:
        permissions.ensure_delegation(service_gw, a.numero)
    assert type(err.value).__name__ == "Forbidden"


# --- UNANIMOUS: another permission over the same users denies the delegate; the audit reports it ----------------
def test_an_overlapping_permission_denies_the_delegate_and_is_reported(settings, admin_gw, as_a, a):
    writer = permissions.writer(settings)
    policy = writer.create_policy("group", "someone-else", [admin_gw.group_by_path("/agents").id])
    perm = writer.post_json(writer.authz_path("/permission/scope"),
                            {"name": "all-users-for-someone", "resourceType": "Users", "resources": [],
                             "scopes": ["view", "manage"], "policies": [policy]})["id"]
    try:
        assert as_a("GET", f"/users/{a.users['validateur']}").status_code == 403  # both must grant
        codes = {(f.code, f.target) for f in permissions.check_all(admin_gw)}
        assert (permissions.FOREIGN, "all-users-for-someone") in codes
        assert (permissions.TYPE_WIDE, "all-users-for-someone") in codes
    finally:
        writer.delete_authz(perm)
        writer.delete_authz(policy)
    assert as_a("GET", f"/users/{a.users['validateur']}").status_code == 200


# --- known Keycloak gaps (docs/security.md): assert today's behaviour so that an upgrade is noticed -----------
def test_keycloak_gap_40259_delegate_can_rewrite_the_adherent_attribute(settings, admin_gw, as_a, a, b):
    """#40259: user-profile "admin" means any Admin API caller; the delegate may set adherent=<B> on its own user,
    and that attribute is the `adherent` claim of the user's tokens. If this starts failing, Keycloak closed the
    gap: update docs/security.md (our audit finding stays as a second wall)."""
    uid = a.users["utilisateur"]
    rep = admin_gw.user_rep(uid)
    rep.pop("access", None)
    rep["attributes"]["adherent"] = [b.numero]
    assert as_a("PUT", f"/users/{uid}", rep).status_code == 204, "Keycloak now refuses it: #40259 closed?"
    try:
        assert admin_gw.user(uid).attr("adherent") == b.numero
        username = admin_gw.user(uid).username
        found = permissions.attribute_findings(admin_gw, a.numero)
        assert [(f.code, f.target) for f in found] == [(permissions.ATTRIBUTE, username)]
        from dataclasses import replace

        from provisioner.audit.collect import audit_realm
        report = audit_realm(replace(settings, auditor_client_secret="dev-auditor-secret"), with_drift=False)
        assert ("foreign-adherent", username) in {(f.kind, f.subject) for f in report.findings}
    finally:
        rep["attributes"]["adherent"] = [a.numero]
        admin_gw.update_user(uid, rep)
    assert permissions.attribute_findings(admin_gw, a.numero) == []


def test_keycloak_gap_38806_no_tenant_scoped_role_mapping_so_delegates_get_none(settings, admin_gw, as_a, a):
    """#38806: role mapping cannot be scoped to a group tree, so a delegate may map no role at all, even on its
    own user; powers are group memberships. If this starts succeeding, review docs/security.md at once."""
    uid = a.users["utilisateur"]
    client = admin_gw.client_uuid("easypaiement")
    role = admin_gw.client_role(client, "validateur")
    assert as_a("POST", f"/users/{uid}/role-mappings/clients/{client}", [role]).status_code == 403
    assert as_a("POST", f"/users/{uid}/role-mappings/realm", [admin_gw.get("/roles/agent")]).status_code == 403
    assert as_a("POST", f"/users/{uid}/impersonation").status_code == 403


def test_keycloak_gap_manage_members_includes_deleting_users(settings, as_a, a):
    """FGAP v2 has no separate delete scope: a delegate may delete its own adherent's users (never B's)."""
    body = new_user_body(a.numero, UTILISATEUR)
    created = as_a("POST", "/users", body)
    assert created.status_code == 201
    uid = created.headers["Location"].rsplit("/", 1)[1]
    assert as_a("DELETE", f"/users/{uid}").status_code == 204


def test_keycloak_regression_52727_role_mappings_hide_realm_roles_and_no_job_of_ours_reads_them(admin_gw, service_gw,
                                                                                                 as_a, a):
    """Since 26.7.3 (#52727, #52753, open in 26.7.5): GET /users/{id}/role-mappings omits realm roles for a caller who
    may not view them (no view-realm): a delegate, and our provisioner account too, get {}. No job of ours reads it
    with such a caller: a person's roles come from /role-mappings/realm/composite (still whole), plan/apply reads the
    service accounts' roles as the master admin, a delegate's pages read our extension's listing. If this starts to
    answer the realm roles again, the regression is fixed upstream: say so in docs/keycloak-version.md."""
    from provisioner.tenancy import DELEGATE
    from provisioner.context import resolve_actor

    user = a.users["validateur"]
    assert admin_gw.user_role_mappings(user)["realmMappings"]  # its default roles, at least
    assert as_a("GET", f"/users/{user}/role-mappings").json() == {}
    assert service_gw.user_role_mappings(a.delegate_id) == {}
    assert "delegate" in service_gw.effective_realm_roles(a.delegate_id)
    assert resolve_actor(service_gw, a.numero) == Actor(a.numero, DELEGATE, a.numero)


def test_a_user_in_two_adherents_is_managed_by_neither_delegate(settings, admin_gw, as_a, a, b):
    """Keycloak requires every permission covering the user to grant (UNANIMOUS): A's and B's permissions both
    cover it, so each delegate is refused (fails closed). Our rule (one adherent per user) and the audit finding
    keep it from happening; if a delegate is ever allowed here, Keycloak changed: review docs/security.md."""
    b_user = b.users["utilisateur"]
    admin_gw.add_to_group(b_user, a.groups[UTILISATEUR])
    try:
        for company in (a, b):
            api = Api(settings, company.token)
            assert api("PUT", f"/users/{b_user}/reset-password",
                       {"type": "password", "value": fresh_password(), "temporary": True}).status_code == 403
            assert api("GET", f"/users/{b_user}").status_code == 403
        codes = {(f.code, f.target) for f in permissions.attribute_findings(admin_gw, a.numero)}
        username = admin_gw.user(b_user).username
        assert (permissions.TWO_ADHERENTS, username) in codes and (permissions.ATTRIBUTE, username) in codes
    finally:
        admin_gw.remove_from_group(b_user, a.groups[UTILISATEUR])
    assert Api(settings, b.token)("GET", f"/users/{b_user}").status_code == 200


def test_deleting_an_adherents_groups_leaves_no_type_wide_permission(settings, admin_gw, make_adherent):
    """A permission with no resources would cover EVERY group: Keycloak deletes it with its last group;
    remove_delegation cleans the policy."""
    numero = make_adherent()
    writer = permissions.writer(settings)
    admin_gw.delete_group(admin_gw.group_by_path(f"/adherents/{numero}").id)
    assert admin_gw.authz_find("permission", permissions.permission_name(numero)) is None
    assert permissions.remove_delegation(writer, numero)  # the policy was still there
    assert admin_gw.authz_find("policy", permissions.policy_name(numero)) is None
    assert not [f for f in permissions.check_all(admin_gw) if f.code == permissions.TYPE_WIDE]


def test_the_security_audit_reports_an_adherent_without_its_permission(settings, admin_gw, make_adherent):
    """provisioner audit (read-only auditor account) turns permissions.check_all into findings."""
    from dataclasses import replace

    from provisioner.audit.collect import audit_realm

    numero = make_adherent()
    writer = permissions.writer(settings)
    permissions.remove_delegation(writer, numero)
    try:
        report = audit_realm(replace(settings, auditor_client_secret="dev-auditor-secret"), with_drift=False)
        mine = {(f.severity, f.kind, f.subject) for f in report.findings if f.adherent == numero}
        assert ("high", "delegation-missing", permissions.permission_name(numero)) in mine
    finally:
        permissions.ensure_delegation(writer, numero)


def test_cli_permissions_reports_with_exit_3_and_apply_repairs(settings, admin_gw, make_adherent, test_env):
    import json
    import os
    import subprocess
    import sys

    from provisioner.settings import PROJECT_ROOT

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "provisioner", *args], env={**os.environ, **test_env},
                              capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)

    numero = make_adherent()
    permissions.remove_delegation(permissions.writer(settings), numero)
    result = run("--json", "permissions")
    assert result.returncode == 3, result.stderr
    assert {"code": "delegation-missing", "adherent": numero, "target": f"adherent-{numero}",
            "detail": f"adherent {numero} without its Keycloak permission"} in json.loads(result.stdout)
    test_client = admin_gw.client_by_client_id(PASSWORD_CLIENT)  # not in realm/: apply would want to delete it
    admin_gw.delete(f"/clients/{test_client['id']}")
    try:
        result = run("--json", "apply")
    finally:
        admin_gw.post("/clients", {k: v for k, v in test_client.items() if k != "id"})
    assert result.returncode == 0, result.stderr
    assert numero in json.loads(result.stdout)["delegations_repaired"]
    assert permissions.check_delegation(admin_gw, numero) == []


def test_repair_skips_an_adherent_without_a_delegates_group(settings, admin_gw):
    """Adherent trees planted without /delegates/<n> (no delegate to confine) are reported, not a crash."""
    parent = admin_gw.group_by_path("/adherents")
    numero = str(uuid.uuid4().int % 10**8).rjust(8, "3")
    gid = admin_gw.create_group(numero, parent.id)
    try:
        writer = permissions.writer(settings)
        assert numero not in permissions.repair_all(writer)
        assert [f.code for f in permissions.check_delegation(admin_gw, numero)] == [permissions.MISSING]
    finally:
        admin_gw.delete_group(gid)
