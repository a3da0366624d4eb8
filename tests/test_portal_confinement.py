"""The portal's attack matrix: every delegate route x every id of another adherent -> refused.

Two walls. "normal": the portal's own tenant check refuses (the adherent comes from the login). "wall 1 broken":
the session is made to say adherent B (as a bug in our tenant check or session would), so our check lets
everything through, and Keycloak, called with A's own token, must refuse it on its own. In both, B's
users and settings are unchanged; the same routes on A's own users work.
"""

from __future__ import annotations

import io

import pytest

from devstack.builders import DELEGATE_PASSWORD, login, make_user
from tests.portal_support import csrf_token, login_client, text

B_USERS = [("compte-adherent", ()), ("eliquidation", ()), ("easypaiement", ("ordonnateur", "validateur")),
           ("teledeclaration", ("formulaire-saisie",))]


@pytest.fixture(scope="module")
def world(portal, make_adherent, service_gw, services, agent):
    a, b = make_adherent(), make_adherent()
    b_logins = [make_user(service_gw, services, agent, b, t, p).login for t, p in B_USERS]
    a_login = make_user(service_gw, services, agent, a, "easypaiement", ("ordonnateur",)).login
    return {"a": a, "b": b, "b_logins": b_logins, "a_login": a_login}


def snapshot(service_gw, numero: str, logins: list[str]) -> dict:
    """What an attack could change: B's users (enabled, attributes, groups, credentials) and B's settings."""
    out = {"group": service_gw.group_by_path(f"/adherents/{numero}").attributes}
    for lg in logins:
        u = service_gw.user_by_username(lg)
        out[lg] = (u.enabled, u.first_name, u.last_name, u.email, u.attributes,
                   sorted(g.path for g in service_gw.user_groups(u.id)),
                   [c.get("createdDate") for c in service_gw.credentials(u.id)])
    out["members"] = sorted(u.username for u in service_gw.users_by_attribute("adherent", numero))
    return out


@pytest.fixture(scope="module", params=["normal", "wall 1 broken"])
def attacker(request, portal, world):
    """A's delegate logged in; with "wall 1 broken" its session claims adherent B."""
    client = login_client(portal, world["a"], DELEGATE_PASSWORD)
    if request.param == "wall 1 broken":
        with client.session_transaction() as sess:
            sess["user"] = {**sess["user"], "adherent": world["b"]}
    return request.param, client


def user_form(new_login: str) -> dict:
    return {"login": new_login, "nom": "Intrus", "prenom": "Ivan", "email": "ivan@example.ma", "password": "Intr2026",
            "password_confirm": "Intr2026", "question1": "Ville de naissance de votre père ?", "answer1": "Fes",
            "question2": "Nom de votre premier animal de compagnie ?", "answer2": "Mimi", "civilite": "M"}


# Every delegate route that names a user: (method, path, form data); {login} is one of B's logins.
LOGIN_ROUTES = [
    ("get", "/delegue/utilisateurs/{login}", None),
    ("post", "/delegue/utilisateurs/{login}/mot-de-passe", {"password": "Hack2026", "password_confirm": "Hack2026"}),
    ("post", "/delegue/utilisateurs/{login}/acces", {"powers": "validateur", "user_type": "interne"}),
    ("post", "/delegue/utilisateurs/etat", {"login": "{login}", "action": "disable"}),
    ("post", "/delegue/utilisateurs/etat", {"login": "{login}", "action": "enable"}),
    ("post", "/delegue/utilisateurs/etat", {"login": "{login}", "action": "unlock"}),
]


@pytest.mark.parametrize("index", range(len(B_USERS)), ids=[t for t, _ in B_USERS])
@pytest.mark.parametrize("method, path, data", LOGIN_ROUTES,
                         ids=["detail", "password", "access", "disable", "enable", "unlock"])
def test_every_user_route_on_every_other_adherent_login_is_refused(world, attacker, service_gw, index, method,
                                                                    path, data):
    scenario, client = attacker
    b_login = world["b_logins"][index]
    before = snapshot(service_gw, world["b"], world["b_logins"])
    url = path.format(login=b_login)
    if method == "get":
        resp = client.get(url)
    else:
        token = csrf_token(client, "/delegue/logins")
        resp = client.post(url, data={"csrf_token": token, **{k: v.format(login=b_login) for k, v in data.items()}})
    assert resp.status_code in (403, 404), f"{scenario}: {resp.status_code} {text(resp)[:300]}"
    assert snapshot(service_gw, world["b"], world["b_logins"]) == before


@pytest.mark.parametrize("path", ["/delegue/", "/delegue/t/easypaiement", "/delegue/t/compte-adherent/nouveau",
                                  "/delegue/journal", "/delegue/logins?q=u", "/delegue/revues/",
                                  "/telechargements/reabonnement", "/delegue/import"])
def test_every_adherent_page_shows_nothing_of_another_adherent(world, attacker, path):
    scenario, client = attacker
    resp = client.get(path)
    page = text(resp)
    if path != "/delegue/journal" or scenario != "normal":  # A's journal lists A's own refused attempts
        assert not any(lg in page for lg in world["b_logins"]), scenario
    if scenario == "wall 1 broken" and path != "/delegue/import":  # (the import page is a blank form)
        # the pages of adherent B, read with A's token: Keycloak refuses
        assert resp.status_code == 403, f"{path}: {resp.status_code} {page[:300]}"


def test_search_finds_no_login_of_another_adherent(world, attacker):
    scenario, client = attacker
    for b_login in world["b_logins"]:
        resp = client.get("/delegue/logins", query_string={"q": b_login})
        assert resp.status_code in (200, 403, 404), scenario
        assert b_login not in text(resp).replace(f"« {b_login} »", "")


def test_creating_importing_or_changing_settings_for_another_adherent_is_refused(world, attacker, service_gw):
    scenario, client = attacker
    before = snapshot(service_gw, world["b"], world["b_logins"])
    token = csrf_token(client, "/delegue/logins")
    new_login = login("intr")
    created = client.post("/delegue/t/compte-adherent/nouveau", data={"csrf_token": token, **user_form(new_login)})
    csv = ("login,nom,prenom,email,password,teleservice,powers,question1,answer1,question2,answer2\n"
           f"{world['b_logins'][0]},Intrus,Ivan,ivan@example.ma,User2026,easypaiement,validateur,"
           "Ville de naissance de votre père ?,Fes,Nom de votre premier animal de compagnie ?,Mimi\n")
    imported = client.post("/delegue/import", data={"csrf_token": token, "file": (io.BytesIO(csv.encode()), "u.csv")},
                           content_type="multipart/form-data")
    settings = client.post("/delegue/parametres", data={"csrf_token": token, "confirmations": "2"})
    if scenario == "wall 1 broken":
        assert (created.status_code, imported.status_code, settings.status_code) == (403, 403, 403)
        assert service_gw.user_by_username(new_login) is None
    else:  # the route acts on A (the adherent of the login); B is out of reach
        created_user = service_gw.user_by_username(new_login)
        assert created_user is None or created_user.attr("adherent") == world["a"]
    assert snapshot(service_gw, world["b"], world["b_logins"]) == before


def test_the_same_routes_work_on_the_delegates_own_users(portal, world, service_gw):
    """Keycloak lets the delegate's own token do its own adherent's work (including the settings page)."""
    client = login_client(portal, world["a"], DELEGATE_PASSWORD)
    a_login = world["a_login"]
    token = csrf_token(client, f"/delegue/utilisateurs/{a_login}")
    assert client.get(f"/delegue/utilisateurs/{a_login}").status_code == 200
    assert client.post(f"/delegue/utilisateurs/{a_login}/mot-de-passe", data={
        "csrf_token": token, "password": "Ownp2026", "password_confirm": "Ownp2026"}).status_code == 302
    assert client.post(f"/delegue/utilisateurs/{a_login}/acces", data={
        "csrf_token": token, "powers": ["ordonnateur", "validateur"]}).status_code == 302
    # (One confirmation: disabling this validator then needs no confirmation page.)
    assert client.post("/delegue/parametres", data={"csrf_token": token, "confirmations": "1"}).status_code == 302
    for action in ("disable", "enable", "unlock"):
        resp = client.post("/delegue/utilisateurs/etat", data={"csrf_token": token, "login": a_login,
                                                               "action": action})
        assert resp.status_code == 302, (action, text(resp)[:300])
    new_login = login("own")
    assert client.post("/delegue/t/compte-adherent/nouveau",
                       data={"csrf_token": token, **user_form(new_login)}).status_code == 302
    assert service_gw.user_by_username(new_login).attr("adherent") == world["a"]
    assert client.post("/delegue/parametres", data={"csrf_token": token, "confirmations": "1"}).status_code == 302
    for path in ("/delegue/", "/delegue/t/easypaiement", "/delegue/journal", "/delegue/logins?q=u",
                 "/delegue/revues/", "/telechargements/reabonnement"):
        assert client.get(path).status_code == 200, path
    user = service_gw.user_by_username(a_login)
    assert sorted(g.path for g in service_gw.user_groups(user.id)) == [
        f"/adherents/{world['a']}/easypaiement/ordonnateur", f"/adherents/{world['a']}/easypaiement/validateur"]
