"""The pure rules (no Keycloak): fields, passwords from the realm's policy, access, secret answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import rules
from provisioner.catalogue import Catalogue
from provisioner.errors import RuleViolation
from provisioner.realm.spec import PasswordPolicy, load_realm_spec
from provisioner.rules import Access
from provisioner.secret_questions import normalise
from provisioner.settings import PROJECT_ROOT

SPEC = load_realm_spec(PROJECT_ROOT / "realm", "cimr")
POLICY = SPEC.password_policy
CATALOGUE = Catalogue.from_spec(SPEC)
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


@pytest.mark.parametrize("confirmations, validators, refused", [
    (1, 0, False), (1, 1, False), (2, 2, False), (2, 3, False), (2, 1, True), (2, 0, True), (3, 5, True),
    (0, 5, True)])
def test_confirmations_rule(confirmations, validators, refused):
    if refused:
        with pytest.raises(RuleViolation):
            rules.check_confirmations(confirmations, validators)
    else:
        rules.check_confirmations(confirmations, validators)


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
