"""A delegate of company A reaches none of company B's users: by URL, by form field, by search or import."""

from __future__ import annotations

import io

import pytest

from devstack.builders import DELEGATE_PASSWORD, make_user
from tests.portal_support import csrf_token, login_client, text



@pytest.fixture(scope="module")
def world(portal, make_adherent, service_gw, services, agent):
    a, b = make_adherent(), make_adherent()
    b_user = make_user(service_gw, services, agent, b, "easypaiement", ("ordonnateur", "validateur"))
    client = login_client(portal, a, DELEGATE_PASSWORD)
    return {"a": a, "b": b, "b_login": b_user.login, "client": client,
            "token": csrf_token(client, "/delegue/")}


def b_user_untouched(service_gw, world) -> None:
    user = service_gw.user_by_username(world["b_login"])
    assert user.enabled and user.attr("adherent") == world["b"]
    groups = {g.path for g in service_gw.user_groups(user.id)}
    assert groups == {f"/adherents/{world['b']}/easypaiement/ordonnateur",
                      f"/adherents/{world['b']}/easypaiement/validateur"}


@pytest.mark.parametrize("method, path, data", [
    ("get", "/delegue/utilisateurs/{login}", None),
    ("post", "/delegue/utilisateurs/{login}/mot-de-passe", {"password": "Hack2026", "password_confirm": "Hack2026"}),
    ("post", "/delegue/utilisateurs/{login}/acces", {"powers": "ordonnateur"}),
    ("get", "/delegue/utilisateurs/{login}/modifier", None),
    ("post", "/delegue/utilisateurs/{login}/modifier", {"nom": "Intrus", "prenom": "Ivan", "email": "i@x.ma",
                                                        "question1": "Ville ?", "answer1": "Fes",
                                                        "own_question2": "Rue ?", "answer2": "Zerktouni"}),
])
def test_another_company_user_by_url_is_forbidden(world, service_gw, method, path, data):
    client = world["client"]
    url = path.format(login=world["b_login"])
    resp = client.get(url) if method == "get" else client.post(url, data={"csrf_token": world["token"], **data})
    assert resp.status_code in (403, 404), text(resp)[:300]
    assert world["b_login"] not in text(resp)
    b_user_untouched(service_gw, world)


@pytest.mark.parametrize("action", ["disable", "enable", "unlock"])
def test_another_company_user_by_form_field_is_forbidden(world, service_gw, action):
    resp = world["client"].post("/delegue/utilisateurs/etat",
                                data={"csrf_token": world["token"], "login": world["b_login"], "action": action})
    assert resp.status_code in (403, 404)
    b_user_untouched(service_gw, world)


def test_editing_another_company_user_by_keycloak_id_in_the_url_is_refused(world, service_gw):
    b_id = service_gw.user_by_username(world["b_login"]).id
    resp = world["client"].post(f"/delegue/utilisateurs/{b_id}/modifier", data={
        "csrf_token": world["token"], "nom": "Intrus", "prenom": "Ivan", "email": "i@x.ma"})
    assert resp.status_code in (403, 404)
    assert service_gw.user_by_username(world["b_login"]).last_name != "Intrus"
    b_user_untouched(service_gw, world)


def test_editing_with_a_forged_login_field_edits_only_the_user_of_the_url(world, service_gw, services):
    """The edit form has no login field: one added by hand is ignored, the URL's (own) user is the one edited."""
    from provisioner.tenancy import Actor
    own = make_user(service_gw, services, Actor.delegate(world["a"]), world["a"], "compte-adherent")
    before = service_gw.user_by_username(world["b_login"])
    resp = world["client"].post(f"/delegue/utilisateurs/{own.login}/modifier", data={
        "csrf_token": world["token"], "login": world["b_login"], "id": before.id, "nom": "Forge", "prenom": "Ivan",
        "email": "forge@x.ma"})
    assert resp.status_code == 302, text(resp)[:300]
    assert service_gw.user_by_username(own.login).last_name == "Forge"
    after = service_gw.user_by_username(world["b_login"])
    assert (after.last_name, after.email) == (before.last_name, before.email)
    b_user_untouched(service_gw, world)


def test_an_unknown_login_is_a_404(world):
    assert world["client"].get("/delegue/utilisateurs/nobody.here").status_code in (403, 404)


def test_search_does_not_find_another_company_user(world):
    resp = world["client"].get("/delegue/logins", query_string={"q": world["b_login"]})
    assert resp.status_code == 200 and world["b_login"] not in text(resp).replace(f"« {world['b_login']} »", "")


def test_creating_a_user_with_another_company_login_is_refused(world, service_gw):
    client = world["client"]
    path = "/delegue/t/compte-adherent/nouveau"
    resp = client.post(path, data={
        "csrf_token": world["token"], "login": world["b_login"], "nom": "Intrus", "prenom": "Ivan",
        "email": "ivan@example.ma", "password": "User2026", "password_confirm": "User2026",
        "question1": "Ville de naissance de votre père ?", "answer1": "Fès",
        "question2": "Nom de votre premier animal de compagnie ?", "answer2": "Mimi"})
    assert resp.status_code == 422 and "déjà utilisé" in text(resp)
    b_user_untouched(service_gw, world)


def test_bulk_import_cannot_touch_another_company_user(world, service_gw):
    csv = ("login,nom,prenom,email,password,teleservice,powers,question1,answer1,question2,answer2\n"
           f"{world['b_login']},Intrus,Ivan,ivan@example.ma,User2026,easypaiement,validateur,"
           "Ville de naissance de votre père ?,Fès,Nom de votre premier animal de compagnie ?,Mimi\n")
    resp = world["client"].post("/delegue/import", data={"csrf_token": world["token"],
                                                         "file": (io.BytesIO(csv.encode()), "users.csv")},
                                content_type="multipart/form-data")
    assert resp.status_code in (200, 403)
    assert "1 créé" not in text(resp)
    b_user_untouched(service_gw, world)


@pytest.mark.parametrize("path", ["/agent/", "/agent/adherents/{b}", "/auditeur/"])
def test_delegate_cannot_open_staff_pages(world, path):
    assert world["client"].get(path.format(b=world["b"])).status_code == 403


def test_state_changes_need_csrf(world):
    resp = world["client"].post("/delegue/utilisateurs/etat", data={"login": world["b_login"], "action": "disable"})
    assert resp.status_code == 400
