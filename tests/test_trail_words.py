"""The trail in words (provisioner/trail_words.py): what the journals say of each entry, French first, English when
chosen — never a code, a key, an exception's name or Python's None."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from provisioner import trail_words
from provisioner.errors import Message, NeedsConfirmation, NotAllowed, TenantViolation, ValidationError
from provisioner.trail import REFUSAL, TrailEntry, _with_reason, scrub

AT = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
NAMES = {"easypaiement": "E@syPaiement", "compte-adherent": "Compte Adhérent"}


def entry(action="user.create", outcome="ok", actor="12345678", role="delegate", target="compta.atlas",
          detail=None, after=None) -> TrailEntry:
    return TrailEntry(AT, actor, role, "12345678", action, target, outcome, detail, None, after)


def refused(exc: Exception, action="user.create") -> TrailEntry:
    """An entry as ``audited`` writes it for this refusal."""
    return entry(action, "refused", detail=f"{type(exc).__name__}: {exc}", after=_with_reason(None, exc))


@pytest.mark.parametrize("e, who", [
    (entry(), ("12345678", "personne déléguée")),
    (entry(actor="agent.benali", role="agent"), ("agent.benali", "agent CIMR")),
    (entry(actor="subscriber:12345678", role="subscriber"), ("12345678", "demande d'abonnement")),
    (entry(actor="revue-des-acces (tâche planifiée)", role="system"), ("Revue des accès", "tâche planifiée")),
])
def test_who_acted_and_as_what(e, who):
    name, role = trail_words.actor(e)
    assert (name if isinstance(name, str) else name.fr, role.fr) == who


@pytest.mark.parametrize("target, words", [
    ("compta.atlas", "compta.atlas"),
    ("subscription:12", "abonnement n° 12"),
    ("campaign:3", "revue des accès n° 3"),
    ("client:easypaiement", "client E@syPaiement"),
    ("easypaiement", "E@syPaiement"),
    (None, "—"),
])
def test_on_what(target, words):
    said = trail_words.target(entry(target=target), NAMES)
    assert (said if isinstance(said, str) else said.fr) == words


def test_a_refused_form_says_which_field_and_why():
    e = refused(ValidationError({"email": Message("Indiquez une adresse e-mail valide.", "Enter a valid e-mail.")}))
    assert trail_words.action(e).fr == "Création d'un utilisateur"
    assert trail_words.outcome(e).fr == "refusée"
    assert [r.fr for r in trail_words.reasons(e)] == ["E-mail : Indiquez une adresse e-mail valide."]
    assert [r.en for r in trail_words.reasons(e)] == ["E-mail: Enter a valid e-mail."]


def test_a_teleservice_named_by_its_id_in_a_refusal_is_said_by_its_name():
    e = refused(ValidationError({"teleservice": Message("Téléservice inconnu : choisissez parmi compte-adherent, "
                                                        "easypaiement.", "Unknown teleservice: compte-adherent.")}))
    assert trail_words.reasons(e, NAMES)[0].fr == ("Téléservice : Téléservice inconnu : choisissez parmi "
                                                   "Compte Adhérent, E@syPaiement.")


def test_a_confirmation_asked_is_not_a_refusal():
    warning = Message("L'adhérent n'aura plus que 1 validateur(s) actif(s).", "Only 1 validator left.")
    e = refused(NeedsConfirmation("confirmed", warning), "user.disable")
    assert trail_words.action(e).fr == "Désactivation d'un utilisateur"
    assert trail_words.outcome(e).fr == "confirmation demandée"
    assert "1 validateur" in trail_words.reasons(e)[0].fr


@pytest.mark.parametrize("e, reason", [
    (refused(TenantViolation("12345678", "87654321", "x")), "hors de l'adhérent de la personne"),
    (refused(NotAllowed("agent.x", "review.open", Message("Seule l'équipe sécurité…", "Only…"))),
     "Seule l'équipe sécurité…"),
    (entry("user.reset_questions", "refused", actor="compta.atlas", role="user", detail="wrong answers"),
     "réponses erronées"),
    (entry("review.decide", after={"decision": "revoke"}), "révoqué : compte désactivé, sessions fermées"),
    (entry("review.disable_unreviewed", detail="not reviewed by the deadline 2026-12-31 (campaign 4)"),
     "non revu à l'échéance du 31/12/2026 (campagne n° 4)"),
    (entry("adherent.suspend", role="agent", detail="Lettre du 02/12/2026"), "Lettre du 02/12/2026"),
    (entry("user.create", "error", detail="KeycloakUnavailable: connection refused"), "Keycloak ne répondait pas"),
    (entry("user.create", "error", detail="OperationalError: boom"), "incident technique"),
])
def test_why_in_words(e, reason):
    assert [r.fr for r in trail_words.reasons(e)] == [reason]


def test_an_english_detail_we_do_not_know_is_not_shown():
    assert trail_words.reasons(entry(detail="something the code wrote")) == []


def test_a_refusal_keeps_what_the_person_was_told_even_about_a_password():
    exc = ValidationError({"password": Message("5 à 10 caractères.", "5 to 10 characters.")})
    kept = scrub(_with_reason({"login": "x"}, exc))  # what the trail writes
    assert kept == {"login": "x", REFUSAL: [{"field": "password", "fr": "5 à 10 caractères.",
                                            "en": "5 to 10 characters."}]}
