"""SSO per teleservice: each kind of user gets into their own teleservice only, and Keycloak refuses
the others, with or without an SSO session; disabled, suspended and replaced accounts cannot log in;
tokens carry the contract's claims (docs/teleservices.md)."""

from __future__ import annotations

import pytest
import requests
from joserfc.jwk import KeySet

from devstack.builders import DELEGATE_PASSWORD
from provisioner.adherents import replace_delegate, suspend_adherent
from provisioner.context import Context
from provisioner.delegates import NewDelegate
from provisioner.tenancy import Actor
from provisioner.teleservice_users import disable_user
from teleservice.tokens import validate_access_token
from tests import people
from tests.provisioning import choose_delegate_password
from tests.oidc_flow import Browser, redirect_uri, visible_text

TELESERVICES = ("teledeclaration", "compte-adherent", "easypaiement", "eliquidation")
DECLARANT = {"user_type": "interne", "categories": ["cadres", "employes"]}
# kind of user: (teleservice, roles, attributes)
KINDS = {
    "declarant-fichier": ("teledeclaration", ("fichier-preetabli",), DECLARANT),
    "declarant-externe": ("teledeclaration", ("formulaire-saisie",),
                          {"user_type": "externe", "provider": "Fiduciaire Atlas", "categories": ["cadres"]}),
    "compte-adherent": ("compte-adherent", ("utilisateur",), {}),
    "ordonnateur": ("easypaiement", ("ordonnateur",), {}),
    "validateur": ("easypaiement", ("validateur",), {}),
    "ordonnateur-validateur": ("easypaiement", ("ordonnateur", "validateur"), {}),
    "eliquidation": ("eliquidation", ("utilisateur",), {}),
}
OTHERS = [(kind, other) for kind, (own, _, _) in KINDS.items() for other in TELESERVICES if other != own]


@pytest.fixture(scope="module")
def adherent(make_adherent, admin_gw):
    return people.adherent_of(admin_gw, make_adherent())



def new_user(admin_gw, adherent, kind: str) -> tuple[str, str]:
    client, roles, attrs = KINDS[kind]
    return people.create_user(admin_gw, adherent, client, roles, **attrs)


def refused(result) -> bool:
    return result.code is None and "Accès refusé" in visible_text(result.page)


@pytest.mark.parametrize("kind", KINDS)
def test_user_logs_in_to_their_teleservice_and_sso_does_not_open_the_others(kind, adherent, admin_gw, settings,
                                                                           spec):
    user_id, login = new_user(admin_gw, adherent, kind)
    own = KINDS[kind][0]
    browser = Browser(settings.keycloak_url, settings.realm)
    assert browser.login(own, redirect_uri(spec, own), login, people.PASSWORD).code
    for other in TELESERVICES:
        if other != own:
            admin_gw.clear_brute_force(user_id)  # refused logins count for the quick-login check
            result = browser.login(other, redirect_uri(spec, other))
            assert refused(result), f"{other}: {visible_text(result.page)[:300]}"
    # The SSO session still opens their own teleservice without a password.
    admin_gw.clear_brute_force(user_id)
    assert browser.login(own, redirect_uri(spec, own)).code


@pytest.mark.parametrize("kind, other", OTHERS)
def test_fresh_login_to_another_teleservice_is_refused(kind, other, adherent, admin_gw, settings, spec):
    _, login = new_user(admin_gw, adherent, kind)
    result = Browser(settings.keycloak_url, settings.realm).login(other, redirect_uri(spec, other), login,
                                                                  people.PASSWORD)
    assert refused(result), visible_text(result.page)[:300]


def jwks(settings) -> KeySet:
    base = f"{settings.keycloak_url}/realms/{settings.realm}"
    return KeySet.import_key_set(requests.get(f"{base}/protocol/openid-connect/certs").json())


@pytest.mark.parametrize("kind", KINDS)
def test_tokens_carry_the_contract_claims(kind, adherent, admin_gw, settings, spec):
    client, roles, attrs = KINDS[kind]
    _, login = new_user(admin_gw, adherent, kind)
    browser = Browser(settings.keycloak_url, settings.realm)
    result = browser.login(client, redirect_uri(spec, client), login, people.PASSWORD)
    tokens = browser.exchange(client, spec.client(client).secret, redirect_uri(spec, client), result.code,
                              result.verifier)
    issuer = f"{settings.keycloak_url}/realms/{settings.realm}"
    claims = validate_access_token(tokens["access_token"], jwks(settings), issuer, client)
    assert claims["azp"] == client and client in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert claims["adherent"] == adherent.numero
    assert claims["preferred_username"] == login
    assert claims["resource_access"] == {client: {"roles": sorted(roles)}} or \
        sorted(claims["resource_access"][client]["roles"]) == sorted(roles)
    assert set(claims["resource_access"]) == {client}  # never another teleservice's roles
    if client == "teledeclaration":
        assert claims["user_type"] == attrs["user_type"]
        assert sorted(claims["categories"]) == sorted(attrs["categories"])
    else:
        assert "user_type" not in claims and "categories" not in claims
    assert "realm_access" not in claims  # teleservice tokens carry their own client's roles only


def test_a_disabled_user_cannot_log_in(adherent, admin_gw, service_gw, services, settings, spec):
    user_id, login = new_user(admin_gw, adherent, "compte-adherent")
    disable_user(Context(service_gw, services, Actor.delegate(adherent.numero), adherent.numero), login)
    result = Browser(settings.keycloak_url, settings.realm).login(
        "compte-adherent", redirect_uri(spec, "compte-adherent"), login, people.PASSWORD)
    assert result.code is None


def test_a_disabled_user_loses_their_sso_session(adherent, admin_gw, service_gw, services, settings, spec):
    user_id, login = new_user(admin_gw, adherent, "eliquidation")
    browser = Browser(settings.keycloak_url, settings.realm)
    assert browser.login("eliquidation", redirect_uri(spec, "eliquidation"), login, people.PASSWORD).code
    disable_user(Context(service_gw, services, Actor.delegate(adherent.numero), adherent.numero), login)
    assert browser.login("eliquidation", redirect_uri(spec, "eliquidation")).code is None


def test_users_of_a_suspended_adherent_cannot_log_in(make_adherent, admin_gw, service_gw, services, agent,
                                                     settings, spec):
    suspended = people.adherent_of(admin_gw, make_adherent())
    logins = {kind: new_user(admin_gw, suspended, kind)[1] for kind in ("declarant-fichier", "validateur")}
    suspend_adherent(Context(service_gw, services, agent, suspended.numero), "test")
    for kind, login in logins.items():
        client = KINDS[kind][0]
        result = Browser(settings.keycloak_url, settings.realm).login(client, redirect_uri(spec, client), login,
                                                                      people.PASSWORD)
        assert result.code is None, kind


def test_a_replaced_delegate_cannot_log_in(make_adherent, service_gw, services, agent, settings, spec, smtp_server):
    numero = make_adherent()
    old = Browser(settings.keycloak_url, settings.realm)
    assert old.login("portal", redirect_uri(spec, "portal"), numero, DELEGATE_PASSWORD).code
    email = f"o.tazi.{numero}@example.ma"
    replace_delegate(Context(service_gw, services, agent, numero), NewDelegate("Tazi", "Omar", "DRH", email, civilite="M"))
    choose_delegate_password(service_gw, services, smtp_server, email, "Nouv2026")
    assert old.login("portal", redirect_uri(spec, "portal")).code is None  # the SSO session is gone
    fresh = Browser(settings.keycloak_url, settings.realm)
    assert fresh.login("portal", redirect_uri(spec, "portal"), numero, DELEGATE_PASSWORD).code is None
    assert Browser(settings.keycloak_url, settings.realm).login(
        "portal", redirect_uri(spec, "portal"), numero, "Nouv2026").code
