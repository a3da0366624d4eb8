"""Forgotten password of a teleservice user, by secret questions (brochure: "Renseigner les questions secrètes").

Wrong answers are counted per login and per client address; past a few failures the reset is locked for a
while. Nothing here reveals whether a login exists: an unknown, disabled or question-less login gets stable
decoy questions, the same refusal and the same lockout as a real one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, insert, select

from provisioner import outbox, password_links, secret_questions, trail
from provisioner.core import Services
from provisioner.db import reset_attempts
from provisioner.errors import KeycloakRejected, Message, ProvisionerError, RuleViolation
from provisioner.gateway import Gateway, User
from provisioner.mailer import notice_mail
from provisioner.rules import ADHERENT_RE, check_password_pair, password_refused, raise_if
from provisioner.tenancy import Actor
from provisioner import clock

MAX_FAILURES_PER_LOGIN = 3
MAX_FAILURES_PER_ADDRESS = 10
WINDOW = timedelta(minutes=15)   # failures older than this are forgotten; a lock lasts at most this long
DECOY_QUESTIONS = 2



class ResetLocked(ProvisionerError):
    """Too many wrong answers for this login or from this address: wait ``minutes``."""

    def __init__(self, minutes: int):
        self.minutes = minutes
        self.message = Message(
            f"Trop de réponses erronées. La réinitialisation est bloquée : réessayez dans {minutes} minute(s).",
            f"Too many wrong answers. Password reset is locked: try again in {minutes} minute(s).")
        super().__init__(self.message.en)


class ResetByLetter(RuleViolation):
    """The login typed is a numéro d'adhérent: the delegate's, whose password CIMR's agents reset on its signed
    letter (the brochure), never by secret questions. Said from its form alone: nothing is looked up."""

    def __init__(self):
        super().__init__("login", Message(
            "Ce login est un numéro d'adhérent : celui de la personne déléguée. Son mot de passe ne se réinitialise "
            "pas ici, mais sur lettre signée et cachetée envoyée à l'Agence virtuelle de la CIMR.",
            "This login is a member number: the delegate's. Its password is not reset here but on a signed and "
            "stamped letter sent to CIMR's Agence virtuelle."))


WRONG_ANSWERS = Message("Les réponses ne correspondent pas à celles enregistrées pour ce login.",
                        "The answers do not match those recorded for this login.")


@dataclass(frozen=True)
class Challenge:
    login: str
    questions: tuple[str, ...]




def _key(login: str) -> str:
    return login.strip().casefold()


def _eligible(gw: Gateway, services: Services, login: str) -> User | None:
    """The enabled teleservice user with secret questions behind this login, else None."""
    user = gw.user_by_username(_key(login)) if login.strip() else None
    if user is None or not user.enabled or not user.attr("teleservice"):
        return None
    return user if secret_questions.questions_of(services.db, user.id) else None


def _decoys(services: Services, login: str) -> tuple[str, ...]:
    """Stable questions for a login that cannot be reset, so that the page looks the same."""
    choices = services.settings.secret_question_choices
    key = (services.settings.provisioner_client_secret or services.settings.database_url).encode()
    digest = hmac.new(key, _key(login).encode(), hashlib.sha256).digest()
    first = digest[0] % len(choices)
    second = (first + 1 + digest[1] % (len(choices) - 1)) % len(choices) if len(choices) > 1 else first
    return (choices[first], choices[second])[:DECOY_QUESTIONS]


def check_not_locked(services: Services, login: str, address: str, now: datetime | None = None) -> None:
    """Raise ResetLocked when the login or the address has too many recent failures."""
    now = now or clock.now()
    t = reset_attempts
    since = now - WINDOW
    with services.db.connect() as conn:
        def failures(*where):
            row = conn.execute(select(func.count(), func.min(t.c.at)).where(~t.c.ok, t.c.at > since, *where)).one()
            return row[0], row[1]
        for (count, oldest), limit in ((failures(t.c.login == _key(login)), MAX_FAILURES_PER_LOGIN),
                                       (failures(t.c.address == address), MAX_FAILURES_PER_ADDRESS)):
            if count >= limit:
                if oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=timezone.utc)
                wait = max(1, int(((oldest + WINDOW) - now).total_seconds() // 60) + 1)
                raise ResetLocked(wait)


def challenge(gw: Gateway, services: Services, login: str, address: str) -> Challenge:
    """Step 1: the login's secret questions (decoys if it cannot be reset). Raises ResetLocked, or ResetByLetter for
    a numéro d'adhérent (a delegate's login, whatever exists: no lookup)."""
    if ADHERENT_RE.match(login.strip()):
        raise ResetByLetter()
    check_not_locked(services, login, address)
    user = _eligible(gw, services, login)
    questions = tuple(secret_questions.questions_of(services.db, user.id)) if user else _decoys(services, login)
    return Challenge(_key(login), questions)


def verify_answers(gw: Gateway, services: Services, login: str, address: str, answers: list[str]) -> str | None:
    """Step 2: the user id when every answer matches, else None (failure counted). Raises ResetLocked."""
    check_not_locked(services, login, address)
    user = _eligible(gw, services, login)
    ok = secret_questions.verify(services.db, user.id, answers) if user else _burn(answers)
    with services.db.begin() as conn:
        conn.execute(insert(reset_attempts).values(login=_key(login), address=address, at=clock.now(), ok=ok))
        if ok:  # a success clears this login's failures
            conn.execute(delete(reset_attempts).where(reset_attempts.c.login == _key(login), ~reset_attempts.c.ok))
    if user:
        trail.record(services.db, Actor(user.username, "user", user.attr("adherent")),
                           "user.reset_questions", user.attr("adherent"), user.username,
                           "ok" if ok else "refused", detail=None if ok else "wrong answers")
    return user.id if ok else None


def _burn(answers: list[str]) -> bool:
    """Spend the time of a real check, so an unknown login is not faster to refuse."""
    secret_questions.hash_answer(" ".join(answers) or "x")
    return False


def set_new_password(gw: Gateway, services: Services, user_id: str, password: str,
                     password_confirm: str) -> str | None:
    """Step 3 (after verify_answers): a permanent new password; the user and the delegate are told by e-mail.
    Returns the user's teleservice (client id), where it logs in now.

    Raises ValidationError (policy, confirmation) or KeycloakRejected (e.g. password history)."""
    user = gw.user(user_id)
    if user is None:
        raise ProvisionerError("user vanished during the reset")
    raise_if(check_password_pair(services.password_policy, password, password_confirm, user.username))
    adherent = user.attr("adherent")
    actor = Actor(user.username, "user", adherent)
    with trail.audited(services.db, actor, "user.password_reset_by_questions", adherent, user.username):
        gw.set_password(user.id, password, temporary=False)
        gw.clear_brute_force(user.id)
    delegate = gw.user_by_username(adherent) if adherent else None
    fr = (f"Le mot de passe du login « {user.username} » (adhérent {adherent}) a été réinitialisé par "
          "l'utilisateur à l'aide de ses questions secrètes. Si ce n'est pas vous, prévenez votre personne déléguée.")
    en = (f"The password of login '{user.username}' (member {adherent}) was reset by the user with their secret "
          "questions. If this was not you, tell your delegate.")
    for to in {a for a in (user.email, delegate.email if delegate else None) if a}:
        outbox.post(services, notice_mail(to, adherent or "", fr, en), adherent, actor)  # kept and retried if unsent
    return user.attr("teleservice")



def choose_password(gw: Gateway, services: Services, token: str, password: str, password_confirm: str) -> str:
    """The person behind a mailed link (provisioner/password_links.py) chooses its password (the realm's policy); the
    link is then spent. Returns the login. Raises LinkInvalid, ValidationError (policy, confirmation) or
    RuleViolation (Keycloak's history)."""
    link = password_links.find(services, token)
    raise_if(check_password_pair(services.password_policy, password, password_confirm, link.login))
    actor = Actor(link.login, "delegate" if link.adherent == link.login else "user", link.adherent)
    with trail.audited(services.db, actor, "password.chosen_by_link", link.adherent, link.login):
        password_links.spend(services, token)  # first: two submissions of one link never both set a password
        try:
            gw.set_password(link.user_id, password, temporary=False)
        except KeycloakRejected as exc:
            password_links.unspend(services, token)  # the link was not used after all: it works again
            raise password_refused(exc) from None
        gw.clear_brute_force(link.user_id)
    return link.login
