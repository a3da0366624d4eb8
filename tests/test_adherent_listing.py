"""A delegate's listing in one request (our extension's /cimr-adherent/users), with Keycloak still the second wall.

The delegate's pages read the adherent's users through it instead of one Admin API read per group and a user
search, each judged user by user by the fine-grained permissions. These tests attack it as the Admin API is
attacked in test_keycloak_confinement.py: another adherent, no token, a teleservice user, a bad parameter.
"""

from __future__ import annotations

import pytest
import requests

from devstack.builders import DELEGATE_PASSWORD, make_user
from provisioner import users
from provisioner.context import Context
from provisioner.gateway import Gateway
from provisioner.tenancy import Actor
from tests.oidc_flow import password_login, password_token

pytestmark = pytest.mark.usefixtures("password_grant_client")
PASSWORD = "List2026"


@pytest.fixture(scope="module")
def companies(settings, admin_gw, service_gw, services, make_adherent, password_grant_client):
    """Two approved adherents, each with an E@syPaiement validator and a Compte Adhérent user."""
    out = []
    for _ in range(2):
        numero = make_adherent()
        agent = Actor.agent("agent.listing")
        logins = {}
        for teleservice, powers in (("easypaiement", ("validateur",)), ("compte-adherent", ())):
            user = make_user(service_gw, services, agent, numero, teleservice, powers)
            admin_gw.set_password(user.id, PASSWORD, temporary=False)
            logins[teleservice] = user.login
        out.append((numero, logins))
    return out


def listing(settings, token: str | None, adherent: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{settings.keycloak_url}/realms/{settings.realm}/cimr-adherent/users", timeout=30,
                        headers=headers, params={"adherent": adherent} if adherent else {})


def test_a_delegate_reads_its_own_adherent_as_the_admin_api_shows_it(settings, admin_gw, companies):
    numero, logins = companies[0]
    resp = listing(settings, password_token(settings, numero, DELEGATE_PASSWORD), numero)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["adherent"]["name"] == numero and body["adherent"]["attributes"]["status"] == ["active"]
    listed = {u["username"]: sorted(u["groups"]) for u in body["users"]}
    top = admin_gw.group_by_path(f"/adherents/{numero}")
    expected: dict[str, list[str]] = {}
    for group in admin_gw.subtree(top):
        for member in admin_gw.group_members(group.id):
            expected.setdefault(member.username, []).append(group.path[len(top.path):].lstrip("/"))
    assert listed == {name: sorted(paths) for name, paths in expected.items()}
    assert listed[logins["easypaiement"]] == ["easypaiement/validateur"]
    validator = next(u for u in body["users"] if u["username"] == logins["easypaiement"])
    assert validator["attributes"]["adherent"] == [numero] and validator["enabled"] is True


@pytest.mark.parametrize("target", ["other", "missing"])
def test_keycloak_refuses_a_delegate_any_other_adherents_listing(settings, companies, target):
    (a, _), (b, _) = companies
    adherent = b if target == "other" else "99999990"
    resp = listing(settings, password_token(settings, a, DELEGATE_PASSWORD), adherent)
    assert resp.status_code == 403, resp.text  # the same answer: nothing learnt about which adherents exist
    assert b not in resp.text


@pytest.mark.parametrize("teleservice", ["easypaiement", "compte-adherent"])
def test_a_teleservice_user_cannot_list_even_its_own_adherent(settings, companies, teleservice):
    numero, logins = companies[0]
    assert listing(settings, password_token(settings, logins[teleservice], PASSWORD), numero).status_code == 403


@pytest.mark.parametrize("token", [None, "garbage"])
def test_no_valid_token_no_listing(settings, companies, token):
    assert listing(settings, token, companies[0][0]).status_code == 401


def test_the_service_account_lists_any_adherent_and_learns_which_is_missing(settings, service_gw, companies):
    token = service_gw.auth_headers()["Authorization"].split(" ", 1)[1]
    assert listing(settings, token, companies[1][0]).status_code == 200
    assert listing(settings, token, "99999990").status_code == 404


@pytest.mark.parametrize("adherent", [None, "12", "1234abcd", "../adherents"])
def test_a_bad_adherent_parameter_is_refused(settings, companies, adherent):
    numero = companies[0][0]
    resp = listing(settings, password_token(settings, numero, DELEGATE_PASSWORD), adherent)
    assert resp.status_code == 400


def test_it_only_reads(settings, companies):
    numero = companies[0][0]
    token = password_token(settings, numero, DELEGATE_PASSWORD)
    for method in ("POST", "PUT", "DELETE"):
        resp = requests.request(method, f"{settings.keycloak_url}/realms/{settings.realm}/cimr-adherent/users",
                                params={"adherent": numero}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert resp.status_code == 405


def test_it_says_which_users_brute_force_detection_locks_as_attack_detection_does(settings, admin_gw, spec,
                                                                                   companies):
    numero, logins = companies[1]
    locked, other = logins["compte-adherent"], logins["easypaiement"]
    token = password_token(settings, numero, DELEGATE_PASSWORD)
    user_id = admin_gw.user_by_username(locked).id

    def shown() -> dict[str, bool]:
        return {u["username"]: u["locked"] for u in listing(settings, token, numero).json()["users"]}

    assert shown()[locked] is False
    try:
        for _ in range(spec.brute_force.max_failures):
            password_login(settings, locked, "Wrong2026")
        assert admin_gw.brute_force_status(user_id)["disabled"] is True
        now = shown()
        assert now[locked] is True and now[other] is False and not any(v for k, v in now.items() if k != locked)
    finally:
        admin_gw.clear_brute_force(user_id)
    assert shown()[locked] is False


class Counting(Gateway):
    """A gateway that counts its HTTP calls."""

    calls = 0

    def _send(self, *args, **kwargs):
        Counting.calls += 1
        return super()._send(*args, **kwargs)


def test_a_delegates_listing_is_one_request_whatever_the_number_of_users(settings, services, service_gw, companies):
    numero, _ = companies[0]
    token = password_token(settings, numero, DELEGATE_PASSWORD)
    me = Actor.delegate(numero)

    def calls() -> int:
        Counting.calls = 0
        users.overview(Context(Counting.with_token(settings, token), services, me, numero))
        return Counting.calls

    before = calls()
    for _ in range(4):
        make_user(service_gw, services, me, numero, "eliquidation")
    assert calls() == before == 1
    listed = users.list_users(Context(Counting.with_token(settings, token), services, me, numero), "eliquidation")
    assert len(listed["eliquidation"]) == 4
