"""The realm-as-code tests judge the whole realm (plan must be empty): each module gets a realm of its own.

Other tests legitimately adjust the session realm (e.g. a test portal's redirect URI on a free port); here
`test_env`, `spec`, `admin_gw` and `realm` are overridden: a fresh realm applied from realm/ per module, deleted
at the end. (The pure tests of this folder use none of them.)
"""

from __future__ import annotations

import os
import uuid

import pytest

from provisioner.gateway import Gateway
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm
from provisioner.realm.schema import realm_spec
from provisioner.settings import Settings


@pytest.fixture(scope="module")
def test_env(test_env: dict[str, str]) -> dict[str, str]:
    return {**test_env, "KEYCLOAK_REALM": f"cimr-plan-{uuid.uuid4().hex[:8]}"}


@pytest.fixture(scope="module")
def spec(test_env: dict[str, str]):
    settings = Settings.from_env(test_env)
    return realm_spec(settings)


@pytest.fixture(scope="module")
def admin_gw(test_env: dict[str, str]) -> Gateway:
    return Gateway.as_master_admin(Settings.from_env(test_env))


@pytest.fixture(scope="module")
def realm(admin_gw: Gateway, spec) -> str:
    apply_plan(admin_gw, spec, plan_realm(admin_gw, spec))
    yield spec.name
    if not os.environ.get("KEEP_TEST_REALM"):
        admin_gw.delete_realm()
