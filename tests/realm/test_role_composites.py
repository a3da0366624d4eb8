"""Realm-role composites are declared in realm/, compared by plan and repaired by apply.

The `delegate` realm role is a composite of realm-management query-users and query-groups, nothing more:
any view-*/manage-* role would make Keycloak skip the fine-grained admin permissions that confine a
delegate to its own adherent (docs/security.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from provisioner.errors import RealmSpecError
from provisioner.realm.apply import apply_plan
from provisioner.realm.desired import desired_state
from provisioner.realm.plan import compute_plan, plan_realm
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import PROJECT_ROOT

SPEC = load_realm_spec(PROJECT_ROOT / "realm", "cimr")
DELEGATE_COMPOSITES = ["realm-management/query-groups", "realm-management/query-users"]


@pytest.fixture
def realm_dir(tmp_path: Path) -> Path:
    target = tmp_path / "realm"
    shutil.copytree(PROJECT_ROOT / "realm", target)
    return target


def edit_delegate(realm_dir: Path, composites) -> None:
    path = realm_dir / "realm.yaml"
    data = yaml.safe_load(path.read_text())
    data["realm_roles"]["delegate"]["composites"] = composites
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


# --- spec -------------------------------------------------------------------------------------------
def test_the_delegate_role_is_a_composite_of_the_query_roles_only():
    delegate = next(r for r in SPEC.realm_roles if r.name == "delegate")
    assert delegate.composites == (("realm-management", ("query-groups", "query-users")),)
    assert all(r.composites == () for r in SPEC.realm_roles if r.name != "delegate")


@pytest.mark.parametrize("composites, key, problem", [
    ({"realm-management": ["query-users", "manage-users"]}, "realm_roles.delegate.composites.realm-management",
     "would bypass the fine-grained admin permissions"),
    ({"realm-management": ["view-users"]}, "realm_roles.delegate.composites.realm-management",
     "would bypass the fine-grained admin permissions"),
    ({"realm-management": ["query-everything"]}, "realm_roles.delegate.composites.realm-management[0]",
     "is not declared"),
    ({"easypaiement": ["validateur"]}, "realm_roles.delegate.composites.easypaiement[0]", "is not declared"),
    (["query-users"], "realm_roles.delegate.composites", "a mapping of client id to role list"),
])
def test_bad_composites_are_refused_naming_the_key(realm_dir, composites, key, problem):
    edit_delegate(realm_dir, composites)
    with pytest.raises(RealmSpecError) as err:
        load_realm_spec(realm_dir, "cimr")
    assert (err.value.file, err.value.key) == ("realm.yaml", key)
    assert problem in err.value.problem


# --- plan (pure) --------------------------------------------------------------------------------------
def test_composites_are_a_declared_field_of_every_realm_role():
    desired = desired_state(SPEC)
    assert desired[("realm-role", "delegate")]["composites"] == DELEGATE_COMPOSITES
    assert desired[("realm-role", "agent")]["composites"] == []


@pytest.mark.parametrize("live_composites, diff", [
    ([], ("composites", [], DELEGATE_COMPOSITES)),
    (DELEGATE_COMPOSITES + ["realm-management/manage-users"],
     ("composites", DELEGATE_COMPOSITES + ["realm-management/manage-users"], DELEGATE_COMPOSITES)),
    (["realm-management/query-users"], ("composites", ["realm-management/query-users"], DELEGATE_COMPOSITES)),
])
def test_a_missing_or_extra_composite_is_drift(live_composites, diff):
    desired = desired_state(SPEC)
    live = dict(desired)
    live[("realm-role", "delegate")] = {**desired[("realm-role", "delegate")], "composite": True, "id": "x",
                                        "composites": live_composites}
    plan = compute_plan(desired, live)
    assert [(c.action, c.kind, c.key) for c in plan.changes] == [("update", "realm-role", "delegate")]
    assert plan.changes[0].diff == (diff,)


# --- against Keycloak ---------------------------------------------------------------------------------
def test_the_applied_delegate_role_carries_exactly_the_query_roles(realm, admin_gw, spec):
    role = admin_gw.get("/roles/delegate")
    found = admin_gw.get(f"/roles-by-id/{role['id']}/composites")
    assert sorted(r["name"] for r in found) == ["query-groups", "query-users"]
    assert plan_realm(admin_gw, spec).empty  # idempotent: composites read back in the declared shape


def test_a_composite_added_by_hand_is_drift_and_apply_removes_it(realm, admin_gw, spec):
    rm = admin_gw.client_uuid("realm-management")
    manage_users = admin_gw.get(f"/clients/{rm}/roles/manage-users")
    admin_gw.post("/roles/delegate/composites", [manage_users])
    plan = plan_realm(admin_gw, spec)
    assert [str(c).splitlines()[0] for c in plan.changes] == ["~ realm-role delegate"]
    assert plan.changes[0].diff == (("composites", sorted(DELEGATE_COMPOSITES + ["realm-management/manage-users"]),
                                     DELEGATE_COMPOSITES),)
    apply_plan(admin_gw, spec, plan)
    assert plan_realm(admin_gw, spec).empty
    names = sorted(r["name"] for r in admin_gw.get("/roles/delegate/composites"))
    assert names == ["query-groups", "query-users"]
