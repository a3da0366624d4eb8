"""Subscriptions (Abonnement): submit, record the signed paper's arrival, list pending against the 48-hour promise
(counted from that arrival), approve (only once the paper is recorded), reject."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone

from sqlalchemy import insert, select, update

from provisioner import clock
from provisioner import outbox, permissions, rules
from provisioner.context import Context
from provisioner.trail import audited
from provisioner.core import Services
from provisioner.db import subscriptions
from provisioner.errors import Conflict, Message, NotFound, RuleViolation, ValidationError
from provisioner.gateway import Gateway
from provisioner.mailer import Mail, approval_mail, rejection_mail
from provisioner.tenancy import Actor, require_agent
from provisioner.delegates import NewDelegate, delegate_rep, open_term, validate_delegate
from provisioner.tree import ACTIVE, delegate_group_path, ensure_tree, set_enabled
from provisioner.clock import aware

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


@dataclass(frozen=True)
class Company:
    numero: str                 # * numéro d'adhérent
    raison_sociale: str         # *
    rc: str                     # * N° RC
    patente: str                # * N° patente
    adresse: str = ""
    telephone: str = ""
    fax: str = ""
    site_web: str = ""


@dataclass(frozen=True)
class Responsable:
    nom: str                    # *
    prenom: str                 # *
    fonction: str               # *
    civilite: str = ""
    telephone: str = ""         # téléphone fixe 1
    telephone2: str = ""        # téléphone fixe 2
    fax: str = ""
    gsm: str = ""
    email: str = ""


@dataclass(frozen=True)
class NewSubscription:
    company: Company
    responsable: Responsable
    delegate: NewDelegate
    categories: tuple[str, ...] = ()   # the adherent's active staff categories; default from settings

    def public(self) -> dict:
        return {"company": asdict(self.company), "responsable": asdict(self.responsable),
                "delegate": self.delegate.public(), "categories": list(self.categories)}


@dataclass(frozen=True)
class Subscription:
    id: int
    adherent: str
    status: str                 # pending / approved / rejected
    form: dict                  # NewSubscription.public()
    submitted_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    age_hours: float = 0.0      # since submission (until decision)
    overdue: bool = False       # pending beyond the SLA (48 h) counted from the paper's arrival
    paper_received_at: datetime | None = None   # the signed and stamped form arrived (None: not yet)
    paper_recorded_at: datetime | None = None   # when an agent recorded it
    paper_recorded_by: str | None = None        # that agent
    paper_age_hours: float | None = None        # since the paper arrived (until decision); None: not received


def validate_subscription(services: Services, form: NewSubscription) -> None:
    """Every field of the form; raises ValidationError mapping 'company.rc', 'delegate.email', ... to a Message."""
    c, r, d = form.company, form.responsable, form.delegate
    errors = rules.collect({
        "company.numero": rules.check_adherent(c.numero),
        "company.raison_sociale": rules.check_text(c.raison_sociale, True, 120),
        "company.rc": rules.check_text(c.rc, True, 40),
        "company.patente": rules.check_text(c.patente, True, 40),
        "company.adresse": rules.check_text(c.adresse, False, 200),
        "company.telephone": rules.check_phone(c.telephone),
        "company.fax": rules.check_phone(c.fax),
        "company.site_web": rules.check_url(c.site_web),
        "responsable.civilite": rules.check_civilite(r.civilite),
        "responsable.nom": rules.check_name(r.nom),
        "responsable.prenom": rules.check_name(r.prenom),
        "responsable.fonction": rules.check_text(r.fonction, True, 80),
        "responsable.telephone": rules.check_phone(r.telephone),
        "responsable.telephone2": rules.check_phone(r.telephone2),
        "responsable.fax": rules.check_phone(r.fax),
        "responsable.gsm": rules.check_phone(r.gsm),
        "responsable.email": rules.check_email(r.email, required=False),
        "categories": rules.check_categories(form.categories) if form.categories else None,
    })
    errors |= validate_delegate(services, d, c.numero)
    rules.raise_if(errors)


ALREADY_SUBSCRIBED = Message("Cet adhérent a déjà un abonnement en cours ou validé.",
                             "This member already has a pending or approved subscription.")


def submit_subscription(gw: Gateway, services: Services, form: NewSubscription,
                        actor: Actor | None = None) -> Subscription:
    """Validate, create the delegate account (disabled, password in Keycloak only) and the pending subscription.

    Raises ValidationError (fields), RuleViolation('company.numero') when the adherent is already subscribed.
    """
    adherent = form.company.numero
    actor = actor or Actor(f"subscriber:{adherent}", "subscriber", adherent)
    with audited(services.db, actor, "subscription.submit", adherent or None, adherent) as entry:
        entry.after = form.public()
        validate_subscription(services, form)
        if _open_subscription(services, adherent):
            raise RuleViolation("company.numero", ALREADY_SUBSCRIBED)
        _remove_leftover_delegate(gw, services, adherent)
        now = clock.now()
        # The row and the account stand or fall together: the row commits only once Keycloak has the user.
        with services.db.begin() as conn:
            sid = conn.execute(insert(subscriptions).values(
                adherent=adherent, status=PENDING, form=form.public(), submitted_at=now)).inserted_primary_key[0]
            try:
                user_id = gw.create_user(delegate_rep(adherent, form.delegate, enabled=False))
            except Conflict:
                raise RuleViolation("company.numero", ALREADY_SUBSCRIBED) from None
            conn.execute(update(subscriptions).where(subscriptions.c.id == sid).values(delegate_user_id=user_id))
        entry.target = f"subscription:{sid}"
    return get_subscription(services, sid)


def _open_subscription(services: Services, adherent: str) -> bool:
    with services.db.connect() as conn:
        return conn.execute(select(subscriptions.c.id).where(
            subscriptions.c.adherent == adherent, subscriptions.c.status.in_((PENDING, APPROVED)))).first() is not None


def _remove_leftover_delegate(gw: Gateway, services: Services, adherent: str) -> None:
    """A disabled account left by an interrupted or rejected submission (no open subscription) is removed."""
    user = gw.user_by_username(adherent)
    if user is None:
        return
    if user.enabled or user.attr("adherent") != adherent or gw.group_by_path(f"/adherents/{adherent}"):
        raise RuleViolation("company.numero", ALREADY_SUBSCRIBED)
    gw.delete_user(user.id)


def _row_to_subscription(row, sla_hours: int, now: datetime) -> Subscription:
    submitted, paper = aware(row.submitted_at), aware(row.paper_received_at)
    end = aware(row.decided_at) if row.decided_at else now
    age = (end - submitted).total_seconds() / 3600
    # CIMR's promise runs from the signed paper's arrival: before it, nothing is late.
    paper_age = None if paper is None else max((end - paper).total_seconds() / 3600, 0.0)
    return Subscription(row.id, row.adherent, row.status, row.form, submitted, aware(row.decided_at),
                        row.decided_by, row.reason, round(age, 2),
                        row.status == PENDING and paper_age is not None and paper_age > sla_hours,
                        paper, aware(row.paper_recorded_at), row.paper_recorded_by,
                        None if paper_age is None else round(paper_age, 2))




def list_subscriptions(services: Services, status: str | None = "pending",
                       now: datetime | None = None) -> list[Subscription]:
    """Subscriptions (pending by default), oldest first, with their age and the overdue flag."""
    now = now or clock.now()
    q = select(subscriptions).order_by(subscriptions.c.submitted_at, subscriptions.c.id)
    if status:
        q = q.where(subscriptions.c.status == status)
    with services.db.connect() as conn:
        return [_row_to_subscription(r, services.settings.subscription_sla_hours, now) for r in conn.execute(q)]


def get_subscription(services: Services, subscription_id: int) -> Subscription:
    with services.db.connect() as conn:
        row = conn.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)).first()
    if row is None:
        raise NotFound(f"no subscription {subscription_id}")
    return _row_to_subscription(row, services.settings.subscription_sla_hours, clock.now())


NOT_PENDING = Message("Cet abonnement a déjà été traité.", "This subscription has already been decided.")
PAPER_MISSING = Message(
    "Le formulaire signé et cacheté n'est pas encore enregistré comme reçu : enregistrez d'abord sa réception.",
    "The signed and stamped form is not recorded as received yet: record its receipt first.")
BAD_DATE = Message("Date de réception invalide : écrivez-la AAAA-MM-JJ (par exemple 2026-11-30).",
                   "Invalid date of receipt: write it YYYY-MM-DD (for example 2026-11-30).")
FUTURE_DATE = Message("La date de réception ne peut pas être dans le futur.",
                      "The date of receipt cannot be in the future.")


def _received_at(received_on: date | str | None, submitted: datetime, now: datetime) -> datetime:
    """When the paper arrived: now for today (or no date); the start of an earlier day (UTC), in the company's
    favour, but never before the form was submitted. Raises ValidationError('date')."""
    if received_on is None or received_on == "":
        return now
    if isinstance(received_on, str):
        try:
            received_on = date.fromisoformat(received_on.strip())
        except ValueError:
            raise ValidationError({"date": BAD_DATE}) from None
    if received_on > now.date():
        raise ValidationError({"date": FUTURE_DATE})
    if received_on < submitted.date():
        day = submitted.strftime("%d/%m/%Y")
        raise ValidationError({"date": Message(
            f"Le papier ne peut pas être arrivé avant le dépôt du formulaire, le {day}.",
            f"The paper cannot have arrived before the form was submitted, on {day}.")})
    if received_on == now.date():
        return now
    return max(datetime.combine(received_on, time(0), timezone.utc), submitted)


def _already_received(sub: Subscription) -> RuleViolation:
    if sub.status != PENDING:
        return RuleViolation("subscription", NOT_PENDING)
    when = sub.paper_received_at.strftime("%d/%m/%Y %H:%M UTC")
    return RuleViolation("paper", Message(
        f"La réception du papier est déjà enregistrée ({when}, par {sub.paper_recorded_by}).",
        f"The paper's receipt is already recorded ({when}, by {sub.paper_recorded_by})."))


def receive_paper(services: Services, actor: Actor, subscription_id: int,
                  received_on: date | str | None = None) -> Subscription:
    """Agent only: the signed and stamped form arrived (today, or on ``received_on``, YYYY-MM-DD); the 48-hour
    promise counts from then. Recorded once. Raises ValidationError('date'), RuleViolation('paper'|'subscription')."""
    target = f"subscription:{subscription_id}"
    with audited(services.db, actor, "subscription.receive_paper", None, target) as entry:
        require_agent(actor, None, target)
        sub = get_subscription(services, subscription_id)
        entry.adherent = sub.adherent
        if sub.status != PENDING:
            raise RuleViolation("subscription", NOT_PENDING)
        if sub.paper_received_at is not None:
            raise _already_received(sub)
        now = clock.now()
        received = _received_at(received_on, sub.submitted_at, now)
        with services.db.begin() as conn:
            done = conn.execute(update(subscriptions).where(
                subscriptions.c.id == sub.id, subscriptions.c.status == PENDING,
                subscriptions.c.paper_received_at.is_(None)).values(
                paper_received_at=received, paper_recorded_at=now, paper_recorded_by=actor.username)).rowcount
        if not done:  # another agent (or a decision) came first, between our read and our write
            raise _already_received(get_subscription(services, subscription_id))
        entry.before = {"paper_received_at": None}
        entry.after = {"paper_received_at": received.isoformat(), "paper_recorded_by": actor.username}
    return get_subscription(services, subscription_id)


def approve_subscription(ctx: Context, subscription_id: int) -> Subscription:
    """Agent only, once the signed paper is recorded (``receive_paper``; else RuleViolation('paper')): create the
    adherent's group tree, enable the delegate, mail them (no password). Re-runnable.

    The approval holds when the SMTP server is down: the mail waits in the outbox (provisioner/outbox.py)."""
    with audited(ctx.services.db, ctx.actor, "subscription.approve", None, f"subscription:{subscription_id}") as entry:
        require_agent(ctx.actor, None, f"subscription:{subscription_id}")
        sub = get_subscription(ctx.services, subscription_id)
        entry.adherent = sub.adherent
        if sub.status != PENDING:
            raise RuleViolation("subscription", NOT_PENDING)
        if sub.paper_received_at is None:
            raise RuleViolation("paper", PAPER_MISSING)
        form = sub.form
        categories = form.get("categories") or list(ctx.services.settings.default_categories)
        ensure_tree(ctx.gw, sub.adherent, {
            "raison_sociale": [form["company"]["raison_sociale"]], "status": [ACTIVE],
            "easypaiement_confirmations": ["1"], "categories": categories}, ctx.services.catalogue)
        # Keycloak itself confines the delegate to this tree (fine-grained admin permissions), before it is enabled.
        permissions.ensure_delegation(permissions.writer(ctx.services.settings), sub.adherent)
        delegate = ctx.gw.user_by_username(sub.adherent)
        if delegate is None:
            raise NotFound(f"the delegate account {sub.adherent} is missing")
        ctx.gw.add_to_group(delegate.id, ctx.gw.group_by_path(delegate_group_path(sub.adherent)).id)
        set_enabled(ctx.gw, delegate.id, True)
        mail_ids = _decide(ctx.services, sub, APPROVED, ctx.actor, None, approval_mail(
            form["delegate"]["email"], sub.adherent, form["company"]["raison_sociale"], ctx.services.settings.portal_url))
        open_term(ctx.services, sub.adherent, delegate.id, form["delegate"])
        entry.before, entry.after = {"status": PENDING}, {"status": APPROVED, "categories": categories}
    outbox.deliver(ctx.services, mail_ids)
    return get_subscription(ctx.services, subscription_id)


def _decide(services: Services, sub: Subscription, status: str, actor: Actor, reason: str | None,
            *mails: Mail) -> list[int]:
    """The decision and the mails announcing it, in one transaction; returns the mails' outbox ids."""
    with services.db.begin() as conn:
        conn.execute(update(subscriptions).where(subscriptions.c.id == sub.id).values(
            status=status, decided_at=clock.now(), decided_by=actor.username, reason=reason))
        return [outbox.queue(conn, mail, sub.adherent, actor.username) for mail in mails]


def reject_subscription(ctx: Context, subscription_id: int,
                        reason: str) -> Subscription:
    """Agent only: mark rejected, remove the disabled delegate account, mail the delegate the reason."""
    with audited(ctx.services.db, ctx.actor, "subscription.reject", None, f"subscription:{subscription_id}") as entry:
        require_agent(ctx.actor, None, f"subscription:{subscription_id}")
        rules.raise_if(rules.collect({"reason": rules.check_text(reason, True, 500)}))
        sub = get_subscription(ctx.services, subscription_id)
        entry.adherent = sub.adherent
        if sub.status != PENDING:
            raise RuleViolation("subscription", NOT_PENDING)
        delegate = ctx.gw.user_by_username(sub.adherent)
        if delegate is not None and not delegate.enabled:
            ctx.gw.delete_user(delegate.id)
        mail_ids = _decide(ctx.services, sub, REJECTED, ctx.actor, reason,
                           rejection_mail(sub.form["delegate"]["email"], sub.adherent, reason))
        entry.before, entry.after = {"status": PENDING}, {"status": REJECTED, "reason": reason}
    outbox.deliver(ctx.services, mail_ids)
    return get_subscription(ctx.services, subscription_id)
