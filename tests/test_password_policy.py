"""The brochure's password rule (5-10 letters and digits), judged by Keycloak itself."""

from __future__ import annotations

import uuid

import pytest

from provisioner.errors import KeycloakRejected



@pytest.fixture(scope="module")
def probe_user(realm, admin_gw):
    user_id = admin_gw.create_user({"username": f"probe{uuid.uuid4().hex[:6]}", "enabled": True})
    yield admin_gw.user(user_id)
    admin_gw.delete_user(user_id)


@pytest.mark.parametrize("password", ["abc12", "Abc123", "a1b2c3d4e5"])
def test_accepted(probe_user, admin_gw, password):
    admin_gw.set_password(probe_user.id, password, temporary=False)


@pytest.mark.parametrize("password, why", [
    ("abc1", "too short"),
    ("abcdefghij1", "too long"),
    ("abc 12", "space"),
    ("abc$12", "symbol"),
])
def test_refused(probe_user, admin_gw, password, why):
    with pytest.raises(KeycloakRejected):
        admin_gw.set_password(probe_user.id, password, temporary=False)


def test_the_username_is_refused(probe_user, admin_gw):
    with pytest.raises(KeycloakRejected):
        admin_gw.set_password(probe_user.id, probe_user.username, temporary=False)


def test_a_recent_password_is_refused_by_its_key_not_its_sentence(probe_user, admin_gw):
    """Keycloak's sentence for the history refusal is localised and was reworded in 26.7.5 (« ne doit pas être égal
    aux 3 derniers mots de passe »); the error key it sends beside it is what we judge."""
    admin_gw.set_password(probe_user.id, "Hist2026a", temporary=False)
    with pytest.raises(KeycloakRejected) as refused:
        admin_gw.set_password(probe_user.id, "Hist2026a", temporary=False)
    assert refused.value.password_history and refused.value.code == "invalidPasswordHistoryMessage"
    with pytest.raises(KeycloakRejected) as other:
        admin_gw.set_password(probe_user.id, "abc1", temporary=False)
    assert not other.value.password_history
