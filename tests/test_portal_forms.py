"""Every form: bad input shows the message next to the field and keeps what was typed; CSRF is required."""

from __future__ import annotations

import re

import pytest

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD, numero
from tests.portal_support import csrf_token, login_client, subscription_data, text



def field_error(page: str, field_id: str) -> str | None:
    """The error message tied to a field (aria-describedby → the error's id), or None."""
    m = re.search(rf'<[^>]+id="{re.escape(field_id)}"[^>]*>', page)
    assert m, f"no field {field_id}"
    tag = m.group(0)
    if f'{field_id}-error' not in tag or ('aria-invalid="true"' not in tag and not tag.startswith("<fieldset")):
        return None
    err = re.search(rf'id="{re.escape(field_id)}-error">([^<]+)<', page)
    return err.group(1) if err else None


def field_value(page: str, field_id: str) -> str | None:
    tag = re.search(rf'<input[^>]+id="{re.escape(field_id)}"[^>]*>', page).group(0)
    m = re.search(r'value="([^"]*)"', tag)
    return m.group(1) if m else None


def test_subscription_success_shows_printable_summary_and_next_steps(portal):
    client = portal.client()
    n = numero()
    data = subscription_data(n) | {"csrf_token": csrf_token(client, "/abonnement")}
    resp = client.post("/abonnement", data=data)
    assert resp.status_code == 302, text(resp)[:600]
    page = client.get(resp.headers["Location"])
    body = text(page)
    assert "48 heures" in body and n in body and "Atlas Textile SARL" in body and "Cachet" in body
    assert DELEGATE_PASSWORD not in page.get_data(as_text=True)


@pytest.mark.parametrize("over, field, message", [
    ({"company-numero": "12"}, "company-numero", "4 à 10 chiffres"),
    ({"company-raison_sociale": ""}, "company-raison_sociale", "obligatoire"),
    ({"company-rc": ""}, "company-rc", "obligatoire"),
    ({"company-patente": ""}, "company-patente", "obligatoire"),
    ({"responsable-nom": ""}, "responsable-nom", "obligatoire"),
    ({"delegate-email": "pas-un-email"}, "delegate-email", "adresse e-mail valide"),
    ({"delegate-password": "abc", "delegate-password_confirm": "abc"}, "delegate-password", "5 à 10 caractères"),
    ({"delegate-password": "Abc-123", "delegate-password_confirm": "Abc-123"}, "delegate-password",
     "lettres et des chiffres"),
    ({"delegate-password_confirm": "Autre2026"}, "delegate-password_confirm", "pas identiques"),
    ({"company-site_web": "pas un site"}, "company-site_web", "site web invalide"),
])
def test_subscription_errors_sit_next_to_the_field_and_input_is_kept(portal, over, field, message):
    client = portal.client()
    n = numero()
    data = subscription_data(n, **over) | {"csrf_token": csrf_token(client, "/abonnement")}
    resp = client.post("/abonnement", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    error = field_error(page, field)
    assert error and message in error, f"{field}: {error!r}"
    assert field_value(page, "company-raison_sociale") == data["company-raison_sociale"]
    assert field_value(page, "delegate-fonction") == "Responsable RH"
    assert 'role="alert"' in page  # the summary of errors, linking to the fields


def test_subscription_twice_for_the_same_adherent_is_refused_on_the_number(portal, make_adherent):
    n = make_adherent()
    client = portal.client()
    resp = client.post("/abonnement", data=subscription_data(n) | {"csrf_token": csrf_token(client, "/abonnement")})
    assert resp.status_code == 422
    assert field_error(resp.get_data(as_text=True), "company-numero")


@pytest.mark.parametrize("path", ["/abonnement", "/mot-de-passe-oublie/"])
def test_posting_without_csrf_is_refused(portal, path):
    resp = portal.client().post(path, data={"login": "x"})
    assert resp.status_code == 400 and "expiré" in text(resp)


@pytest.fixture(scope="module")
def delegate(portal, make_adherent):
    n = make_adherent()
    return n, login_client(portal, n, DELEGATE_PASSWORD)


def user_form(login: str, over: dict | None = None) -> dict:
    return {"login": login, "civilite": "M", "nom": "El Idrissi", "prenom": "Youssef", "email": f"{login}@atlas.ma",
            "fonction": "Comptable", "telephone": "+212 600 00 00 00", "password": "User2026",
            "password_confirm": "User2026", "question1": "Ville de naissance de votre père ?", "answer1": "Fès",
            "question2": "Nom de votre premier animal de compagnie ?", "answer2": "Mimi"} | (over or {})


@pytest.mark.parametrize("tab, over, field, message", [
    ("compte-adherent", {"login": "A b"}, "login", "3 à 30 caractères"),
    ("compte-adherent", {"email": "nope"}, "email", "adresse e-mail valide"),
    ("compte-adherent", {"nom": ""}, "nom", "obligatoire"),
    ("compte-adherent", {"password": "abc", "password_confirm": "abc"}, "password", "5 à 10 caractères"),
    ("compte-adherent", {"password": "Abc12345", "password_confirm": "Abc12346"}, "password_confirm", "pas identiques"),
    ("compte-adherent", {"question2": "", "answer2": ""}, "question1", "deux questions"),
    ("easypaiement", {}, "powers", "Ordonnateur et/ou Validateur"),
    ("teledeclaration-interne", {}, "powers", "Fichier préétabli"),
    ("teledeclaration-externe", {"powers": "formulaire-saisie", "provider": ""}, "provider", "prestataire"),
])
def test_create_user_errors_keep_the_input(portal, delegate, tab, over, field, message):
    n, client = delegate
    path = f"/delegue/t/{tab}/nouveau"
    data = user_form("usr" + numero(), over) | {"csrf_token": csrf_token(client, path)}
    resp = client.post(path, data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, text(resp)[:500]
    error = field_error(page, field)
    assert error and message in error, f"{field}: {error!r}"
    assert field_value(page, "prenom") == "Youssef"
    assert field_value(page, "email") == data["email"]


def test_delegate_password_and_settings_forms_show_errors(portal, delegate):
    n, client = delegate
    path = "/delegue/t/compte-adherent/nouveau"
    login = "usr" + numero()
    resp = client.post(path, data=user_form(login) | {"csrf_token": csrf_token(client, path)})
    assert resp.status_code == 302, text(resp)[:500]
    token = csrf_token(client, f"/delegue/utilisateurs/{login}")
    resp = client.post(f"/delegue/utilisateurs/{login}/mot-de-passe",
                       data={"csrf_token": token, "password": "a b", "password_confirm": "a b"})
    assert resp.status_code == 422 and field_error(resp.get_data(as_text=True), "password")
    resp = client.post("/delegue/parametres", data={"csrf_token": token, "confirmations": "3"})
    assert resp.status_code == 422
    assert "1 ou 2" in field_error(resp.get_data(as_text=True), "confirmations")


def test_agent_reject_needs_a_reason(portal, staff):
    client = portal.client()
    n = numero()
    client.post("/abonnement", data=subscription_data(n) | {"csrf_token": csrf_token(client, "/abonnement")})
    agent = login_client(portal, staff["agent"], STAFF_PASSWORD)
    page = agent.get("/agent/").get_data(as_text=True)
    sub_id = re.search(rf'/agent/abonnements/(\d+)">[^<]*<span class="visually-hidden"> {n}<', page).group(1)
    token = csrf_token(agent, f"/agent/abonnements/{sub_id}")
    resp = agent.post(f"/agent/abonnements/{sub_id}/refuser", data={"csrf_token": token, "reason": ""})
    assert resp.status_code == 422 and field_error(resp.get_data(as_text=True), "reason")


@pytest.mark.parametrize("over, field", [
    ({"login": ""}, "login"),
])
def test_reset_start_requires_a_login(portal, over, field):
    client = portal.client()
    resp = client.post("/mot-de-passe-oublie/", data=over | {"csrf_token": csrf_token(client, "/mot-de-passe-oublie/")})
    assert resp.status_code == 422 and field_error(resp.get_data(as_text=True), field)
