"""The mail outbox: every mail an action sends is written to our database first, then sent.

A mail the SMTP server did not take stays in the outbox, unsent, with its error and the number of attempts, until
a retry delivers it: ``provisioner mail flush`` (cron), an agent's « Renvoyer » in the portal, or the next mail
sent (which, once the server takes it, also sends the older ones still waiting). The action itself holds either
way: a subscription approved while the SMTP server is down stays approved.

Delivery is at least once, and exactly once unless a sender dies between the SMTP server's acceptance and our
record of it: a sender takes a lease on a mail (``claimed_until``) before sending it, so two senders (cron and the
portal) never send the same mail. Mails never hold a password (provisioner/mailer.py), so the outbox holds none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from provisioner.db import mail_outbox
from provisioner.errors import MailError, MailServerUnreachable, Message, NotFound, RuleViolation
from provisioner.mailer import Mail, notice_mail
from provisioner.tenancy import Actor, require_agent
from provisioner.trail import audited
from provisioner import clock

if TYPE_CHECKING:
    from provisioner.core import Services

# Longer than the SMTP timeout (10 s): a lease outlives the attempt that took it, unless its sender died.
LEASE = timedelta(minutes=2)
# How many older unsent mails the next successful send also delivers (the rest wait for `mail flush`).
OPPORTUNISTIC = 20

ALREADY_SENT = Message("Ce courriel a déjà été envoyé.", "This mail has already been sent.")


@dataclass(frozen=True)
class OutboxMail:
    """One mail of the outbox, as the agent and the CLI see it (the body stays in the database)."""

    id: int
    recipient: str
    subject: str
    adherent: str | None
    created_by: str | None
    created_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None

    @property
    def sent(self) -> bool:
        return self.sent_at is not None


@dataclass(frozen=True)
class FlushResult:
    """What a retry did: mails sent now, mails that failed again, and how many remain unsent."""

    sent: tuple[int, ...]
    failed: tuple[int, ...]
    unsent: int






def _row(r) -> OutboxMail:
    return OutboxMail(r.id, r.recipient, r.subject, r.adherent, r.created_by, clock.aware(r.created_at), r.attempts,
                      clock.aware(r.last_attempt_at), r.last_error, clock.aware(r.sent_at))


_LISTED = (mail_outbox.c.id, mail_outbox.c.recipient, mail_outbox.c.subject, mail_outbox.c.adherent,
           mail_outbox.c.created_by, mail_outbox.c.created_at, mail_outbox.c.attempts, mail_outbox.c.last_attempt_at,
           mail_outbox.c.last_error, mail_outbox.c.sent_at)


def queue(conn: Connection, mail: Mail, adherent: str | None, created_by: str | None) -> int:
    """Write a mail in the caller's transaction (it commits or rolls back with the action); returns its id."""
    return conn.execute(insert(mail_outbox).values(
        recipient=mail.to, subject=mail.subject, body=mail.body, adherent=adherent, created_by=created_by,
        created_at=clock.now(), attempts=0)).inserted_primary_key[0]


def post(services: "Services", mail: Mail, adherent: str | None, actor: Actor | None) -> OutboxMail:
    """Queue one mail and try to send it now. SMTP failures never raise: the mail stays queued with its error."""
    with services.db.begin() as conn:
        mail_id = queue(conn, mail, adherent, actor.username if actor else None)
    return deliver(services, [mail_id])[0]


def deliver(services: "Services", ids: Iterable[int]) -> list[OutboxMail]:
    """Try to send these queued mails now; when the server took them, also the older ones still waiting.

    Returns the mails as they stand afterwards (``sent`` or not, ``last_error``); never raises MailError."""
    ids = list(ids)
    outcomes = [_attempt(services, mail_id) for mail_id in ids]
    if ids and all(outcome is True for outcome in outcomes):
        flush(services, limit=OPPORTUNISTIC)
    return [get(services, mail_id) for mail_id in ids]


def flush(services: "Services", limit: int = 100) -> FlushResult:
    """Send the unsent mails, oldest first (at most ``limit``); stops at an unreachable server, since nothing else
    would go either. A mail the server refuses (bad recipient) does not block the ones after it."""
    sent: list[int] = []
    failed: list[int] = []
    for mail_id in _unsent_ids(services, limit):
        outcome = _attempt(services, mail_id)
        if outcome is True:
            sent.append(mail_id)
        elif isinstance(outcome, MailError):
            failed.append(mail_id)
            if isinstance(outcome, MailServerUnreachable):
                break
    return FlushResult(tuple(sent), tuple(failed), count_unsent(services))


def resend(services: "Services", actor: Actor, mail_id: int) -> OutboxMail:
    """Agent only (« Renvoyer »): try an unsent mail again now. NotFound if no such mail, RuleViolation if it was
    already sent; the attempt's outcome is in the mail returned (and in the trail)."""
    with audited(services.db, actor, "mail.resend", None, f"mail:{mail_id}") as entry:
        require_agent(actor, None, f"mail:{mail_id}")
        mail = get(services, mail_id)
        entry.adherent = mail.adherent
        if mail.sent:
            raise RuleViolation("mail", ALREADY_SENT)
        mail = deliver(services, [mail_id])[0]
        entry.after = {"sent": mail.sent, "attempts": mail.attempts}
        entry.detail = None if mail.sent else mail.last_error
    return mail


def get(services: "Services", mail_id: int) -> OutboxMail:
    """One mail of the outbox; NotFound when there is none with this id."""
    with services.db.connect() as conn:
        row = conn.execute(select(*_LISTED).where(mail_outbox.c.id == mail_id)).first()
    if row is None:
        raise NotFound(f"no mail {mail_id} in the outbox")
    return _row(row)


def unsent(services: "Services", adherent: str | None = None, limit: int = 500) -> list[OutboxMail]:
    """The mails still waiting, oldest first (for one adherent when given)."""
    q = select(*_LISTED).where(mail_outbox.c.sent_at.is_(None)).order_by(mail_outbox.c.id).limit(limit)
    if adherent is not None:
        q = q.where(mail_outbox.c.adherent == adherent)
    with services.db.connect() as conn:
        return [_row(r) for r in conn.execute(q)]


@dataclass(frozen=True)
class Backlog:
    unsent: int
    oldest_age_seconds: float  # 0 when nothing waits


def backlog(services: "Services") -> Backlog:
    """How many mails wait, and for how long the oldest has (the portal's metrics)."""
    with services.db.connect() as conn:
        count, oldest = conn.execute(select(func.count(), func.min(mail_outbox.c.created_at))
                                     .where(mail_outbox.c.sent_at.is_(None))).one()
    age = (clock.now() - clock.aware(oldest)).total_seconds() if oldest is not None else 0.0
    return Backlog(count, max(age, 0.0))


def count_unsent(services: "Services") -> int:
    with services.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(mail_outbox)
                            .where(mail_outbox.c.sent_at.is_(None))).scalar_one()


def _unsent_ids(services: "Services", limit: int) -> list[int]:
    with services.db.connect() as conn:
        return list(conn.execute(select(mail_outbox.c.id).where(mail_outbox.c.sent_at.is_(None))
                                 .order_by(mail_outbox.c.id).limit(limit)).scalars())


def _attempt(services: "Services", mail_id: int) -> bool | MailError | None:
    """Send one mail under a lease: True when sent, the MailError when not, None when it was already sent or
    another sender holds it."""
    now = clock.now()
    free = and_(mail_outbox.c.id == mail_id, mail_outbox.c.sent_at.is_(None),
                or_(mail_outbox.c.claimed_until.is_(None), mail_outbox.c.claimed_until < now))
    with services.db.begin() as conn:
        claimed = conn.execute(update(mail_outbox).where(free).values(
            claimed_until=now + LEASE, attempts=mail_outbox.c.attempts + 1, last_attempt_at=now)).rowcount
        row = conn.execute(select(mail_outbox.c.recipient, mail_outbox.c.subject, mail_outbox.c.body)
                           .where(mail_outbox.c.id == mail_id)).first() if claimed else None
    if row is None:
        return None
    try:
        services.mailer.send(Mail(row.recipient, row.subject, row.body))
    except MailError as exc:
        with services.db.begin() as conn:
            conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(
                last_error=str(exc), claimed_until=None))
        return exc
    with services.db.begin() as conn:
        conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(
            sent_at=clock.now(), last_error=None, claimed_until=None))
    return True


def tell_delegates(gw, services: "Services", logins: Iterable[tuple[str, str]], words, actor: Actor) -> None:
    """One notice per adherent to its delegate, listing its logins concerned (``logins``: (adherent, login) pairs);
    ``words(listed)`` gives the notice in French and English. An adherent without a delegate e-mail is logged."""
    import logging

    by: dict[str, list[str]] = {}
    for numero, login in logins:
        by.setdefault(numero, []).append(login)
    for numero, names in sorted(by.items()):
        delegate = gw.user_by_username(numero)
        if delegate is None or not delegate.email:
            logging.getLogger(__name__).warning("adherent %s: no delegate e-mail to tell about %d user(s)", numero,
                                                len(names))
            continue
        fr, en = words(", ".join(sorted(names)))
        post(services, notice_mail(delegate.email, numero, fr, en), numero, actor)
