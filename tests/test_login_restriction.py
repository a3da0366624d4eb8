"""Keycloak itself refuses a teleservice's login to users holding none of its roles, SSO or not."""

from __future__ import annotations

import uuid

import pytest

from tests.oidc_flow import Browser, decode_unverified, direct_grant, redirect_uri, visible_text

PASSWORD = "Decl2026"


@pytest.fixture
def declarant(realm, admin_gw):
    """A user holding only a Télédéclaration role (a fresh one per test: Keycloak's quick-login check
    counts refused logins, so reusing one user across fast tests would lock it)."""
    username = f"decl{uuid.uuid4().hex[:6]}"
    user_id = admin_gw.create_user({"username": username, "enabled": True, "email": f"{username}@example.ma",
                                    "firstName": "Test", "lastName": "Declarant",
                                    "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]})
    client = admin_gw.client_uuid("teledeclaration")
    role = admin_gw.get(f"/clients/{client}/roles/fichier-preetabli")
    admin_gw.post(f"/users/{user_id}/role-mappings/clients/{client}", [role])
    yield username
    admin_gw.delete_user(user_id)



def test_user_gets_a_code_for_their_teleservice_and_is_refused_elsewhere(declarant, settings, spec):
    browser = Browser(settings.keycloak_url, settings.realm)
    ok = browser.login("teledeclaration", redirect_uri(spec, "teledeclaration"), declarant, PASSWORD)
    assert ok.code, ok.page[:500]

    # Same browser, SSO cookie present: Keycloak must still refuse E@syPaiement.
    refused = browser.login("easypaiement", redirect_uri(spec, "easypaiement"))
    assert refused.code is None
    assert "Accès refusé" in refused.page, visible_text(refused.page)


@pytest.mark.parametrize("client_id", ["easypaiement", "compte-adherent", "eliquidation"])
def test_fresh_login_to_another_teleservice_is_refused(declarant, settings, spec, client_id):
    browser = Browser(settings.keycloak_url, settings.realm)
    refused = browser.login(client_id, redirect_uri(spec, client_id), declarant, PASSWORD)
    assert refused.code is None
    assert "Accès refusé" in refused.page, visible_text(refused.page)


@pytest.mark.parametrize("client_id", ["teledeclaration", "compte-adherent", "easypaiement", "eliquidation"])
def test_no_direct_grant_on_teleservice_clients(declarant, settings, spec, client_id):
    resp = direct_grant(settings.keycloak_url, settings.realm, client_id, spec.client(client_id).secret,
                        declarant, PASSWORD)
    assert resp.status_code in (400, 401)
    assert resp.json()["error"] == "unauthorized_client"


def test_token_carries_the_contract_claims(realm, admin_gw, service_gw, services, agent, make_adherent, settings,
                                          spec):
    """adherent and categories come from the user's groups (docs/teleservices.md), user_type from its attribute."""
    from provisioner.rules import Access
    from devstack.builders import make_user

    numero = make_adherent(categories=("cadres", "employes", "ouvriers"))
    user = make_user(service_gw, services, agent, numero, access=Access(
        "teledeclaration", ("formulaire-saisie",), user_type="externe", provider="Fiduciaire Atlas",
        categories=("cadres", "employes")))
    admin_gw.set_password(user.id, PASSWORD, temporary=False)
    browser = Browser(settings.keycloak_url, settings.realm)
    login = browser.login("teledeclaration", redirect_uri(spec, "teledeclaration"), user.login, PASSWORD)
    tokens = browser.exchange("teledeclaration", spec.client("teledeclaration").secret,
                              redirect_uri(spec, "teledeclaration"), login.code, login.verifier)
    claims = decode_unverified(tokens["access_token"])
    assert claims["aud"] == "teledeclaration" and claims["azp"] == "teledeclaration"
    assert claims["adherent"] == numero
    assert claims["user_type"] == "externe"
    assert claims["categories"] == ["cadres", "employes"]
