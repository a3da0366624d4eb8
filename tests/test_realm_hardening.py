"""The realm around the per-adherent confinement, attacked as an outsider would (every test failed before the fix).

1. A delegate cannot forge the `adherent` / `categories` claims by writing its users' attributes.
2. A teleservice's refusal (no role) is no failed login: refused attempts never lock anyone out.
3. No built-in client hands out tokens by password (admin-cli), nor logs people in outside our flows.
4. Refresh tokens are accepted once; no offline tokens; PKCE on the account clients; the Account REST API
   cannot change the claims' attributes; one secret per teleservice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import requests

from devstack.builders import DELEGATE_PASSWORD, make_user
from provisioner.realm.apply import apply_plan
from provisioner.realm.plan import plan_realm, Plan
from provisioner.tenancy import Actor
from tests.oidc_flow import Browser, decode_unverified, redirect_uri, visible_text

PASSWORD = "Tok2026ok"  # a permanent password of our own for the users logging in here
# The clients Keycloak creates in every realm (and admin-permissions, with fine-grained permissions).
BUILTIN_CLIENTS = ("account", "account-console", "admin-cli", "broker", "realm-management", "security-admin-console",
                   "admin-permissions")


@dataclass
class Company:
    numero: str
    delegate_token: str           # its delegate's own access token, from a portal login
    users: dict[str, str]         # role -> (username, id): validateur, utilisateur, declarant



def tokens_for(settings, spec, client_id: str, username: str, password: str = PASSWORD, **extra) -> dict:
    """A fresh browser login to ``client_id`` and the code redeemed with the client's own secret."""
    browser = Browser(settings.keycloak_url, settings.realm)
    login = browser.login(client_id, redirect_uri(spec, client_id), username, password, **extra)
    assert login.code, visible_text(login.page)[:300]
    return browser.exchange(client_id, spec.client(client_id).secret, redirect_uri(spec, client_id), login.code,
                            login.verifier)


def claims_at(settings, spec, client_id: str, username: str) -> dict:
    return decode_unverified(tokens_for(settings, spec, client_id, username)["access_token"])


def admin_api(settings, token: str):
    base = f"{settings.keycloak_url}/admin/realms/{settings.realm}"
    return lambda method, path, json=None: requests.request(method, base + path, json=json, timeout=30,
                                                            headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def company(settings, spec, admin_gw, service_gw, services, make_adherent) -> Company:
    numero = make_adherent(categories=("cadres", "employes"))
    agent = Actor.agent("agent.hardening")
    users = {}
    for key, teleservice, powers in (("validateur", "easypaiement", ("validateur",)),
                                     ("utilisateur", "compte-adherent", ()),
                                     ("declarant", "teledeclaration", ("formulaire-saisie",))):
        user = make_user(service_gw, services, agent, numero, teleservice, powers,
                         **({"access": _declarant_access()} if key == "declarant" else {}))
        admin_gw.set_password(user.id, PASSWORD, temporary=False)
        users[key] = (user.login, user.id)
    token = tokens_for(settings, spec, "portal", numero, DELEGATE_PASSWORD)["access_token"]
    return Company(numero, token, users)


def _declarant_access():
    from provisioner.rules import Access

    return Access("teledeclaration", ("formulaire-saisie",), user_type="interne", categories=("cadres", "employes"))


@pytest.fixture(scope="module")
def other(make_adherent) -> str:
    """Company B's numéro."""
    return make_adherent()


# --- 1. claims a delegate cannot forge ----------------------------------------------------------------------

def test_a_delegate_rewriting_a_users_adherent_attribute_does_not_move_its_token(settings, spec, admin_gw,
                                                                                 company, other):
    username, uid = company.users["validateur"]
    as_delegate = admin_api(settings, company.delegate_token)
    rep = as_delegate("GET", f"/users/{uid}").json()
    rep["attributes"]["adherent"] = [other]
    written = as_delegate("PUT", f"/users/{uid}", rep)
    try:
        assert written.status_code in (204, 400, 403), written.text
        assert claims_at(settings, spec, "easypaiement", username)["adherent"] == company.numero
    finally:
        rep["attributes"]["adherent"] = [company.numero]
        admin_gw.update_user(uid, rep)


def test_a_user_created_by_the_delegate_with_a_foreign_adherent_attribute_gets_its_own(settings, spec, admin_gw,
                                                                                      company, other):
    as_delegate = admin_api(settings, company.delegate_token)
    login = f"forge{uuid.uuid4().hex[:6]}"
    created = as_delegate("POST", "/users", {
        "username": login, "enabled": True, "firstName": "Faux", "lastName": "Compte", "email": f"{login}@ex.ma",
        "groups": [f"/adherents/{company.numero}/compte-adherent/utilisateur"],
        "attributes": {"adherent": [other], "teleservice": ["compte-adherent"]},
        "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]})
    assert created.status_code in (201, 400, 403), created.text
    if created.status_code != 201:
        return  # refused outright: nothing to log in with
    uid = created.headers["Location"].rsplit("/", 1)[1]
    try:
        assert claims_at(settings, spec, "compte-adherent", login)["adherent"] == company.numero
    finally:
        admin_gw.delete_user(uid)


def test_categories_in_the_token_are_only_the_adherents_active_ones(settings, spec, admin_gw, company):
    """The delegate chooses a declarant's categories, but only among those CIMR keeps active for the adherent."""
    username, uid = company.users["declarant"]
    as_delegate = admin_api(settings, company.delegate_token)
    rep = as_delegate("GET", f"/users/{uid}").json()
    before = list(rep["attributes"]["categories"])
    rep["attributes"]["categories"] = ["cadres", "ouvriers", "dirigeants"]
    assert as_delegate("PUT", f"/users/{uid}", rep).status_code == 204
    try:
        claims = claims_at(settings, spec, "teledeclaration", username)
        assert claims["categories"] == ["cadres"]
        assert claims["adherent"] == company.numero
    finally:
        rep["attributes"]["categories"] = before
        admin_gw.update_user(uid, rep)


def test_a_delegate_can_only_write_a_known_user_type(settings, company):
    _, uid = company.users["declarant"]
    as_delegate = admin_api(settings, company.delegate_token)
    rep = as_delegate("GET", f"/users/{uid}").json()
    rep["attributes"]["user_type"] = ["administrateur"]
    assert as_delegate("PUT", f"/users/{uid}", rep).status_code == 400


def test_the_portal_token_names_the_delegates_adherent_from_its_group(company):
    assert decode_unverified(company.delegate_token)["adherent"] == company.numero


# --- 2. a refusal is not a failed login ------------------------------------------------------------------

def test_refused_teleservice_logins_never_lock_the_user_out(settings, spec, admin_gw, company):
    username, uid = company.users["validateur"]
    attempts = spec.brute_force.max_failures + 3
    browser = Browser(settings.keycloak_url, settings.realm)
    own = browser.login("easypaiement", redirect_uri(spec, "easypaiement"), username, PASSWORD)
    assert own.code
    for _ in range(attempts):  # a third-party page firing silent requests with the SSO cookie
        silent = browser.login("compte-adherent", redirect_uri(spec, "compte-adherent"), prompt="none")
        assert silent.code is None
    for _ in range(attempts):  # the right password, at a teleservice it may not enter
        refused = Browser(settings.keycloak_url, settings.realm).login(
            "compte-adherent", redirect_uri(spec, "compte-adherent"), username, PASSWORD)
        assert refused.code is None and "Accès refusé" in refused.page, visible_text(refused.page)[:300]
    status = admin_gw.brute_force_status(uid)
    assert not status.get("disabled") and status.get("numFailures", 0) == 0, status
    assert admin_gw.user(uid).enabled
    assert Browser(settings.keycloak_url, settings.realm).login(
        "easypaiement", redirect_uri(spec, "easypaiement"), username, PASSWORD).code


def test_a_silent_request_to_a_refused_teleservice_answers_login_required(settings, spec, company):
    username, _ = company.users["utilisateur"]
    browser = Browser(settings.keycloak_url, settings.realm)
    assert browser.login("compte-adherent", redirect_uri(spec, "compte-adherent"), username, PASSWORD).code
    silent = browser.login("easypaiement", redirect_uri(spec, "easypaiement"), prompt="none")
    assert silent.code is None and silent.page == "login_required"


# --- 3. built-in clients --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["delegate", "validateur", "utilisateur"])
@pytest.mark.parametrize("client_id", BUILTIN_CLIENTS)
def test_no_built_in_client_gives_a_token_by_password(settings, company, kind, client_id):
    username, password = ((company.numero, DELEGATE_PASSWORD) if kind == "delegate"
                          else (company.users[kind][0], PASSWORD))
    resp = requests.post(f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
                         data={"grant_type": "password", "client_id": client_id, "username": username,
                               "password": password, "scope": "openid"}, timeout=30)
    assert resp.status_code in (400, 401), resp.text[:200]
    assert "access_token" not in resp.text


def test_nobody_logs_in_to_the_realms_own_admin_console(settings, company):
    browser = Browser(settings.keycloak_url, settings.realm)
    console = f"{settings.keycloak_url}/admin/{settings.realm}/console/"
    refused = browser.login("security-admin-console", console, company.numero, DELEGATE_PASSWORD)
    assert refused.code is None and 'id="kc-form-login"' not in refused.page


def test_plan_reports_a_reopened_built_in_client_and_apply_closes_it(admin_gw, spec):
    client = admin_gw.client_by_client_id("admin-cli")
    admin_gw.put(f"/clients/{client['id']}", {**client, "enabled": True, "directAccessGrantsEnabled": True})
    # Only the built-in clients' changes: other tests adjust the portal client's redirect URIs on purpose.
    builtin = Plan(tuple(c for c in plan_realm(admin_gw, spec).changes if c.kind == "builtin-client"))
    assert [(c.action, c.key) for c in builtin.changes] == [("update", "admin-cli")]
    assert {d[0] for d in builtin.changes[0].diff} == {"enabled", "directAccessGrantsEnabled"}
    apply_plan(admin_gw, spec, builtin)
    assert not [c for c in plan_realm(admin_gw, spec).changes if c.kind == "builtin-client"]


# --- 4. tokens ---------------------------------------------------------------------------------------

def test_a_refresh_token_is_accepted_once(settings, spec, company):
    """Rotation: each refresh token works once; replaying a used one is refused and ends the client session,
    so the thief's replay also cuts off whoever holds the newer token (Keycloak's theft response)."""
    tokens = tokens_for(settings, spec, "easypaiement", company.users["validateur"][0])
    browser, secret = Browser(settings.keycloak_url, settings.realm), spec.client("easypaiement").secret
    first = browser.refresh("easypaiement", secret, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    second = browser.refresh("easypaiement", secret, first.json()["refresh_token"])
    assert second.status_code == 200, second.text  # the chain goes on while each token is used once
    replay = browser.refresh("easypaiement", secret, first.json()["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert browser.refresh("easypaiement", secret, second.json()["refresh_token"]).status_code == 400


@pytest.mark.parametrize("client_id, kind", [("easypaiement", "validateur"), ("compte-adherent", "utilisateur"),
                                             ("teledeclaration", "declarant"), ("portal", "delegate")])
def test_no_offline_token_is_handed_out(settings, spec, company, client_id, kind):
    username, password = ((company.numero, DELEGATE_PASSWORD) if kind == "delegate"
                          else (company.users[kind][0], PASSWORD))
    browser = Browser(settings.keycloak_url, settings.realm)
    login = browser.login(client_id, redirect_uri(spec, client_id), username, password, scope="openid offline_access")
    if login.code is None:  # refused outright: no token at all
        assert login.page == "invalid_scope", visible_text(login.page)[:300]
        return
    tokens = browser.exchange(client_id, spec.client(client_id).secret, redirect_uri(spec, client_id), login.code,
                              login.verifier)
    assert decode_unverified(tokens["refresh_token"])["typ"] != "Offline"
    assert "offline_access" not in tokens.get("scope", "").split()


def test_no_client_of_ours_offers_offline_access(admin_gw, spec):
    for client in spec.clients:
        live = admin_gw.client_by_client_id(client.client_id)
        assert "offline_access" not in live.get("optionalClientScopes", []) + live.get("defaultClientScopes", [])


@pytest.mark.parametrize("client_id", ["account", "account-console"])
def test_the_account_clients_demand_pkce(settings, client_id):
    account = f"{settings.keycloak_url}/realms/{settings.realm}/account/"
    without = Browser(settings.keycloak_url, settings.realm).login(client_id, account, pkce=False)
    assert without.code is None and 'id="kc-form-login"' not in without.page
    assert without.page == "invalid_request"


def test_the_account_api_cannot_change_the_claims_attributes(settings, spec, admin_gw, company, other):
    username, uid = company.users["declarant"]
    account = f"{settings.keycloak_url}/realms/{settings.realm}/account/"
    browser = Browser(settings.keycloak_url, settings.realm)
    login = browser.login("account-console", account, username, PASSWORD)
    assert login.code, visible_text(login.page)[:300]
    token = browser.exchange("account-console", None, account, login.code, login.verifier)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    me = requests.get(account, headers=headers, timeout=30).json()
    before = admin_gw.user_rep(uid)["attributes"]
    forged = {**me, "attributes": {**me.get("attributes", {}), "adherent": [other], "user_type": ["externe"],
                                   "categories": ["ouvriers"], "teleservice": ["easypaiement"]}}
    requests.post(account, json=forged, headers=headers, timeout=30)
    after = admin_gw.user_rep(uid)["attributes"]
    for name in ("adherent", "user_type", "categories", "teleservice"):
        assert after.get(name) == before.get(name), name


def test_each_teleservice_authenticates_with_a_secret_of_its_own(settings, spec, admin_gw):
    token_url = f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token"
    teleservices = [c.client_id for c in spec.teleservices]
    secrets = {cid: spec.client(cid).secret for cid in teleservices}
    assert len(set(secrets.values())) == len(teleservices)
    for cid in teleservices:
        live = admin_gw.get(f"/clients/{admin_gw.client_uuid(cid)}/client-secret")["value"]
        assert live == secrets[cid]
        for other_cid in teleservices:
            resp = requests.post(token_url, data={"grant_type": "client_credentials", "client_id": cid,
                                                  "client_secret": secrets[other_cid]}, timeout=30)
            # Its own secret authenticates (then the grant is refused: no service account); another's does not.
            described = resp.json().get("error_description", "")
            assert ("Invalid client" in described) == (other_cid != cid), (cid, other_cid, resp.text)
