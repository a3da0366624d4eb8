"""The delegate edits a user: nom, prénom, e-mail, téléphone, fonction and the secret questions (suggested or of
one's own); every field checked with a French message, nothing half-updated, the trail without the answers."""

from __future__ import annotations

import html

import pytest

from devstack.builders import DELEGATE_PASSWORD, make_user
from provisioner import secret_questions
from provisioner.tenancy import Actor
from provisioner.trail import events
from tests.portal_support import csrf_token, login_client, text
from tests.test_portal_forms import field_error, field_value

GOOD = {"civilite": "Mme", "nom": "Benjelloun", "prenom": "Nadia", "email": "n.benjelloun@atlas.ma",
        "fonction": "Trésorière", "telephone": "+212 661 00 00 00"}
QUESTIONS = {"question1": "Ville de naissance de votre père ?", "own_question1": "", "answer1": "Meknès",
             "question2": "", "own_question2": "Nom de la rue de mon enfance ?", "answer2": "Zerktouni"}


@pytest.fixture(scope="module")
def delegate(portal, make_adherent):
    n = make_adherent()
    return n, login_client(portal, n, DELEGATE_PASSWORD)


@pytest.fixture
def user(delegate, service_gw, services):
    n, _ = delegate
    return make_user(service_gw, services, Actor.delegate(n), n, "compte-adherent")


def edit(client, login: str, data: dict):
    path = f"/delegue/utilisateurs/{login}/modifier"
    return client.post(path, data={"csrf_token": csrf_token(client, path), **data})


def test_the_edit_page_shows_the_details_and_the_questions_never_the_answers(delegate, user):
    _, client = delegate
    resp = client.get(f"/delegue/utilisateurs/{user.login}/modifier")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert field_value(page, "nom") == "El Idrissi" and field_value(page, "email") == user.details.email
    assert "Ville de naissance de votre père ?" in html.unescape(page)
    assert "Fès" not in html.unescape(page) and "Mimi" not in page  # the current answers (devstack/builders.py)
    assert f'href="/delegue/utilisateurs/{user.login}/modifier"' in client.get(
        f"/delegue/utilisateurs/{user.login}").get_data(as_text=True)


def test_edit_details_and_replace_the_questions_with_ones_own(delegate, user, service_gw, services):
    n, client = delegate
    resp = edit(client, user.login, GOOD | QUESTIONS)
    assert resp.status_code == 302, text(resp)[:600]
    kc = service_gw.user_by_username(user.login)
    assert (kc.last_name, kc.first_name, kc.email) == ("Benjelloun", "Nadia", "n.benjelloun@atlas.ma")
    assert (kc.attr("fonction"), kc.attr("telephone"), kc.attr("civilite")) == ("Trésorière", "+212 661 00 00 00",
                                                                                "Mme")
    assert kc.attr("adherent") == n and kc.attr("teleservice") == "compte-adherent"  # the rest kept
    assert secret_questions.questions_of(services.db, user.id) == ["Ville de naissance de votre père ?",
                                                                    "Nom de la rue de mon enfance ?"]
    assert secret_questions.verify(services.db, user.id, ["meknes", "ZERKTOUNI"])
    [entry] = events(services.db, target=user.login, action="user.edit")
    assert entry.actor == n and entry.outcome == "ok"
    assert entry.before["nom"] == "El Idrissi" and entry.after["nom"] == "Benjelloun"
    assert entry.after["questions"] == ["Ville de naissance de votre père ?", "Nom de la rue de mon enfance ?"]
    recorded = repr((entry.before, entry.after, entry.detail))
    assert "Meknès" not in recorded and "Zerktouni" not in recorded and "Fès" not in recorded


def test_questions_left_empty_are_kept(delegate, user, services):
    _, client = delegate
    assert edit(client, user.login, GOOD | {"nom": "Alami"}).status_code == 302
    assert secret_questions.verify(services.db, user.id, ["Fès", "Mimi"])


@pytest.mark.parametrize("over, field, message", [
    ({"nom": ""}, "nom", "Ce champ est obligatoire."),
    ({"prenom": "N4dia"}, "prenom", "Lettres, espaces, apostrophes et tirets seulement."),
    ({"email": "nadia@"}, "email", "n'est pas une adresse e-mail valide"),
    ({"telephone": "appelez-moi"}, "telephone", "Numéro de téléphone invalide"),
    ({"fonction": "x" * 81}, "fonction", "80 caractères au plus."),
    ({"own_question1": "Ma question ?"}, "own_question1", "pas les deux"),
    ({"answer2": "Z"}, "answer2", "Réponse de 2 à 100 caractères."),
    ({"question2": "", "own_question2": "", "answer2": ""}, "question1", "au moins deux questions"),
])
def test_a_bad_field_is_named_in_french_the_input_is_kept_and_nothing_changes(delegate, user, service_gw, services,
                                                                               over, field, message):
    _, client = delegate
    resp = edit(client, user.login, GOOD | QUESTIONS | over)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, text(resp)[:500]
    error = field_error(page, field)
    assert error and message in html.unescape(error), f"{field}: {error!r}"
    assert field_value(page, "prenom") == (GOOD | over)["prenom"]  # what was typed stays
    kc = service_gw.user_by_username(user.login)
    assert (kc.last_name, kc.email) == ("El Idrissi", user.details.email)  # neither the details...
    assert secret_questions.verify(services.db, user.id, ["Fès", "Mimi"])   # ...nor the questions changed
    assert events(services.db, target=user.login, action="user.edit")[0].outcome == "refused"


def test_editing_needs_csrf(delegate, user, service_gw):
    _, client = delegate
    resp = client.post(f"/delegue/utilisateurs/{user.login}/modifier", data=GOOD)
    assert resp.status_code in (400, 422)
    assert service_gw.user_by_username(user.login).last_name == "El Idrissi"
