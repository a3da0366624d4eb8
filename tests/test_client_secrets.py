"""`provisioner client rotate-secret`: Keycloak refuses the old secret at the token endpoint and takes the new one;
the secret is shown once (or written to a 0600 file), never to the trail; the variable to update is named; an
unknown client or a bad --output is refused before anything changes."""

from __future__ import annotations

import json
import stat

import pytest
import requests
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner.realm.plan import plan_realm
from provisioner.trail import events


@pytest.fixture
def run(test_env):
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), env=test_env, catch_exceptions=False)


def token_response(settings, client_id: str, secret: str) -> requests.Response:
    return requests.post(f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
                         data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
                         timeout=30)


def live_secret(admin_gw, client_id: str) -> str:
    return admin_gw.get(f"/clients/{admin_gw.client_uuid(client_id)}/client-secret")["value"]


@pytest.fixture
def restore_secret(admin_gw, spec):
    """Put realm/'s secrets back after the test: other tests of the session use them."""
    rotated = []
    yield rotated.append
    for client_id in rotated:
        uuid = admin_gw.client_uuid(client_id)
        admin_gw.update_client(uuid, {**admin_gw.client_rep(uuid), "secret": spec.client(client_id).secret})


def test_after_rotation_the_old_secret_is_refused_and_the_new_one_works(run, settings, spec, services, admin_gw,
                                                                        restore_secret):
    old = spec.client("auditor").secret
    assert token_response(settings, "auditor", old).status_code == 200
    restore_secret("auditor")
    out = run("client", "rotate-secret", "auditor")
    assert out.exit_code == 0, out.output
    new = live_secret(admin_gw, "auditor")
    assert new != old and out.stdout.count(new) == 1  # printed once
    assert "AUDITOR_CLIENT_SECRET" in out.stdout and "REALM_VAR_AUDITOR_CLIENT_SECRET" in out.stdout

    refused = token_response(settings, "auditor", old)
    assert refused.status_code == 401 and "Invalid client" in refused.json()["error_description"]
    granted = token_response(settings, "auditor", new)
    assert granted.status_code == 200 and granted.json()["access_token"]

    entry = events(services.db, action="client.rotate_secret", target="client:auditor")[0]
    assert (entry.actor, entry.actor_role, entry.outcome) == (settings.admin_user, "admin", "ok")
    assert entry.after == {"secret_rotated": True, "secret_variable": "AUDITOR_CLIENT_SECRET"}
    assert new not in json.dumps([entry.before, entry.after, entry.detail])
    # Why the variable must be updated: realm/ still holds the old secret, so plan sees drift (without showing it).
    plan = plan_realm(admin_gw, spec)
    assert any(c.key == "auditor" and "secret" in [f for f, _, _ in c.diff] for c in plan.changes)
    assert new not in str(plan) and new not in json.dumps(plan.to_json())


def test_rotation_to_a_file_writes_it_mode_0600_and_prints_no_secret(run, settings, admin_gw, tmp_path,
                                                                     restore_secret):
    target = tmp_path / "eliquidation.secret"
    restore_secret("eliquidation")
    out = run("--json", "client", "rotate-secret", "eliquidation", "--output", str(target))
    assert out.exit_code == 0, out.output
    new = live_secret(admin_gw, "eliquidation")
    assert target.read_text().strip() == new and stat.S_IMODE(target.stat().st_mode) == 0o600
    result = json.loads(out.stdout)
    assert new not in out.output and "secret" not in result
    assert result["variable"] == "ELIQUIDATION_CLIENT_SECRET" and result["secret_file"] == str(target)


def test_unknown_client_or_existing_output_file_is_refused_and_nothing_rotates(run, admin_gw, services, tmp_path):
    before = live_secret(admin_gw, "teledeclaration")
    out = run("client", "rotate-secret", "teledeclarations")
    assert out.exit_code == 1
    assert "client_id: « teledeclarations » n'est pas un client confidentiel de realm/" in out.stderr
    assert "is not a confidential client of realm/ (one of: auditor, compte-adherent" in out.stderr
    assert events(services.db, action="client.rotate_secret", target="client:teledeclarations")[0].outcome == "refused"
    assert run("client", "rotate-secret", "account").exit_code == 1  # Keycloak's own clients are not ours to rotate

    existing = tmp_path / "already-there"
    existing.write_text("keep me\n")
    out = run("client", "rotate-secret", "teledeclaration", "--output", str(existing))
    assert out.exit_code == 2 and "the file exists" in out.output
    out = run("client", "rotate-secret", "teledeclaration", "--output", str(tmp_path / "no-such-dir" / "s"))
    assert out.exit_code == 2 and "not a directory" in out.output
    assert existing.read_text() == "keep me\n" and live_secret(admin_gw, "teledeclaration") == before
