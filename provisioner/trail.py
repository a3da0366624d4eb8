"""The trail in our database: every action, allowed or refused, with the person behind it.

(The *audit* is the security team's report, provisioner/audit/report.py; it reads this trail.)

Usage::

    with audited(db, actor, "user.disable", adherent, login) as entry:
        entry.before = {...}
        ...                      # raise to refuse; the outcome is recorded either way
        entry.after = {...}
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import insert, select

from provisioner import clock
from provisioner.db import Database, audit_events
from provisioner.errors import (Conflict, Forbidden, InputError, KeycloakRejected, Message, NotAllowed, NotFound,
                                RuleViolation, TenantViolation, ValidationError)
from provisioner.tenancy import Actor

# Never written to the trail, whatever an action puts in before/after.
SECRET_KEYS = frozenset({"password", "password_confirm", "credentials", "answer", "answers", "secret_questions",
                         "value", "secret"})
REFUSALS = (RuleViolation, ValidationError, TenantViolation, NotAllowed, Forbidden, NotFound, Conflict,
            KeycloakRejected)

# Each action in words, as an attempt (its outcome says whether it was done): the journals show these, never the
# code, which stays the key (filters, the audit, exports). provisioner/trail_words.py says the rest of an entry.
ACTIONS = {
    "subscription.submit": Message("Demande d'abonnement", "Subscription request"),
    "subscription.receive_paper": Message("Réception du formulaire signé", "Signed form received"),
    "subscription.approve": Message("Validation de l'abonnement", "Subscription approval"),
    "subscription.reject": Message("Refus de l'abonnement", "Subscription rejection"),
    "adherent.suspend": Message("Suspension de l'adhérent", "Member suspension"),
    "adherent.reactivate": Message("Réactivation de l'adhérent", "Member reactivation"),
    "adherent.terminate": Message("Résiliation de l'adhérent", "Member termination"),
    "adherent.reinstate": Message("Annulation de la résiliation", "Termination undone"),
    "adherent.purge": Message("Purge de l'adhérent (comptes et données personnelles effacés)",
                              "Member purge (accounts and personal data erased)"),
    "adherent.categories": Message("Modification des catégories actives", "Active categories change"),
    "adherent.easypaiement_confirmations": Message("Choix du nombre de confirmations E@syPaiement",
                                                   "E@syPaiement confirmations chosen"),
    "delegate.replace": Message("Remplacement de la personne déléguée (réabonnement)",
                                "Delegate replacement (re-subscription)"),
    "delegate.change_email": Message("Modification de l'e-mail de la personne déléguée", "Delegate's e-mail change"),
    "delegate.reset_password": Message("Réinitialisation du mot de passe de la personne déléguée",
                                       "Delegate's password reset"),
    "delegate.reset_second_factor": Message("Suppression du second facteur de la personne déléguée",
                                            "Delegate's second factor removal"),
    "delegate.password_link": Message("Envoi d'un lien de mot de passe à la personne déléguée",
                                      "Password link sent to the delegate"),
    "password.chosen_by_link": Message("Choix du mot de passe par lien", "Password chosen through a link"),
    "user.create": Message("Création d'un utilisateur", "User creation"),
    "user.edit": Message("Modification d'un utilisateur", "User edit"),
    "user.update_details": Message("Modification des coordonnées", "Details change"),
    "user.change_access": Message("Modification des pouvoirs", "Powers change"),
    "user.disable": Message("Désactivation d'un utilisateur", "User disabling"),
    "user.enable": Message("Réactivation d'un utilisateur", "User enabling"),
    "user.disable_dormant": Message("Désactivation après une longue inactivité", "Disabling after a long inactivity"),
    "user.unlock": Message("Déblocage d'un utilisateur", "User unlocking"),
    "user.set_password": Message("Nouveau mot de passe donné à l'utilisateur", "New password given to the user"),
    "user.set_secret_questions": Message("Remplacement des questions secrètes", "Secret questions replaced"),
    "user.reset_questions": Message("Réponses aux questions secrètes (mot de passe oublié)",
                                    "Secret questions answered (forgotten password)"),
    "user.password_reset_by_questions": Message("Réinitialisation du mot de passe par questions secrètes",
                                                "Password reset with secret questions"),
    "user.reset_second_factor": Message("Suppression du second facteur", "Second factor removal"),
    "user.list": Message("Consultation des utilisateurs", "Users viewed"),
    "user.show": Message("Consultation d'un utilisateur", "User viewed"),
    "user.find_login": Message("Recherche d'un login", "Login search"),
    "bulk.import": Message("Import d'utilisateurs (CSV)", "Users import (CSV)"),
    "mail.resend": Message("Nouvel envoi d'un courriel", "Mail sent again"),
    "client.rotate_secret": Message("Renouvellement d'un secret de client", "Client secret rotation"),
    "staff.create.agent": Message("Création d'un compte d'agent CIMR", "CIMR agent account creation"),
    "staff.create.auditor": Message("Création d'un compte de l'équipe sécurité", "Security team account creation"),
    "review.open": Message("Ouverture d'une revue des accès", "Access review opening"),
    "review.list": Message("Consultation de la revue des accès", "Access review viewed"),
    "review.decide": Message("Décision de revue des accès", "Access review decision"),
    "review.remind": Message("Rappel de revue des accès", "Access review reminder"),
    "review.disable_unreviewed": Message("Désactivation d'un utilisateur non revu", "Unreviewed user disabled"),
    "review.close": Message("Clôture d'une revue des accès", "Access review closing"),
}

# Where a refusal's reason is kept, in the person's words (the fields to correct and how): the journals say it.
REFUSAL = "refusal"


def action_words(action: str) -> Message:
    """The action in words; one without words yet says so rather than show its code (tests/test_trail.py checks
    every action has words)."""
    return ACTIONS.get(action) or Message("Autre action", "Other action")


@dataclass
class Entry:
    before: dict | None = None
    after: dict | None = None
    detail: str | None = None
    target: str | None = None
    adherent: str | None = None


@dataclass(frozen=True)
class TrailEntry:
    """One row of the trail: who (the person), as what, for which adherent, did what to whom, and how it ended.

    The security audit's admin-activity rows are trail entries too: with the Keycloak admin events the action
    caused (``keycloak``) and where the row comes from (``source``: trail, trail+keycloak, or keycloak alone,
    for a change made outside our actions)."""

    at: datetime
    actor: str
    actor_role: str
    adherent: str | None
    action: str
    target: str | None
    outcome: str                            # ok / refused / error
    detail: str | None = None
    before: dict | None = None
    after: dict | None = None
    keycloak: tuple[str, ...] = ()          # "UPDATE users/<id>"
    source: str = "trail"


def scrub(value: Any) -> Any:
    """A copy of value without any secret key, at any depth."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def record(db: Database, actor: Actor, action: str, adherent: str | None, target: str | None, outcome: str,
           before: dict | None = None, after: dict | None = None, detail: str | None = None) -> None:
    """Write one event (its own transaction, so a refusal is kept even when the action rolls back)."""
    with db.begin() as conn:
        conn.execute(insert(audit_events).values(
            at=clock.now(), actor=actor.username, actor_role=actor.role, adherent=adherent,
            action=action, target=target, before=scrub(before), after=scrub(after), outcome=outcome,
            detail=detail))


@contextmanager
def audited(db: Database, actor: Actor, action: str, adherent: str | None, target: str | None,
            read: bool = False) -> Iterator[Entry]:
    """Record the action's outcome: ok, refused (a rule, the tenant check, Keycloak's refusal) or error.

    A ``read`` (a listing, a user's page) changes nothing: only its refusals and errors are recorded (an attempt
    on another adherent's users stays in the trail); a read that succeeds would bury the changes in the journals."""
    entry = Entry(target=target, adherent=adherent)
    try:
        yield entry
    except REFUSALS as exc:
        record(db, actor, action, entry.adherent, entry.target, "refused", entry.before, _with_reason(entry.after, exc),
               f"{type(exc).__name__}: {exc}")
        raise
    except Exception as exc:
        record(db, actor, action, entry.adherent, entry.target, "error", entry.before, entry.after,
               f"{type(exc).__name__}: {exc}")
        raise
    if not read:
        record(db, actor, action, entry.adherent, entry.target, "ok", entry.before, entry.after, entry.detail)


def _with_reason(after: dict | None, exc: Exception) -> dict | None:
    """What a person is told when refused (each field to correct, and how; a role's refusal), kept with the entry:
    the journals say why in words, French or English."""
    said = exc.errors if isinstance(exc, InputError) else {"": exc.message} if isinstance(exc, NotAllowed) else None
    if not said:
        return after
    # A list, not a dict by field: scrub drops the keys it deems secret (a refused "password" says only the rule).
    return {**(after or {}), REFUSAL: [{"field": field, "fr": m.fr, "en": m.en} for field, m in said.items()]}


def events(db: Database, adherent: str | None = None, action: str | None = None, actor: str | None = None,
           target: str | None = None, limit: int = 1000) -> list[TrailEntry]:
    """The latest events, newest first, filtered."""
    q = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
    for col, val in (("adherent", adherent), ("action", action), ("actor", actor), ("target", target)):
        if val is not None:
            q = q.where(audit_events.c[col] == val)
    with db.connect() as conn:
        return [TrailEntry(r.at, r.actor, r.actor_role, r.adherent, r.action, r.target, r.outcome, r.detail,
                           r.before, r.after) for r in conn.execute(q)]
