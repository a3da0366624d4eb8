"""plan/apply against the real Keycloak: idempotent, drift detected (exit 3) and repaired."""

from __future__ import annotations

import json
import os
import subprocess
import sys


from provisioner import permissions
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.settings import PROJECT_ROOT
from provisioner.tree import ACTIVE, adherent_path, delegate_group_path, ensure_tree


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner", *args], env={**os.environ, **env},
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)


def test_applying_twice_leaves_nothing_to_do(realm, admin_gw, spec, test_env):
    assert plan_realm(admin_gw, spec).empty
    result = run_cli(test_env, "apply")
    assert result.returncode == 0, result.stderr
    assert "No changes" in result.stdout


def test_a_hand_edit_is_reported_as_drift_with_exit_3_and_repaired_by_apply(realm, admin_gw, spec, test_env):
    client = admin_gw.client_by_client_id("easypaiement")
    admin_gw.put(f"/clients/{client['id']}", {**client, "redirectUris": ["https://attacker.example/*"]})

    result = run_cli(test_env, "--json", "plan")
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["changes"] == [{
        "action": "update", "kind": "client", "key": "easypaiement",
        "diff": [{"field": "redirectUris", "live": ["https://attacker.example/*"],
                  "desired": ["http://127.0.0.1:8103/callback"]}]}]

    assert run_cli(test_env, "apply").returncode == 0
    assert plan_realm(admin_gw, spec).empty
    assert run_cli(test_env, "plan").returncode == 0


def test_a_weakened_login_flow_is_drift_and_is_rebuilt(realm, admin_gw, spec):
    alias = "cimr-browser-compte-adherent"
    executions = admin_gw.get(f"/authentication/flows/{alias}/executions")
    deny = executions[-1]
    admin_gw.put(f"/authentication/flows/{alias}/executions", {**deny, "requirement": "DISABLED"})
    plan = plan_realm(admin_gw, spec)
    assert [(c.action, c.key) for c in plan.changes] == [("update", alias)]
    assert plan.changes[0].diff == ((f"steps[{len(executions) - 1}].requirement", "DISABLED", "REQUIRED"),)
    apply_plan(admin_gw, spec, plan)
    assert plan_realm(admin_gw, spec).empty


def test_a_weakened_second_factor_is_drift_and_is_rebuilt_with_the_realms_binding(realm, admin_gw, spec):
    """The realm's own flow (account console...): its OTP step disabled, then Keycloak's flow bound by hand."""
    alias = "cimr-browser-default"
    otp = next(e for e in admin_gw.get(f"/authentication/flows/{alias}/executions")
               if e.get("providerId") == "auth-otp-form" and e["level"] == 3 and e["index"] == 2)
    admin_gw.put(f"/authentication/flows/{alias}/executions", {**otp, "requirement": "DISABLED"})
    plan = plan_realm(admin_gw, spec)
    assert [(c.action, c.key) for c in plan.changes] == [("update", alias)]
    apply_plan(admin_gw, spec, plan)
    assert admin_gw.get_realm()["browserFlow"] == alias and plan_realm(admin_gw, spec).empty

    admin_gw.update_realm({"browserFlow": "browser"})
    plan = plan_realm(admin_gw, spec)
    assert [(c.action, c.kind, c.diff) for c in plan.changes] == [
        ("update", "flow-binding", (("browserFlow", "browser", alias),))]
    apply_plan(admin_gw, spec, plan)
    assert plan_realm(admin_gw, spec).empty


def test_deleting_needs_allow_delete(realm, admin_gw, spec, test_env):
    admin_gw.post("/roles", {"name": "hand-made"})
    refused = run_cli(test_env, "apply")
    assert refused.returncode == 1 and "--allow-delete" in refused.stderr
    assert admin_gw.get("/roles/hand-made") is not None
    assert run_cli(test_env, "apply", "--allow-delete").returncode == 0
    assert admin_gw.get("/roles/hand-made") is None


def test_missing_admin_setting_fails_at_start_naming_it(test_env):
    env = {k: v for k, v in test_env.items() if k != "KEYCLOAK_ADMIN_PASSWORD"}
    result = subprocess.run([sys.executable, "-m", "provisioner", "plan"], env=env, capture_output=True,
                            text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 1 and "KEYCLOAK_ADMIN_PASSWORD" in result.stderr


def test_service_account_holds_only_what_realm_yaml_grants(realm, admin_gw):
    sa = admin_gw.service_account_user(admin_gw.client_uuid("provisioner"))
    mappings = admin_gw.get(f"/users/{sa['id']}/role-mappings")
    names = sorted(r["name"] for r in mappings["clientMappings"]["realm-management"]["mappings"])
    assert names == ["manage-users", "query-clients", "query-groups", "query-users", "view-clients", "view-events",
                     "view-users"]
    assert "realm-admin" not in names and "manage-realm" not in names


def test_plan_shows_the_delegation_apply_repairs_and_apply_repairs_it(realm, admin_gw, spec, test_env):
    """`apply` also repairs the adherents' Keycloak delegations (permissions.repair_all): `plan` shows it first. One
    adherent's permission deleted: `plan` reports it (exit 3), `apply` puts it back, `plan` is clean again."""
    numero = "70000001"
    ensure_tree(admin_gw, numero, {"status": [ACTIVE], "raison_sociale": ["Atelier Plan"]}, spec.catalogue())
    permissions.ensure_root(admin_gw)
    permissions.ensure_delegation(admin_gw, numero)
    try:
        clean = run_cli(test_env, "--json", "plan")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert json.loads(clean.stdout)["repairs"] == []

        admin_gw.delete_authz(admin_gw.authz_find("permission", permissions.permission_name(numero))["id"])
        result = run_cli(test_env, "--json", "plan")
        assert result.returncode == 3, result.stdout + result.stderr
        planned = json.loads(result.stdout)
        assert planned["changes"] == [] and not planned["empty"]
        assert planned["repairs"] == [{"action": "create", "kind": "delegation", "key": f"adherent-{numero}",
                                       "adherent": numero, "detail": f"adherent {numero} without its Keycloak permission"}]
        text = run_cli(test_env, "plan")
        assert text.returncode == 3
        assert f"+ delegation adherent-{numero}\n" in text.stdout
        assert "Repair: 1 Keycloak delegation(s) to create, 0 to fix." in text.stdout

        applied = run_cli(test_env, "apply")
        assert applied.returncode == 0, applied.stderr
        assert f"Repaired Keycloak delegations: {numero}" in applied.stdout
        assert permissions.check_delegation(admin_gw, numero) == []
        after = run_cli(test_env, "plan")
        assert after.returncode == 0, after.stdout + after.stderr
        assert after.stdout.splitlines() == ["No changes: the live realm matches realm/.",
                                             "Nothing to repair: every adherent has its Keycloak delegation."]
    finally:
        permissions.remove_delegation(admin_gw, numero)
        for path in (adherent_path(numero), delegate_group_path(numero)):
            admin_gw.delete_group(admin_gw.group_by_path(path).id)
