"""The advisory register (realm/advisories.yaml) and the controls the audit judges it by: pure rules, no Keycloak."""

from __future__ import annotations

import re

import pytest

from provisioner.audit.advisories import (CONTROLS, REGISTER_FILE, AdminPermission, ClientPolicy, GroupPolicy,
                                          SecurityFacts, exposures, load_register)
from provisioner.errors import RealmSpecError
from provisioner.settings import PROJECT_ROOT

REGISTER = load_register(PROJECT_ROOT / "realm")


def test_every_advisory_names_tests_that_exist():
    for advisory in REGISTER.advisories:
        assert advisory.tests, advisory.id
        for test in advisory.tests:
            path, _, name = test.partition("::")
            source = (PROJECT_ROOT / path).read_text()
            assert re.search(rf"^def {re.escape(name)}\(", source, re.M), f"{advisory.id}: {test} does not exist"


def test_ids_are_unique_and_open_ones_have_controls():
    ids = [a.id for a in REGISTER.advisories]
    assert len(ids) == len(set(ids))
    for advisory in REGISTER.advisories:
        if advisory.exposure != "fixed":
            assert advisory.controls, f"{advisory.id} is open in the pinned version: which control closes it?"


@pytest.mark.parametrize("affected, version, expected", [
    ([">=26.7,<26.7.2"], "26.7.0", True),
    ([">=26.7,<26.7.2"], "26.7.2", False),
    ([">=26.0,<26.4.15", ">=26.7,<26.7.2"], "26.5.1", False),   # a branch the ranges leave out
    ([">=26.0,<26.4.15", ">=26.7,<26.7.2"], "26.4.3", True),
    ([">=26.0,<26.8.1"], "26.7.5", True),
    ([">=26.0,<26.8.1"], "26.8.1", False),
    ([">=26.0,<27"], "not-a-version", True),                     # unknown: assume the worst
])
def test_which_versions_an_advisory_affects(affected, version, expected):
    advisory = REGISTER.advisories[0]
    from dataclasses import replace

    assert replace(advisory, affected=tuple(affected)).affects(version) is expected


@pytest.mark.parametrize("line, bad, problem", [
    ("severity: critical", "severity: severe", "severity 'severe' is not one of"),
    ("exposure: fixed", "exposure: gone", "exposure 'gone' is not one of"),
    ("controls: [keycloak-reset-off]", "controls: [no-such-control]", "unknown control(s) no-such-control"),
    ('affected: [">=26.0,<26.4.15"', 'affected: [">=twenty-six"', "bad version or range"),
])
def test_a_bad_entry_is_refused_with_its_name_and_problem(tmp_path, line, bad, problem):
    text = (PROJECT_ROOT / "realm" / REGISTER_FILE).read_text()
    (tmp_path / REGISTER_FILE).write_text(text.replace(line, bad, 1))  # in the first entry, CVE-2026-18963
    with pytest.raises(RealmSpecError) as refused:
        load_register(tmp_path)
    assert problem in str(refused.value) and "CVE-2026-18963" in str(refused.value)


# --- each control, on facts where it holds and where it fails -----------------------------------------------

CLEAN = SecurityFacts(
    keycloak_version="26.7.5",
    client_policies=(ClientPolicy("cimr-refresh-token-once", True, ("any-client",), ("cimr-refresh-token-once",)),),
    group_policies=(GroupPolicy("delegate-1234"),),
    redirect_uris={"portal": ("https://portail.cimr.ma/auth/callback",)},
    group_admin_roles={"/delegates": frozenset({"query-users", "query-groups"})},
    account_admin_roles={"service-account-provisioner": frozenset({"manage-users", "query-users", "query-groups"}),
                         "service-account-delegations": frozenset({"manage-realm"}), "1234": frozenset({"query-users"})},
    by_design={"service-account-delegations": frozenset({"manage-realm"})})

FAILING = [
    ("keycloak-reset-off", {"reset_password_allowed": True}, "(resetPasswordAllowed)"),
    ("no-role-delegation", {"permissions": (AdminPermission("roles", "Roles"),)}, "delegates roles"),
    ("no-role-delegation", {"delegate_roles": frozenset({"view-realm"})}, "the delegate role grants view-realm"),
    ("group-policies-exact", {"group_policies": (GroupPolicy("delegate-12", extends_children=True),)},
     "extends to subgroups"),
    ("group-policies-exact", {"group_policies": (GroupPolicy("g", claim="groups"),)}, "judges the token claim"),
    ("no-client-registration-conditions",
     {"client_policies": (ClientPolicy("dcr", True, ("client-updater-source-host",), ()),)}, "dcr"),
    ("client-registration-closed", {"anonymous_registration_hosts": None}, "no trusted-hosts policy"),
    ("client-registration-closed", {"anonymous_registration_hosts": ("10.0.0.1",)}, "allowed from 10.0.0.1"),
    ("no-realm-administrators", {"account_admin_roles": {"bob": frozenset({"manage-clients", "query-users"})}},
     "bob holds manage-clients"),
    ("no-identity-providers", {"identity_providers": ("google",)}, "google"),
    ("organizations-off", {"organizations_enabled": True}, "organizations are enabled"),
    ("exact-redirect-uris", {"redirect_uris": {"account": ("/realms/cimr/account/*",)}},
     "account redirects to /realms/cimr/account/*"),
    ("admin-groups-closed", {"group_admin_roles": {"/adherents/1234/x": frozenset({"view-users"})}},
     "delegates manage its members"),
    ("admin-groups-closed", {"group_admin_roles": {"/admins": frozenset({"realm-admin"})}},
     "/admins confers realm-admin: service-account-provisioner (manage-users) can join it"),
    ("no-reset-password-denial",
     {"permissions": (AdminPermission("p", "Users", ("reset-password",), denies=True),)}, "denies reset-password"),
    ("no-auth-flow-enforcer",
     {"client_policies": (*CLEAN.client_policies, ClientPolicy("p", True, ("any-client",), ("auth-flow-enforcer",)))},
     "picks a login flow"),
    ("refresh-token-once",
     {"client_policies": (ClientPolicy("cimr-refresh-token-once", False, ("any-client",),
                                       ("cimr-refresh-token-once",)),)}, "no enabled client policy"),
]


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_every_control_holds_on_a_realm_like_ours(control):
    assert CONTROLS[control](CLEAN) == []


@pytest.mark.parametrize("control, change, says", FAILING, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(FAILING)])
def test_each_control_names_what_breaks_it(control, change, says):
    from dataclasses import replace

    problems = CONTROLS[control](replace(CLEAN, **change))
    assert problems and any(says in p.en for p in problems), [p.en for p in problems]
    assert all(p.fr and p.fr != p.en for p in problems)  # said in French too


def test_every_control_can_fail():
    assert {c for c, _, _ in FAILING} == set(CONTROLS)


def test_an_affected_version_without_controls_is_open_until_upgraded():
    from dataclasses import replace

    old = replace(CLEAN, keycloak_version="26.7.0")
    found = {e.advisory.id: e.problems for e in exposures(REGISTER, old)}
    assert [p.en for p in found["CVE-2026-79651"]] == ["only an upgrade fixes it (26.4.16, 26.6.7, 26.7.4, 26.8.0)"]
    assert found["CVE-2026-18963"] == ()  # affected, and closed by our configuration (reset-credentials off)
    assert "CVE-2026-79651" not in {e.advisory.id for e in exposures(REGISTER, CLEAN)}
