"""The plan is pure: compare only what is declared, order changes safely, refuse unsafe plans."""

from __future__ import annotations

import json

import pytest

from provisioner.errors import UnsafePlan
from provisioner.realm.desired import desired_state
from provisioner.realm.plan import Plan, compute_plan, included
from provisioner.permissions import Repair, plan_repairs
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import PROJECT_ROOT

SPEC = load_realm_spec(PROJECT_ROOT / "realm", "cimr")


def test_keycloak_defaults_are_not_drift():
    assert included({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2, "d": 3}, "e": 4})
    assert not included({"a": [1, 2]}, {"a": [1, 2, 3]})


def test_empty_live_realm_plans_only_creates_in_apply_order():
    plan = compute_plan(desired_state(SPEC), {})
    kinds = [c.kind for c in plan.changes]
    assert set(c.action for c in plan.changes) == {"create"}
    assert kinds.index("realm") == 0
    assert kinds.index("flow") < kinds.index("client") < kinds.index("client-role") < kinds.index("mapper")


def test_a_changed_field_is_reported_exactly():
    desired = desired_state(SPEC)
    live = {k: v for k, v in desired.items()}
    key = ("client", "teledeclaration")
    live[key] = {**desired[key], "redirectUris": ["http://evil/*"], "surrogateAuthRequired": False}
    plan = compute_plan(desired, live)
    assert [(c.action, c.kind, c.key) for c in plan.changes] == [("update", "client", "teledeclaration")]
    assert plan.changes[0].diff == (("redirectUris", ["http://evil/*"], ["http://127.0.0.1:8101/callback"]),)


def test_undeclared_owned_objects_are_deleted_only_when_allowed():
    desired = desired_state(SPEC)
    live = dict(desired) | {("realm-role", "stray"): {"name": "stray"}}
    plan = compute_plan(desired, live)
    assert [str(c) for c in plan.changes] == ["- realm-role stray"]
    with pytest.raises(UnsafePlan, match="--allow-delete"):
        plan.raise_if_unsafe(allow_delete=False, force=False)
    plan.raise_if_unsafe(allow_delete=True, force=False)


def test_large_plans_need_force():
    plan = compute_plan(desired_state(SPEC), {})
    with pytest.raises(UnsafePlan, match="--force"):
        plan.raise_if_unsafe(allow_delete=False, force=False, max_changes=10)


def test_the_delegations_apply_would_repair_make_the_plan_non_empty_and_are_said_like_changes():
    missing = Repair("create", "adherent-70000001", "70000001", "adherent 70000001 without its Keycloak permission")
    plan = Plan((), (missing,))
    assert not plan.empty and Plan((), ()).empty and Plan(()).empty
    plan.raise_if_unsafe(allow_delete=False, force=False, max_changes=0)  # not realm changes
    assert str(plan).splitlines() == ["No changes: the live realm matches realm/.", "+ delegation adherent-70000001",
                                      "    adherent 70000001 without its Keycloak permission",
                                      "Repair: 1 Keycloak delegation(s) to create, 0 to fix."]
    assert plan.to_json() == {"changes": [], "empty": False, "repairs": [
        {"action": "create", "kind": "delegation", "key": "adherent-70000001", "adherent": "70000001",
         "detail": "adherent 70000001 without its Keycloak permission"}]}
    assert str(Plan((), ())).endswith("\nNothing to repair: every adherent has its Keycloak delegation.")
    assert "repairs" not in Plan(()).to_json()  # not checked (the audit's drift, apply's own plan)


def test_a_new_realm_gets_the_root_permission_after_the_plan_nothing_read():
    [root] = plan_repairs(None, SPEC, realm_exists=False)
    assert (root.action, root.key, root.adherent) == ("create", "adherents-root", None)


def test_every_teleservice_refuses_users_without_its_roles():
    desired = desired_state(SPEC)
    for client in SPEC.teleservices:
        flow = desired[("flow", f"cimr-browser-{client.client_id}")]
        conditions = [s["config"]["condUserRole"] for s in flow["steps"]
                      if s.get("provider") == "conditional-user-role" and s["config"]["negate"] == "true"]
        assert conditions == [f"{client.client_id}.{r.name}" for r in client.roles]
        assert flow["steps"][-1]["provider"] == "cimr-refuse-access"  # no failed login counted
        # The restriction sits at the top level, so an SSO cookie cannot skip it.
        assert {"level": 0, "flow": "restrict", "requirement": "CONDITIONAL"} in flow["steps"]
        assert desired[("client", client.client_id)]["directAccessGrantsEnabled"] is False


def test_claims_a_delegate_could_forge_come_from_group_membership():
    """#40259: a delegate may write its users' attributes, so `adherent` and `categories` never come from them."""
    desired = desired_state(SPEC)
    for (kind, key), mapper in desired.items():
        if kind == "mapper" and key.split("/")[1] in ("adherent", "categories"):
            assert mapper["protocolMapper"] == "cimr-membership-mapper", key
            assert mapper["config"]["cimr.source"] == key.split("/")[1]
    assert desired[("mapper", "teledeclaration/user_type")]["protocolMapper"] == "oidc-usermodel-attribute-mapper"


def test_client_secrets_are_compared_but_never_shown():
    desired = desired_state(SPEC)
    live = {k: v for k, v in desired.items()}
    live[("client", "easypaiement")] = {**desired[("client", "easypaiement")], "secret": "old-secret-value"}
    plan = compute_plan(desired, live)
    assert [(c.action, c.key) for c in plan.changes] == [("update", "easypaiement")]
    shown = str(plan) + json.dumps(plan.to_json())
    assert "old-secret-value" not in shown and SPEC.client("easypaiement").secret not in shown
    assert "secret" in shown


def test_every_client_is_closed_to_grants_that_skip_our_flows():
    desired = desired_state(SPEC)
    for client in SPEC.clients:
        rep = desired[("client", client.client_id)]
        assert rep["optionalClientScopes"] == []  # no offline_access
        assert rep["implicitFlowEnabled"] is False and rep["directAccessGrantsEnabled"] is False
        assert rep["attributes"]["standard.token.exchange.enabled"] == "false"
    builtin = {key: rep for (kind, key), rep in desired.items() if kind == "builtin-client"}
    assert builtin["admin-cli"]["enabled"] is False and builtin["security-admin-console"]["enabled"] is False
    for rep in builtin.values():
        assert rep["directAccessGrantsEnabled"] is False
        assert rep["attributes"]["pkce.code.challenge.method"] == "S256"
    assert desired[("realm", SPEC.name)]["revokeRefreshToken"] is True


def test_easypaiement_tokens_get_the_adherents_confirmations_from_our_mapper_and_no_other_client_does():
    desired = desired_state(load_realm_spec(PROJECT_ROOT / "realm", "cimr"))
    for claim, json_type in (("easypaiement_confirmations", "int"), ("easypaiement_enough_validators", "boolean")):
        mapper = desired[("mapper", f"easypaiement/{claim}")]
        assert mapper["protocolMapper"] == "cimr-membership-mapper"
        assert mapper["config"]["cimr.source"] == claim and mapper["config"]["jsonType.label"] == json_type
    others = [key for kind, key in desired if kind == "mapper" and "easypaiement_" in key]
    assert sorted(others) == ["easypaiement/easypaiement_confirmations", "easypaiement/easypaiement_enough_validators"]
