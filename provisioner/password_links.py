"""A link mailed to a person to choose its own password: the new delegate at a réabonnement.

The agent who replaces a delegate never types, sees or mails a password. The new delegate receives a link to the
portal (``PORTAL_URL/mot-de-passe/choisir/<token>``), valid ``LINK_HOURS``, that works once; a newer link replaces
the older ones. The token is 256 random bits and exists only in the mail: we keep its SHA-256.

Such a mail is not queued in the outbox (which keeps bodies to retry them): a link kept in clear in our database
would let whoever reads it take the delegate's account. It is sent at once; when the SMTP server does not take
it, the action holds and the agent is told, and sends a new link later (``send_delegate_link``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from provisioner.core import Services
from provisioner.db import password_links
from provisioner.errors import MailError, Message, RuleViolation
from provisioner.mailer import Mail
from provisioner.tenancy import Actor
from provisioner import clock

LINK_HOURS = 72
PATH = "/mot-de-passe/choisir/"
DELEGATE = "delegate"

LINK_INVALID = Message(
    "Ce lien n'est plus valable : il a déjà servi, a expiré ou a été remplacé par un plus récent. Demandez un "
    "nouveau lien à l'Agence virtuelle de la CIMR.",
    "This link is no longer valid: it was used, expired or replaced by a newer one. Ask CIMR's Agence virtuelle "
    "for a new link.")


class LinkInvalid(RuleViolation):
    """The link was used, expired, replaced, or never existed (one message for all: a guess learns nothing)."""

    def __init__(self):
        super().__init__("link", LINK_INVALID)


@dataclass(frozen=True)
class Link:
    user_id: str
    login: str
    adherent: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Mailed:
    """What became of a link's mail: sent, or not (the error to show the agent)."""
    expires_at: datetime
    error: str | None = None

    @property
    def sent(self) -> bool:
        return self.error is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()






def issue(services: Services, actor: Actor, user_id: str, login: str, adherent: str | None,
          purpose: str = DELEGATE, hours: int = LINK_HOURS) -> tuple[str, datetime]:
    """A new link for this account (the older unused ones stop working); returns the token and its expiry."""
    token, now = secrets.token_urlsafe(32), clock.now()
    expires = now + timedelta(hours=hours)
    with services.db.begin() as conn:
        conn.execute(delete(password_links).where(password_links.c.user_id == user_id,
                                                  password_links.c.used_at.is_(None)))
        conn.execute(insert(password_links).values(
            token_hash=token_hash(token), user_id=user_id, login=login, adherent=adherent, purpose=purpose,
            created_by=actor.username, created_at=now, expires_at=expires))
    return token, expires


def find(services: Services, token: str) -> Link:
    """The account a valid link is for; LinkInvalid otherwise."""
    if not token or len(token) > 100:
        raise LinkInvalid()
    with services.db.connect() as conn:
        row = conn.execute(select(password_links).where(password_links.c.token_hash == token_hash(token))).first()
    if row is None or row.used_at is not None or clock.aware(row.expires_at) <= clock.now():
        raise LinkInvalid()
    return Link(row.user_id, row.login, row.adherent, clock.aware(row.expires_at))


def delegate_link_mail(services: Services, to: str, adherent: str, token: str, expires: datetime) -> Mail:
    url = services.settings.portal_url + PATH + token
    until = expires.strftime("%d/%m/%Y %H:%M UTC")
    return Mail(to, f"CIMR Téléservices — adhérent {adherent} : choisissez votre mot de passe", (
        "Bonjour,\n\n"
        f"Vous êtes désormais l'administrateur des utilisateurs de l'adhérent {adherent} auprès de la CIMR.\n"
        f"Votre identifiant est votre numéro d'adhérent : {adherent}.\n\n"
        f"Choisissez votre mot de passe en suivant ce lien, valable jusqu'au {until} et une seule fois :\n{url}\n\n"
        "Le portail vous demandera ensuite d'enregistrer une application d'authentification sur votre téléphone.\n"
        "Si vous n'attendiez pas ce message, ne suivez pas le lien et prévenez l'Agence virtuelle de la CIMR.\n\n"
        "Hello,\n\n"
        f"You are now the user administrator of member {adherent} at CIMR. Your login is your membership number: "
        f"{adherent}.\n\nChoose your password with this link, valid until {until}, once:\n{url}\n\n"
        "The portal will then ask you to register an authenticator app on your phone.\n"
        "If you did not expect this message, do not follow the link and tell CIMR's Agence virtuelle.\n"))


def mail_delegate_link(services: Services, actor: Actor, user_id: str, adherent: str, email: str) -> Mailed:
    """Issue a link for the delegate account and mail it now (never through the outbox: see the module)."""
    token, expires = issue(services, actor, user_id, adherent, adherent)
    try:
        services.mailer.send(delegate_link_mail(services, email, adherent, token, expires))
    except MailError as exc:
        return Mailed(expires, str(exc))
    return Mailed(expires)


def spend(services: Services, token: str) -> None:
    """Mark the link used; LinkInvalid when another submission spent it first."""
    with services.db.begin() as conn:
        spent = conn.execute(update(password_links).where(
            password_links.c.token_hash == token_hash(token), password_links.c.used_at.is_(None)).values(
            used_at=clock.now())).rowcount
    if spent != 1:
        raise LinkInvalid()


def unspend(services: Services, token: str) -> None:
    """The link works again (the password it was spent on was refused)."""
    with services.db.begin() as conn:
        conn.execute(update(password_links).where(password_links.c.token_hash == token_hash(token)).values(
            used_at=None))
