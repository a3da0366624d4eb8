"""The pure rules (no Keycloak): fields, passwords from the realm's policy, access, secret answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import rules
from provisioner.errors import NeedsConfirmation, RuleViolation
from provisioner.rules import PasswordPolicy
from provisioner.realm.schema import load_realm_spec
from provisioner.rules import Access
from provisioner.secret_questions import normalise
from provisioner.settings import PROJECT_ROOT

SPEC = load_realm_spec(PROJECT_ROOT / "realm", "cimr")
POLICY = SPEC.password_policy
CATALOGUE = SPEC.catalogue()
ACTIVE = ("cadres", "employes", "ouvriers")


def test_policy_is_the_realms():
    assert (POLICY.min_length, POLICY.max_length, POLICY.pattern) == (5, 10, "^[A-Za-z0-9]+$")


@pytest.mark.parametrize("password, expected", [
    ("Abc12", None),
    ("abcdefghij", None),
    ("Abc1", "Le mot de passe doit compter de 5 à 10 caractères (il en a 4)."),
    ("Abcdefghijk", "Le mot de passe doit compter de 5 à 10 caractères (il en a 11)."),
    ("Abc 123", "Le mot de passe ne peut contenir que des lettres et des chiffres (sans accents, espaces ni symboles)."),
    ("Abcé123", "Le mot de passe ne peut contenir que des lettres et des chiffres (sans accents, espaces ni symboles)."),
    ("jdupont", "Le mot de passe ne peut pas être l'identifiant."),
    ("", "Ce champ est obligatoire."),
])
def test_password_rule(password, expected):
    problem = rules.check_password(POLICY, password, "jdupont")
    assert (problem.fr if problem else None) == expected


def test_password_rule_follows_another_policy():
    policy = PasswordPolicy(8, 64, "^(?=.*[0-9])(?=.*[a-z]).+$", False, 0)
    assert rules.check_password(policy, "abcdefg1", "x") is None
    assert "de 8 à 64" in rules.check_password(policy, "abc1", "x").fr
    assert "ne respecte pas la règle" in rules.check_password(policy, "abcdefgh", "x").fr


@pytest.mark.parametrize("login, ok", [
    ("jdupont", True), ("j.dupont-2", True), ("a_b", True), ("a" * 30, True),
    ("ab", False), ("a" * 31, False), ("Jdupont", False), ("1jdupont", False), ("12345678", False),
    ("j dupont", False), ("jdupont@x", False), ("", False), ("josé", False),
])
def test_login_character_set_and_length(login, ok):
    assert (rules.check_login(login) is None) == ok


@pytest.mark.parametrize("access, field", [
    (Access("x"), "teleservice"),
    (Access("easypaiement"), "powers"),
    (Access("easypaiement", ("utilisateur",)), "powers"),
    (Access("compte-adherent", ("ordonnateur",)), "powers"),
    (Access("eliquidation", ("fichier-preetabli",)), "powers"),
    (Access("teledeclaration", ("validateur",), "interne"), "powers"),
    (Access("teledeclaration", ("fichier-preetabli",), "mixte"), "user_type"),
    (Access("teledeclaration", ("fichier-preetabli",), "externe", " "), "provider"),
    (Access("teledeclaration", ("fichier-preetabli",), "interne", None, ("cadres", "marins")), "categories"),
])
def test_access_refusals(access, field):
    assert field in rules.check_access(access, ACTIVE, CATALOGUE)


def test_access_defaults():
    assert Access("compte-adherent").normalised(ACTIVE, CATALOGUE).powers == ("utilisateur",)
    td = Access("teledeclaration", ("formulaire-saisie",), "interne", "ignored").normalised(ACTIVE, CATALOGUE)
    assert td.categories == ACTIVE and td.provider is None
    assert Access("easypaiement", ("validateur",), "interne").normalised(ACTIVE, CATALOGUE).user_type is None


@pytest.mark.parametrize("confirmations, refused", [(1, False), (2, False), (3, True), (0, True)])
def test_confirmations_are_one_or_two_whatever_the_validators(confirmations, refused):
    """The brochure's order: 2 confirmations may be chosen before the second validator exists."""
    if refused:
        with pytest.raises(RuleViolation) as exc:
            rules.check_confirmations(confirmations)
        assert exc.value.message.fr == "Nombre de confirmations : 1 ou 2."
    else:
        rules.check_confirmations(confirmations)


@pytest.mark.parametrize("confirmations, validators, missing", [
    (1, 0, 0), (1, 1, 0), (2, 0, 2), (2, 1, 1), (2, 2, 0), (2, 3, 0)])
def test_an_adherent_is_incomplete_with_two_confirmations_and_fewer_than_two_validators(confirmations, validators,
                                                                                          missing):
    assert rules.validators_missing(confirmations, validators) == missing


@pytest.mark.parametrize("validators, says", [
    (0, "n'a aucun validateur actif. Créez deux validateurs"),
    (1, "n'a que 1 validateur actif. Ajoutez un deuxième validateur")])
def test_the_banner_says_what_is_missing_and_where_to_add_it(validators, says):
    message = rules.incomplete_message(validators)
    assert says in message.fr and "« Nouveau validateur »" in message.fr and "New validator" in message.en


@pytest.mark.parametrize("confirmations, after, confirmed, asks", [
    (2, 1, False, True), (2, 0, False, True), (2, 1, True, False), (2, 2, False, False), (1, 0, False, False)])
def test_a_departing_validator_is_disabled_after_a_confirmation_when_too_few_would_remain(confirmations, after,
                                                                                          confirmed, asks):
    if asks:
        with pytest.raises(NeedsConfirmation) as exc:
            rules.check_validator_departure(confirmations, after, confirmed)
        assert exc.value.field == "confirm"
        assert f"n'aura plus que {after} validateur(s) actif(s)" in exc.value.message.fr
    else:
        rules.check_validator_departure(confirmations, after, confirmed)


def test_removing_the_validator_power_is_still_refused_when_too_few_would_remain():
    with pytest.raises(RuleViolation) as exc:
        rules.check_validator_removal(2, 1)
    assert not isinstance(exc.value, NeedsConfirmation)
    rules.check_validator_removal(2, 2)
    rules.check_validator_removal(1, 0)


@pytest.mark.parametrize("suggested, own, question, problem", [
    ("Ville de naissance de votre père ?", "", "Ville de naissance de votre père ?", False),
    ("", "  Nom de ma rue d'enfance ?  ", "Nom de ma rue d'enfance ?", False),
    ("Ville de naissance de votre père ?", "Nom de ma rue ?", "Nom de ma rue ?", True),
    ("", "", "", False)])
def test_a_question_is_a_suggested_one_or_ones_own_not_both(suggested, own, question, problem):
    assert rules.question_of(suggested, own) == question
    message = rules.check_question_choice(suggested, own)
    assert (message is not None) == problem
    if problem:
        assert message.fr == "Choisissez une question proposée ou écrivez la vôtre, pas les deux."


@pytest.mark.parametrize("raw, normal", [
    ("Fès", "fes"), ("  CASABLANCA  ", "casablanca"), ("Aïn   Sebaâ", "ain sebaa"), ("Straße", "strasse"),
    ("Ibn\tKhaldoun\n", "ibn khaldoun")])
def test_answers_are_normalised(raw, normal):
    assert normalise(raw) == normal


@pytest.mark.parametrize("phone, ok", [
    ("+212 522 11 22 33", True), ("0522112233", True), ("05-22-11-22-33", True), ("06.61.00.00.00", True),
    ("abc", False), ("12", False), ("+212 522 11 22 33 44 55 66", False)])
def test_phone(phone, ok):
    assert (rules.check_phone(phone) is None) == ok


# --- the delegate's edit page (provisioner.users.check_edit: pure) --------------------------------------------
GOOD = dict(nom="El Idrissi", prenom="Youssef", email="y@atlas.ma", civilite="M", fonction="Comptable",
            telephone="+212 600 00 00 00")


def _q(suggested="", own="", answer=""):
    from provisioner.users import QuestionChoice
    return QuestionChoice(suggested, own, answer)


@pytest.mark.parametrize("details, questions, field, says", [
    ({"nom": ""}, None, "nom", "Ce champ est obligatoire."),
    ({"prenom": "Y0ussef"}, None, "prenom", "Lettres, espaces, apostrophes et tirets seulement."),
    ({"email": "y@"}, None, "email", "n'est pas une adresse e-mail valide"),
    ({"telephone": "abc"}, None, "telephone", "Numéro de téléphone invalide"),
    ({"fonction": "x" * 81}, None, "fonction", "80 caractères au plus."),
    ({}, (_q("Ville ?", "Ma rue ?", "Fès"), _q("Chat ?", "", "Mimi")), "own_question1", "pas les deux"),
    ({}, (_q("Ville ?", "", "Fès"), _q("", "", "")), "secret_questions", "au moins deux questions"),
    ({}, (_q("Ville ?", "", "F"), _q("", "Ma rue ?", "Zerktouni")), "answer1", "Réponse de 2 à 100 caractères."),
    ({}, (_q("Ville ?", "", "Fès"), _q("", "ville ?", "Rabat")), "secret_questions", "questions différentes"),
])
def test_every_field_of_the_edit_page_is_checked_with_a_french_message(details, questions, field, says):
    from provisioner.users import check_edit
    from provisioner.teleservice_users import UserDetails
    errors = check_edit(UserDetails(**(GOOD | details)), questions)
    assert field in errors and says in errors[field].fr, errors


def test_an_edit_with_good_fields_and_ones_own_question_passes():
    from provisioner.users import check_edit
    from provisioner.teleservice_users import UserDetails
    assert check_edit(UserDetails(**GOOD), None) == {}
    assert check_edit(UserDetails(**GOOD), (_q("Ville ?", "", "Fès"), _q("", "Nom de ma rue ?", "Zerktouni"))) == {}
    assert "Zerktouni" not in repr(_q("", "Nom de ma rue ?", "Zerktouni"))  # answers stay out of logs
