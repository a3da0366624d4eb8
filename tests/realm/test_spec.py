"""realm/ YAML is checked before anything is applied: file, key and problem are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from provisioner.errors import RealmSpecError
from provisioner.realm.schema import load_realm_spec
from provisioner.settings import PROJECT_ROOT


@pytest.fixture
def realm_dir(tmp_path: Path) -> Path:
    target = tmp_path / "realm"
    shutil.copytree(PROJECT_ROOT / "realm", target)
    return target


def edit(realm_dir: Path, file: str, change) -> None:
    path = realm_dir / file
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def test_the_shipped_realm_loads():
    spec = load_realm_spec(PROJECT_ROOT / "realm", "cimr")
    assert [c.client_id for c in spec.teleservices] == ["teledeclaration", "compte-adherent", "easypaiement",
                                                        "eliquidation"]
    assert [r.name for r in spec.client("easypaiement").roles] == ["ordonnateur", "validateur"]
    assert spec.password_policy.to_keycloak().startswith("length(5) and maxLength(10) and regexPattern(")


@pytest.mark.parametrize("file, change, key, problem", [
    ("realm.yaml", lambda d: d["realm"].update(colour="orange"), "realm.colour", "unknown key"),
    ("realm.yaml", lambda d: d["realm"]["password_policy"].update(min_length="five"),
     "realm.password_policy.min_length", "must be a whole number"),
    ("realm.yaml", lambda d: d["realm"]["password_policy"].update(max_length=3),
     "realm.password_policy.max_length", "must not be below min_length"),
    ("realm.yaml", lambda d: d["realm"]["password_policy"].update(pattern="^[a-z"),
     "realm.password_policy.pattern", "not a valid regular expression"),
    ("realm.yaml", lambda d: d["realm"]["brute_force"].update(enabled="yes"),
     "realm.brute_force.enabled", "must be true or false"),
    ("realm.yaml", lambda d: d["realm"].update(default_locale="de"), "realm.default_locale", "is not one of"),
    ("realm.yaml", lambda d: d["realm"].pop("events"), "realm.events", "is required"),
    ("clients.yaml", lambda d: d["clients"]["provisioner"]["service_account_roles"]["realm-management"]
     .append("manage-everything"), "clients.provisioner.service_account_roles.realm-management[7]",
     "is not declared"),
    ("clients.yaml", lambda d: d["teleservices"]["easypaiement"].update(roles={}),
     "teleservices.easypaiement.roles", "at least one role"),
    ("clients.yaml", lambda d: d["teleservices"]["teledeclaration"]["claims"].append("salary"),
     "teleservices.teledeclaration.claims[3]", "not a declared user-profile attribute"),
    ("clients.yaml", lambda d: d["teleservices"]["easypaiement"].update(url="${NOPE}"),
     "teleservices.easypaiement.url", "no such variable"),
    ("clients.yaml", lambda d: d["teleservices"]["easypaiement"].update(url="ftp://x"),
     "teleservices.easypaiement.url", "absolute http(s) URL"),
    ("clients.yaml", lambda d: d["builtin_clients"].update({"admin-console": {"enabled": False}}),
     "builtin_clients.admin-console", "not one of Keycloak's built-in clients"),
    ("clients.yaml", lambda d: d["builtin_clients"]["admin-cli"].update(enabled="no"),
     "builtin_clients.admin-cli.enabled", "must be true or false"),
    ("realm.yaml", lambda d: d["realm"]["sessions"].pop("rotate_refresh_tokens"),
     "realm.sessions.rotate_refresh_tokens", "is required"),
    ("realm.yaml", lambda d: d["groups"]["delegates"].update(realm_roles=["superuser"]),
     "groups.delegates.realm_roles[0]", "is not declared under realm_roles"),
    ("user-profile.yaml", lambda d: d["attributes"]["adherent"].update(admin_only="true"),
     "attributes.adherent.admin_only", "must be true or false"),
])
def test_bad_yaml_is_refused_naming_file_key_and_problem(realm_dir, file, change, key, problem):
    edit(realm_dir, file, change)
    with pytest.raises(RealmSpecError) as err:
        load_realm_spec(realm_dir, "cimr")
    assert (err.value.file, err.value.key) == (file, key)
    assert problem in err.value.problem


def test_broken_yaml_syntax_names_the_line(realm_dir):
    (realm_dir / "clients.yaml").write_text("teleservices:\n  a: [1,\n")
    with pytest.raises(RealmSpecError) as err:
        load_realm_spec(realm_dir, "cimr")
    assert err.value.file == "clients.yaml" and err.value.key.startswith("line ")


def test_variables_are_overridden_from_the_environment():
    spec = load_realm_spec(PROJECT_ROOT / "realm", "cimr", {"PORTAL_URL": "https://portail.cimr.ma"})
    assert spec.client("portal").url == "https://portail.cimr.ma"
