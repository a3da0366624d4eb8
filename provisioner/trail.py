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
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import insert, select

from provisioner.db import Database, audit_events
from provisioner.errors import (Conflict, Forbidden, Message, NotFound, ProvisionerError, RuleViolation,
                                TenantViolation, ValidationError, KeycloakRejected)
from provisioner.tenancy import Actor

# Never written to the trail, whatever an action puts in before/after.
SECRET_KEYS = frozenset({"password", "password_confirm", "credentials", "answer", "answers", "secret_questions",
                         "value", "secret"})
REFUSALS = (RuleViolation, ValidationError, TenantViolation, Forbidden, NotFound, Conflict, KeycloakRejected)

# Each action in words, for the journals (the code stays the key: filters, the audit, exports).
ACTIONS = {
    "subscription.submit": Message("Demande d'abonnement", "Subscription request"),
    "subscription.receive_paper": Message("Formulaire signé reçu", "Signed form received"),
    "subscription.approve": Message("Abonnement validé", "Subscription approved"),
    "subscription.reject": Message("Abonnement refusé", "Subscription rejected"),
    "adherent.suspend": Message("Adhérent suspendu", "Member suspended"),
    "adherent.reactivate": Message("Adhérent réactivé", "Member reactivated"),
    "adherent.terminate": Message("Résiliation de l'adhérent", "Member terminated"),
    "adherent.reinstate": Message("Résiliation annulée", "Termination undone"),
    "adherent.purge": Message("Adhérent purgé (comptes et données personnelles effacés)",
                              "Member purged (accounts and personal data erased)"),
    "adherent.categories": Message("Catégories actives modifiées", "Active categories changed"),
    "adherent.easypaiement_confirmations": Message("Nombre de confirmations E@syPaiement", "E@syPaiement confirmations"),
    "delegate.replace": Message("Personne déléguée remplacée (réabonnement)", "Delegate replaced (re-subscription)"),
    "delegate.change_email": Message("E-mail de la personne déléguée modifié", "Delegate's e-mail changed"),
    "delegate.reset_password": Message("Mot de passe de la personne déléguée réinitialisé",
                                       "Delegate's password reset"),
    "delegate.reset_second_factor": Message("Second facteur de la personne déléguée supprimé",
                                            "Delegate's second factor removed"),
    "delegate.password_link": Message("Lien de mot de passe envoyé à la personne déléguée",
                                      "Password link sent to the delegate"),
    "password.chosen_by_link": Message("Mot de passe choisi par lien", "Password chosen through a link"),
    "user.create": Message("Utilisateur créé", "User created"),
    "user.edit": Message("Utilisateur modifié", "User edited"),
    "user.update_details": Message("Coordonnées modifiées", "Details changed"),
    "user.change_access": Message("Pouvoirs modifiés", "Powers changed"),
    "user.disable": Message("Utilisateur désactivé", "User disabled"),
    "user.enable": Message("Utilisateur réactivé", "User enabled"),
    "user.disable_dormant": Message("Utilisateur désactivé après une longue inactivité",
                                    "User disabled after a long inactivity"),
    "user.unlock": Message("Utilisateur débloqué", "User unlocked"),
    "user.set_password": Message("Mot de passe réinitialisé", "Password reset"),
    "user.set_secret_questions": Message("Questions secrètes remplacées", "Secret questions replaced"),
    "user.password_reset_by_questions": Message("Mot de passe réinitialisé par questions secrètes",
                                                "Password reset with secret questions"),
    "user.reset_second_factor": Message("Second facteur supprimé", "Second factor removed"),
    "user.list": Message("Consultation des utilisateurs", "Users viewed"),
    "user.show": Message("Consultation d'un utilisateur", "User viewed"),
    "user.find_login": Message("Recherche d'un login", "Login searched"),
    "bulk.import": Message("Import de masse", "Bulk import"),
    "mail.resend": Message("Courriel renvoyé", "Mail sent again"),
    "client.rotate_secret": Message("Secret de client renouvelé", "Client secret rotated"),
    "review.open": Message("Revue des accès ouverte", "Access review opened"),
    "review.list": Message("Consultation de la revue des accès", "Access review viewed"),
    "review.decide": Message("Décision de revue des accès", "Access review decision"),
    "review.remind": Message("Rappel de revue des accès envoyé", "Access review reminder sent"),
    "review.disable_unreviewed": Message("Utilisateur non revu désactivé à l'échéance",
                                         "Unreviewed user disabled at the deadline"),
    "review.close": Message("Revue des accès clôturée", "Access review closed"),
}


def action_words(action: str) -> Message:
    """The action in words; an action without words yet shows its code rather than nothing."""
    return ACTIONS.get(action) or Message(action, action)


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
            at=datetime.now(timezone.utc), actor=actor.username, actor_role=actor.role, adherent=adherent,
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
        record(db, actor, action, entry.adherent, entry.target, "refused", entry.before, entry.after,
               f"{type(exc).__name__}: {exc}")
        raise
    except Exception as exc:
        record(db, actor, action, entry.adherent, entry.target, "error", entry.before, entry.after,
               f"{type(exc).__name__}: {exc}")
        raise
    if not read:
        record(db, actor, action, entry.adherent, entry.target, "ok", entry.before, entry.after, entry.detail)


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
