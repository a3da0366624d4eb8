"""Our Keycloak extension (keycloak-extension/, /realms/<realm>/cimr-audit/...): its bulk listings say exactly
what the Admin API says object by object, to the same people (view-users / view-events), and write nothing."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
import requests

from devstack.builders import DELEGATE_PASSWORD, make_user
from provisioner.audit.collect import _paths, collect
from provisioner.errors import KeycloakRejected
from provisioner.gateway import Gateway
from provisioner.tenancy import Actor
from tests import people
from tests.oidc_flow import Browser

AUDITOR_SECRET = "dev-auditor-secret"
LISTINGS = ("users", "groups", "last-logins", "admin-events")
GRANT_CLIENT = "audit-extension-test-cli"


@pytest.fixture(scope="module")
def auditor_gw(settings, realm) -> Gateway:
    return Gateway.as_auditor(replace(settings, auditor_client_secret=AUDITOR_SECRET))


@pytest.fixture(scope="module")
def base(settings, realm) -> str:
    return f"{settings.keycloak_url}/realms/{settings.realm}/cimr-audit"


def bearer(gw: Gateway) -> dict:
    return gw.auth_headers()


def values(rep: dict) -> dict[str, list[str]]:
    """A representation's attributes, each multivalued one in alphabetical order (as the listings give them)."""
    return {name: sorted(v) for name, v in (rep.get("attributes") or {}).items()}


def listing(base: str, gw: Gateway, name: str, **params) -> requests.Response:
    return requests.get(f"{base}/{name}", params=params, headers=bearer(gw), timeout=30)


@pytest.fixture(scope="module")
def company(admin_gw, service_gw, services, make_adherent):
    """An adherent with two users, one of them also put in a group by hand (a second membership)."""
    numero = make_adherent()
    actor = Actor.delegate(numero)
    users = [make_user(service_gw, services, actor, numero, "easypaiement", ("validateur",)),
             make_user(service_gw, services, actor, numero, "compte-adherent")]
    admin_gw.add_to_group(users[1].id, admin_gw.group_by_path(f"/adherents/{numero}/eliquidation/utilisateur").id)
    return numero, users


def test_users_listing_says_what_the_admin_api_says_user_by_user(base, auditor_gw, admin_gw, company):
    numero, users = company
    listed = {u["id"]: u for u in listing(base, auditor_gw, "users", max=5000).json()}
    delegate = admin_gw.user_by_username(numero)
    for uid in [u.id for u in users] + [delegate.id]:
        rep = admin_gw.get(f"/users/{uid}")
        got = listed[uid]
        assert (got["username"], got["enabled"], got["createdTimestamp"]) == \
            (rep["username"], rep["enabled"], rep["createdTimestamp"])
        assert got["attributes"] == values(rep)
        assert sorted(got["groups"]) == sorted(g["id"] for g in admin_gw.get(f"/users/{uid}/groups"))
    assert len(listed[users[1].id]["groups"]) == 2


def test_service_accounts_are_listed_with_their_client(base, auditor_gw, admin_gw):
    client = admin_gw.client_by_client_id("auditor")
    sa = admin_gw.service_account_user(client["id"])
    listed = {u["id"]: u for u in listing(base, auditor_gw, "users", max=5000).json()}
    assert listed[sa["id"]]["serviceAccountClientLink"] == client["id"]


def test_pages_add_up_to_the_whole_listing(base, auditor_gw, company):
    whole = [u["id"] for u in listing(base, auditor_gw, "users", max=5000).json()]
    paged, first = [], 0
    while batch := listing(base, auditor_gw, "users", first=first, max=7).json():
        paged += [u["id"] for u in batch]
        first += 7
    assert paged == whole and len(whole) == len(set(whole))


def test_groups_listing_gives_the_tree_with_attributes(base, auditor_gw, admin_gw, company):
    numero, _ = company
    groups = {g["id"]: g for g in listing(base, auditor_gw, "groups", max=5000).json()}
    paths = _paths(groups)
    top = admin_gw.group_by_path(f"/adherents/{numero}")
    for group in [top, *admin_gw.subtree(top)]:
        assert paths[group.id] == group.path
        assert groups[group.id]["attributes"] == values(admin_gw.get(f"/groups/{group.id}"))
    assert groups[top.id]["attributes"]["status"] == ["active"]


def test_groups_listing_names_the_roles_mapped_to_each_group_as_the_admin_api_does(base, auditor_gw, admin_gw,
                                                                                   company):
    numero, _ = company
    groups = {g["id"]: g for g in listing(base, auditor_gw, "groups", max=5000).json()}
    top = admin_gw.group_by_path(f"/adherents/{numero}")
    carrying = 0
    for group in [top, *admin_gw.subtree(top), admin_gw.group_by_path("/delegates")]:
        mappings = admin_gw.get(f"/groups/{group.id}/role-mappings")
        expected = sorted([r["id"] for r in mappings.get("realmMappings") or []]
                          + [r["id"] for c in (mappings.get("clientMappings") or {}).values() for r in c["mappings"]])
        assert sorted(groups[group.id]["roles"]) == expected, group.path
        carrying += bool(expected)
    assert carrying == 7  # the adherent's 6 leaves and /delegates (realm role delegate)


def test_last_logins_are_each_users_latest_login_event(base, auditor_gw, admin_gw, settings, company):
    uid, login = people.create_user(admin_gw, people.adherent_of(admin_gw, company[0]), "eliquidation",
                                    ("utilisateur",))
    before = listing(base, auditor_gw, "last-logins").json()
    assert uid not in before
    for _ in range(2):
        assert Browser(settings.keycloak_url, settings.realm).login(
            "eliquidation", "http://127.0.0.1:8104/callback", login, people.PASSWORD).code
    events = admin_gw.get("/events", type="LOGIN", user=uid)
    assert len(events) == 2
    assert listing(base, auditor_gw, "last-logins").json()[uid] == max(e["time"] for e in events)


def test_admin_events_since_a_time_without_their_representation(base, auditor_gw, admin_gw, company):
    _, users = company
    since = int(time.time() * 1000) - 1
    rep = admin_gw.get(f"/users/{users[0].id}")
    admin_gw.update_user(users[0].id, {**rep, "firstName": "Changé"})
    events = listing(base, auditor_gw, "admin-events", since=since).json()
    ours = [e for e in events if e["resourcePath"] == f"users/{users[0].id}"]
    assert [e["operationType"] for e in ours] == ["UPDATE"]
    assert ours[0]["time"] >= since and "representation" not in ours[0]
    assert ours[0]["authDetails"]["userId"]  # who did it
    assert all(e["time"] >= since for e in events)
    assert not listing(base, auditor_gw, "admin-events", since=int(time.time() * 1000) + 60_000).json()


def test_admin_events_name_the_realm_and_user_behind_the_token(base, auditor_gw, admin_gw, service_gw, settings,
                                                               company):
    """A master-realm admin is an opaque id to this realm's callers (they may not read master's users): the
    listing names it, as it names this realm's own accounts."""
    _, users = company
    since = int(time.time() * 1000) - 1
    admin_gw.update_user(users[0].id, {**admin_gw.get(f"/users/{users[0].id}"), "firstName": "Console"})
    service_gw.update_user(users[1].id, {**service_gw.get(f"/users/{users[1].id}"), "firstName": "Automate"})
    events = listing(base, auditor_gw, "admin-events", since=since).json()
    by_path = {e["resourcePath"]: (e["authRealm"], e["authUsername"]) for e in events}
    assert by_path[f"users/{users[0].id}"] == (settings.admin_realm, settings.admin_user)
    assert by_path[f"users/{users[1].id}"] == (settings.realm, f"service-account-{settings.provisioner_client_id}")


@pytest.mark.parametrize("name", LISTINGS)
def test_no_token_or_a_token_of_another_realm_is_refused(base, settings, name):
    master = requests.post(f"{settings.keycloak_url}/realms/master/protocol/openid-connect/token",
                           data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                                 "password": "admin"}, timeout=30).json()["access_token"]
    for headers in ({}, {"Authorization": "Bearer not.a.token"}, {"Authorization": f"Bearer {master}"}):
        assert requests.get(f"{base}/{name}", headers=headers, timeout=30).status_code == 401


@pytest.fixture(scope="module")
def delegate_headers(settings, admin_gw, company):
    """A confined delegate's own token (password grant on a test-only public client)."""
    admin_gw.post("/clients", {"clientId": GRANT_CLIENT, "publicClient": True, "directAccessGrantsEnabled": True,
                               "standardFlowEnabled": False, "fullScopeAllowed": True})
    resp = requests.post(f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
                         data={"grant_type": "password", "client_id": GRANT_CLIENT, "username": company[0],
                               "password": DELEGATE_PASSWORD}, timeout=30)
    assert resp.status_code == 200, resp.text
    yield {"Authorization": f"Bearer {resp.json()['access_token']}"}
    admin_gw.delete(f"/clients/{admin_gw.client_uuid(GRANT_CLIENT)}")


@pytest.mark.parametrize("name", LISTINGS)
def test_a_delegate_may_list_nothing_not_even_its_own_users(base, delegate_headers, name):
    assert requests.get(f"{base}/{name}", headers=delegate_headers, timeout=30).status_code == 403


@pytest.fixture(scope="module")
def view_users_only(settings, admin_gw):
    """A service account holding view-users and nothing else."""
    client_id, secret = "audit-extension-view-users", uuid.uuid4().hex
    admin_gw.post("/clients", {"clientId": client_id, "secret": secret, "publicClient": False,
                               "serviceAccountsEnabled": True, "standardFlowEnabled": False})
    uuid_ = admin_gw.client_uuid(client_id)
    rm = admin_gw.client_uuid("realm-management")
    sa = admin_gw.service_account_user(uuid_)
    admin_gw.post(f"/users/{sa['id']}/role-mappings/clients/{rm}", [admin_gw.client_role(rm, "view-users")])
    yield Gateway.as_service_account(settings, client_id, secret)
    admin_gw.delete(f"/clients/{uuid_}")


def test_view_users_without_view_events_reads_users_not_events(base, view_users_only):
    assert listing(base, view_users_only, "users", max=1).status_code == 200
    assert listing(base, view_users_only, "groups", max=1).status_code == 200
    assert listing(base, view_users_only, "admin-events").status_code == 403
    assert listing(base, view_users_only, "last-logins").status_code == 403


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("name", LISTINGS)
def test_it_writes_nothing(base, auditor_gw, method, name):
    resp = requests.request(method, f"{base}/{name}", json={"username": f"x{uuid.uuid4().hex[:6]}"},
                            headers=bearer(auditor_gw), timeout=30)
    assert resp.status_code == 405


def test_a_keycloak_not_serving_the_listings_is_named_in_the_error(settings, auditor_gw):
    elsewhere = Gateway.with_token(replace(settings, realm=f"absent{uuid.uuid4().hex[:6]}"),
                                   bearer(auditor_gw)["Authorization"].split()[1])
    with pytest.raises(KeycloakRejected, match="keycloak-extension"):
        elsewhere.audit_listing("users", 10)


def test_the_audit_makes_as_many_requests_with_25_more_users(auditor_gw, admin_gw, services, spec, company):
    """Not one request per user (nor per group): the reads depend on pages and roles, not on people."""
    before = collect(auditor_gw, services.db, spec, with_drift=False).reads
    adherent = people.adherent_of(admin_gw, company[0])
    for _ in range(25):
        people.create_user(admin_gw, adherent, "compte-adherent", ("utilisateur",))
    after = collect(auditor_gw, services.db, spec, with_drift=False)
    assert after.reads - before <= 1  # +1 only if the realm crossed a 1,000-user page boundary meanwhile
    assert sum(a.adherent == company[0] for a in after.accounts) >= 25
