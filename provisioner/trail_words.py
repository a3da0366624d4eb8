"""The trail in words, for the people who read it (the delegate's « Journal », the security team's): who acted and
as what, on what, how it ended and why — French first, English when chosen; never a code, a key or an exception's
name. Pure: an entry in, words out (the trail itself keeps its codes for filters, exports and the audit)."""

from __future__ import annotations

import re
from datetime import date
from typing import Mapping

from provisioner.errors import Message as M
from provisioner.tenancy import AGENT, AUDITOR, DELEGATE
from provisioner.trail import ACTIONS, REFUSAL, TrailEntry, action_words

ROLES = {
    DELEGATE: M("personne déléguée", "delegate"),
    AGENT: M("agent CIMR", "CIMR agent"),
    AUDITOR: M("équipe sécurité", "security team"),
    "system": M("tâche planifiée", "scheduled task"),
    "user": M("utilisateur", "user"),
    "subscriber": M("demande d'abonnement", "subscription request"),
}
# The scheduled tasks act under a name of their own (provisioner/reviews.py, provisioner/dormant.py).
TASKS = {"revue-des-acces": M("Revue des accès", "Access review"),
         "compte-dormant": M("Comptes dormants", "Dormant accounts")}
DONE, REFUSED, ERROR = M("effectuée", "done"), M("refusée", "refused"), M("erreur", "error")
CONFIRMATION_ASKED = M("confirmation demandée", "confirmation asked")

# Why an action was refused, when no message was kept with it (the kind of refusal is the first word of its detail).
REFUSALS = {
    "TenantViolation": M("hors de l'adhérent de la personne", "outside the person's member"),
    "NotFound": M("introuvable", "not found"),
    "Conflict": M("existe déjà", "already exists"),
    "Forbidden": M("refusée par Keycloak", "refused by Keycloak"),
    "SessionExpired": M("session terminée", "session ended"),
    "KeycloakRejected": M("refusée par Keycloak", "refused by Keycloak"),
    "ValidationError": M("formulaire à corriger", "form to correct"),
    "RuleViolation": M("règle non respectée", "rule not met"),
    "NeedsConfirmation": M("à confirmer", "to be confirmed"),
    "NotAllowed": M("réservée à un autre rôle", "kept for another role"),
}
ERRORS = {"KeycloakUnavailable": M("Keycloak ne répondait pas", "Keycloak did not answer"),
          "MailError": M("le serveur de messagerie a refusé le courriel", "the mail server refused the mail")}
TECHNICAL = M("incident technique", "technical incident")

# The fields a refusal names, in words (the last part of a key: delegate.email -> email).
FIELDS = {
    "login": M("Login", "Login"), "nom": M("Nom", "Last name"), "prenom": M("Prénom", "First name"),
    "email": M("E-mail", "E-mail"), "telephone": M("Téléphone", "Phone"), "fonction": M("Fonction", "Position"),
    "civilite": M("Civilité", "Title"), "password": M("Mot de passe", "Password"),
    "password_confirm": M("Confirmation du mot de passe", "Password confirmation"),
    "secret_questions": M("Questions secrètes", "Secret questions"), "teleservice": M("Téléservice", "Teleservice"),
    "powers": M("Pouvoirs", "Powers"), "categories": M("Catégories", "Categories"),
    "provider": M("Prestataire", "Provider"), "user_type": M("Type d'utilisateur", "User type"),
    "adherent": M("Adhérent", "Member"), "adherents": M("Adhérents", "Members"),
    "numero": M("Numéro d'adhérent", "Member number"), "raison_sociale": M("Raison sociale", "Company name"),
    "rc": M("Numéro RC", "Trade register number"), "patente": M("Numéro de patente", "Business licence number"),
    "reason": M("Motif", "Reason"), "date": M("Date", "Date"), "paper": M("Formulaire signé", "Signed form"),
    "subscription": M("Abonnement", "Subscription"), "decision": M("Décision", "Decision"),
    "campaign": M("Campagne", "Campaign"), "deadline": M("Échéance", "Deadline"), "name": M("Nom", "Name"),
    "on_deadline": M("À l'échéance", "At the deadline"), "reminder_days": M("Rappels", "Reminders"),
    "force": M("Clôture anticipée", "Early close"), "confirmations": M("Confirmations", "Confirmations"),
    "file": M("Fichier", "File"), "question1": M("Question secrète 1", "Secret question 1"),
    "question2": M("Question secrète 2", "Secret question 2"),
}

# Our actions' details (written in English for the trail's readers of codes), in words.
DETAILS: tuple[tuple[re.Pattern, object], ...] = tuple((re.compile(p), f) for p, f in (
    (r"^resumed an interrupted creation$", lambda m: M("reprise d'une création interrompue",
                                                       "an interrupted creation resumed")),
    (r"^confirmed: leaves the adherent without enough validators$",
     lambda m: M("confirmée : l'adhérent n'a plus assez de validateurs E@syPaiement",
                 "confirmed: the member no longer has enough E@syPaiement validators")),
    (r"^revoked: disabled, sessions ended$", lambda m: M("révoqué : compte désactivé, sessions fermées",
                                                         "revoked: account disabled, sessions ended")),
    (r"^revoked: the user no longer exists$", lambda m: M("révoqué : l'utilisateur n'existait plus",
                                                          "revoked: the user no longer existed")),
    (r"^not reviewed by the deadline (\d{4}-\d\d-\d\d) \(campaign (\d+)\)$",
     lambda m: M(f"non revu à l'échéance du {_day(m[1])} (campagne n° {m[2]})",
                 f"not reviewed by the deadline of {m[1]} (campaign no. {m[2]})")),
    (r"^not reviewed before the campaign was closed early on (\d{4}-\d\d-\d\d) \(campaign (\d+)\)$",
     lambda m: M(f"non revu à la clôture anticipée du {_day(m[1])} (campagne n° {m[2]})",
                 f"not reviewed when the campaign was closed early on {m[1]} (campaign no. {m[2]})")),
    (r"^no login since (\d{4}-\d\d-\d\d) \(threshold (\d+) days\)$",
     lambda m: M(f"aucune connexion depuis le {_day(m[1])} (seuil : {m[2]} jours)",
                 f"no login since {m[1]} (threshold: {m[2]} days)")),
    (r"^wrong answers$", lambda m: M("réponses erronées", "wrong answers")),
))
# Actions whose detail is what the person typed (a signed letter's reference, a reason): shown as typed.
TYPED_DETAIL = frozenset({"adherent.suspend", "adherent.terminate"})
DECISIONS = {"keep": M("conservé", "kept"), "revoke": M("révoqué : compte désactivé, sessions fermées",
                                                          "revoked: account disabled, sessions ended")}


def _day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y")


def action(entry: TrailEntry) -> M:
    """What was attempted."""
    return action_words(entry.action) if entry.action in ACTIONS else M("Autre action", "Other action")


def actor(entry: TrailEntry) -> tuple[M | str, M]:
    """Who acted (a login, a numéro, a scheduled task's name; the numéro of a company asking to subscribe) and as
    what."""
    role = ROLES.get(entry.actor_role, M("autre rôle", "other role"))
    if entry.actor.startswith("subscriber:"):
        return entry.actor.split(":", 1)[1], role
    if entry.actor_role == "system":
        return TASKS.get(entry.actor.split(" ", 1)[0], M("Tâche planifiée", "Scheduled task")), role
    return entry.actor, role


def target(entry: TrailEntry, teleservices: Mapping[str, str]) -> M | str:
    """On what: a login or a numéro as is; an abonnement, a campaign, a mail by its number; a teleservice by its
    name."""
    t = entry.target or ""
    kind, _, ref = t.partition(":")
    words = {"subscription": ("abonnement n° ", "subscription no. "), "subscriber": ("adhérent ", "member "),
             "campaign": ("revue des accès n° ", "access review no. "), "mail": ("courriel n° ", "mail no. "),
             "client": ("client ", "client ")}
    if ref and kind in words:
        named = teleservices.get(ref, ref) if kind == "client" else ref  # a teleservice's client by its name
        return M(words[kind][0] + named, words[kind][1] + named)
    if t in teleservices:
        return teleservices[t]
    return t or "—"


def outcome(entry: TrailEntry) -> M:
    """How it ended: done, refused, a confirmation asked (and not given yet), an error."""
    if entry.outcome == "ok":
        return DONE
    if entry.outcome == "refused":
        return CONFIRMATION_ASKED if _kind(entry) == "NeedsConfirmation" else REFUSED
    return ERROR


def reasons(entry: TrailEntry, teleservices: Mapping[str, str] | None = None) -> list[M]:
    """Why it was refused (each field to correct and how, as the person was told — a teleservice named by its
    name), why it failed, or what the action noted (in words); [] when there is nothing to say."""
    if entry.outcome == "ok":
        return _noted(entry)
    kept = (entry.after or {}).get(REFUSAL) or []
    if kept:
        out = []
        for said in kept:
            name = FIELDS.get((said.get("field") or "").rsplit(".", 1)[-1])
            fr, en = (_named(said[lang], teleservices or {}) for lang in ("fr", "en"))
            out.append(M(f"{name.fr} : {fr}", f"{name.en}: {en}") if name else M(fr, en))
        return out
    if entry.outcome == "error":
        return [ERRORS.get(_kind(entry), TECHNICAL)]
    detail = _details(entry.detail)
    return [detail] if detail else [REFUSALS.get(_kind(entry), M("refusée", "refused"))]


def _named(text: str, teleservices: Mapping[str, str]) -> str:
    """A message with each teleservice's client id (a CSV's value, a command's argument) said by its name."""
    for client_id, name in teleservices.items():
        text = re.sub(rf"(?<![\w-]){re.escape(client_id)}(?![\w-])", name, text)
    return text


def _noted(entry: TrailEntry) -> list[M]:
    if entry.action == "review.decide" and (entry.after or {}).get("decision") in DECISIONS:
        return [DECISIONS[entry.after["decision"]]]
    if entry.action in TYPED_DETAIL and entry.detail:
        return [M(entry.detail, entry.detail)]
    detail = _details(entry.detail)
    return [detail] if detail else []


def _details(detail: str | None) -> M | None:
    for pattern, words in DETAILS:
        found = pattern.match(detail or "")
        if found:
            return words(found)
    return None


def _kind(entry: TrailEntry) -> str:
    """The kind of refusal or error the trail noted (the exception's name, first word of the detail)."""
    return (entry.detail or "").split(":", 1)[0].strip()
