"""Access review campaigns: the security team asks each delegate to confirm or revoke its users' access.

An auditor opens a campaign (every approved adherent, or a list of numéros; a deadline; what happens then). Opening
takes a snapshot of the enabled teleservice users in scope with their teleservice and powers (two bulk reads of our
Keycloak extension, whatever the number of users). Each delegate then keeps or revokes each of its users: a revoke
is ``teleservice_users.disable_user`` (disabled, sessions ended; a departing validator is confirmed by the revoke
itself).
``remind`` (cron) mails each delegate with pending items at the campaign's reminder days, each day once per
adherent. ``close`` (at the deadline, or earlier with ``force``) disables the users nobody reviewed, through the
provisioner's service account under the closing person's name, or only reports them, as the campaign says.

Pure: ``check_campaign``, ``snapshot``, ``reminders_due``, ``completion``, ``render_csv``/``render_html``. The rest
reads or writes our database and Keycloak, every change in the trail.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from provisioner import clock, easypaiement, outbox, rules, teleservice_users
from provisioner.access_reviews import (ALREADY_DECIDED, BAD_DECISION, BEFORE_DEADLINE, CLOSED, DECISIONS, DISABLE,
                                        NOTHING_TO_REVIEW, NOT_AUDITOR, NOT_OPEN, NOT_REVIEWER, OPEN, PORTAL_PATH,
                                        REPORT, REVOKE, SYSTEM, SYSTEM_ROLE, Campaign, Closure, Item, Reminder,
                                        adherent_groups, campaigns, check_campaign, get_campaign, get_item, items,
                                        parse_deadline, parse_reminder_days, reminders_due, snapshot)
from provisioner.context import Context
from provisioner.core import Services
from provisioner.db import review_campaigns, review_items, review_reminders
from provisioner.errors import NotAllowed, NotFound, ProvisionerError, RuleViolation, ValidationError
from provisioner.gateway import Gateway
from provisioner.mailer import notice_mail
from provisioner.rules import EASYPAIEMENT, M
from provisioner.tenancy import AUDITOR, DELEGATE, Actor, require_adherent
from provisioner.trail import audited
from provisioner.tree import ACTIVE, adherent_members

log = logging.getLogger(__name__)


def items_to_review(ctx: Context) -> list[tuple[Campaign, list[Item]]]:
    """The delegate's page: each open campaign with the adherent's items (pending first), with the users' current
    names (one read of the adherent's tree). The tenant check first."""
    with ctx.audited("review.list", ctx.adherent, read=True):
        require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
        out = []
        for c in sorted(campaigns(ctx.services, OPEN), key=lambda c: c.deadline):
            mine = items(ctx.services, c.id, ctx.adherent)
            if mine:
                out.append((c, sorted(mine, key=lambda i: (not i.pending, i.login))))
    if not out:
        return out
    names = {m.user.id: f"{m.user.first_name or ''} {m.user.last_name or ''}".strip()
             for m in adherent_members(ctx.gw, ctx.adherent)[1]}
    return [(c, [replace(i, name=names.get(i.user_id, "")) for i in its]) for c, its in out]


def require_security_team(actor: Actor, action: str) -> None:
    """Opening and closing a campaign: the security team (realm role auditor). NotAllowed otherwise."""
    if actor.role != AUDITOR:
        raise NotAllowed(actor.username, action, NOT_AUDITOR)


# --- actions ------------------------------------------------------------------------------------------------
def open_campaign(ctx: Context, name: str, deadline: datetime | str | None,
                  on_deadline: str, reminder_days: str = "7,1", adherents: list[str] | None = None,
                  now: datetime | None = None) -> Campaign:
    """Open a campaign and take its snapshot (``adherents`` None: every active approved adherent; ``deadline`` a
    datetime, or as typed: ``parse_deadline``). ``gw`` reads every user and group (the provisioner's service
    account). ValidationError for a bad field or an adherent not approved or suspended; RuleViolation when nobody is
    to be reviewed; NotAllowed for anyone but an auditor."""
    now = now or clock.now()
    deadline, unreadable = parse_deadline(deadline)
    with audited(ctx.services.db, ctx.actor, "review.open", None, name) as entry:
        require_security_team(ctx.actor, "review.open")
        listed = None if adherents is None else sorted({a.strip() for a in adherents})
        rules.raise_if(check_campaign(name.strip(), deadline, on_deadline, reminder_days, listed, now)
                       | ({"deadline": unreadable} if unreadable else {}))
        groups = ctx.gw.audit_listing("groups", ctx.gw.count_groups())
        known = {n: g for n, g in adherent_groups(groups).items()
                 if ((g.get("attributes") or {}).get("status") or [ACTIVE])[0] == ACTIVE}
        missing = [n for n in listed or () if n not in known]
        if missing:
            raise ValidationError({"adherents": M(
                f"Adhérent sans abonnement validé ou suspendu : {', '.join(missing)}.",
                f"Member without an approved subscription, or suspended: {', '.join(missing)}.")})
        scope = set(listed) if listed is not None else set(known)
        found = snapshot(ctx.gw.audit_listing("users", ctx.gw.count_users()), groups, scope, ctx.services.catalogue.ids)
        if not found:
            raise RuleViolation("adherents", NOTHING_TO_REVIEW)
        days = parse_reminder_days(reminder_days)[0]
        with ctx.services.db.begin() as conn:
            cid = conn.execute(insert(review_campaigns).values(
                name=name.strip(), opened_by=ctx.actor.username, opened_at=now, deadline=deadline,
                on_deadline=on_deadline, reminder_days=",".join(map(str, days)), scope=listed, status=OPEN,
            )).inserted_primary_key[0]
            conn.execute(insert(review_items), [
                {"campaign_id": cid, "adherent": s.adherent, "user_id": s.user_id, "login": s.login,
                 "teleservice": s.teleservice, "powers": list(s.powers)} for s in found])
        entry.target = f"campaign:{cid}"
        entry.after = {"campaign": cid, "name": name.strip(), "deadline": deadline.isoformat(),
                       "on_deadline": on_deadline, "reminder_days": list(days), "adherents": listed or "all",
                       "users": len(found), "adherents_reviewed": len({s.adherent for s in found})}
    return get_campaign(ctx.services, cid)


def decide(ctx: Context, item_id: int, decision: str,
           now: datetime | None = None) -> Item:
    """The delegate's decision on one of its users: keep, or revoke (``teleservice_users.disable_user``,
    confirmed: disabled, sessions ended). Only the delegate decides — the review is the company's attestation, which neither a CIMR
    agent nor the security team can give for it (NotAllowed) — for its own adherent's items (TenantViolation),
    once, while the campaign is open (RuleViolation); NotFound for an unknown item."""
    item = get_item(ctx.services, item_id)
    with audited(ctx.services.db, ctx.actor, "review.decide", item.adherent, item.login) as entry:
        if ctx.actor.role != DELEGATE:
            raise NotAllowed(ctx.actor.username, "review.decide", NOT_REVIEWER)
        require_adherent(ctx.actor, item.adherent, item.login)
        if decision not in DECISIONS:
            raise ValidationError({"decision": BAD_DECISION})
        if not get_campaign(ctx.services, item.campaign_id).open:
            raise RuleViolation("campaign", NOT_OPEN)
        if not item.pending:
            raise RuleViolation("decision", ALREADY_DECIDED)
        entry.before = {"campaign": item.campaign_id, "teleservice": item.teleservice, "powers": list(item.powers)}
        entry.after = {"decision": decision}
        if decision == REVOKE:
            try:
                # An explicit decision: a validator's departure is confirmed by it (disable_user's trail says so).
                teleservice_users.disable_user(ctx.on(item.adherent), item.login, confirmed=True)
                entry.detail = "revoked: disabled, sessions ended"
            except NotFound:
                entry.detail = "revoked: the user no longer exists"
        with ctx.services.db.begin() as conn:
            done = conn.execute(update(review_items).where(review_items.c.id == item.id,
                                                           review_items.c.decision.is_(None)).values(
                decision=decision, decided_by=ctx.actor.username, decided_at=(now or clock.now()))).rowcount
        if not done:  # another request decided meanwhile
            raise RuleViolation("decision", ALREADY_DECIDED)
    return get_item(ctx.services, item_id)


def remind(gw: Gateway, services: Services, now: datetime | None = None) -> list[Reminder]:
    """Cron: mail each delegate with pending items of an open campaign whose reminder day has come; each day is
    claimed (``review_reminders``) before its mail, so it goes once per adherent. One mail stands for every due day
    not sent yet (a missed cron run does not send two)."""
    now = now or clock.now()
    out = []
    for c in campaigns(services, OPEN):
        pending: dict[str, int] = {}
        for i in items(services, c.id):
            if i.pending:
                pending[i.adherent] = pending.get(i.adherent, 0) + 1
        with services.db.connect() as conn:
            sent = conn.execute(select(review_reminders.c.adherent, review_reminders.c.days)
                                .where(review_reminders.c.campaign_id == c.id)).all()
        for adherent, count in sorted(pending.items()):
            due = reminders_due(c, {d for n, d in sent if n == adherent}, now)
            if due:
                out.append(_remind_one(gw, services, c, adherent, due, count, now))
    return out


def _remind_one(gw: Gateway, services: Services, c: Campaign, adherent: str, due: tuple[int, ...], pending: int,
                now: datetime) -> Reminder:
    delegate = gw.user_by_username(adherent)
    if delegate is None or not delegate.email:
        log.warning("adherent %s: no delegate e-mail for the access review reminder (campaign %s)", adherent, c.id)
        return Reminder(c.id, adherent, due, pending, False)
    try:
        with services.db.begin() as conn:
            ids = [conn.execute(insert(review_reminders).values(campaign_id=c.id, adherent=adherent, days=d,
                                                                sent_at=now)).inserted_primary_key[0] for d in due]
    except IntegrityError:  # another run claimed these days first
        return Reminder(c.id, adherent, due, pending, False)
    with audited(services.db, SYSTEM, "review.remind", adherent, f"campaign:{c.id}") as entry:
        left = max(1, math.ceil((c.deadline - now).total_seconds() / 86400))
        mail = outbox.post(services, reminder_mail(services, delegate.email, adherent, c, pending, left), adherent, SYSTEM)
        with services.db.begin() as conn:
            conn.execute(update(review_reminders).where(review_reminders.c.id.in_(ids)).values(mail_id=mail.id))
        entry.after = {"campaign": c.id, "days": list(due), "pending": pending, "mailed": mail.sent}
    return Reminder(c.id, adherent, due, pending, mail.sent)


def reminder_mail(services: Services, to: str, adherent: str, c: Campaign, pending: int, days_left: int):
    then_fr = ("seront désactivés" if c.on_deadline == DISABLE else "seront signalés à l'équipe sécurité de la CIMR")
    then_en = ("will be disabled" if c.on_deadline == DISABLE else "will be reported to CIMR's security team")
    url = services.settings.portal_url + PORTAL_PATH
    return notice_mail(
        to, adherent,
        f"Revue des accès « {c.name} » : {pending} utilisateur(s) de votre entreprise attendent votre décision "
        f"(conserver ou révoquer). Échéance : {c.deadline:%d/%m/%Y} (dans {days_left} jour(s)). Les utilisateurs non "
        f"revus à l'échéance {then_fr}. Portail : {url}",
        f"Access review '{c.name}': {pending} user(s) of your company wait for your decision (keep or revoke). "
        f"Deadline: {c.deadline:%Y-%m-%d} (in {days_left} day(s)). Users not reviewed by the deadline {then_en}. "
        f"Portal: {url}")


def close_campaign(ctx: Context, campaign_id: int, force: bool = False,
                   now: datetime | None = None) -> Closure:
    """At the deadline (before it only with ``force``, by a person): the unreviewed items are disabled (``gw``:
    the provisioner's service account; each in the trail under ``actor``; their delegates told) or only reported,
    as the campaign says (a user deleted or disabled since the opening is ``gone`` either way); then it is closed
    — unless some could not be disabled (``failed``): it stays open and a re-run finishes. The security team, or the
    scheduled close (SYSTEM, never forced)."""
    now = now or clock.now()
    with audited(ctx.services.db, ctx.actor, "review.close", None, f"campaign:{campaign_id}") as entry:
        if ctx.actor.role != SYSTEM_ROLE:
            require_security_team(ctx.actor, "review.close")
        c = get_campaign(ctx.services, campaign_id)
        if not c.open:
            raise RuleViolation("campaign", NOT_OPEN)
        if now < c.deadline and not (force and ctx.actor.role == AUDITOR):
            raise RuleViolation("force", BEFORE_DEADLINE)
        # A close that failed on some users left the campaign open: a re-run finishes the job.
        unreviewed = [i for i in items(ctx.services, c.id) if i.pending and i.closing in (None, "failed")]
        disabled, reported, gone, failed = [], [], [], []
        forced = now < c.deadline
        for item in unreviewed:
            try:
                rep = _still_there(ctx.gw, item)
                if rep is None:  # deleted, disabled or moved since the snapshot: neither reported nor disabled
                    gone.append(item)
                elif c.on_deadline == REPORT:
                    reported.append(item)
                else:
                    _disable_unreviewed(ctx, c, item, rep, forced, now)
                    disabled.append(item)
            except ProvisionerError as exc:
                failed.append((item, f"{type(exc).__name__}: {exc}"))
        with ctx.services.db.begin() as conn:
            for outcome, its in (("disabled", disabled), ("reported", reported), ("gone", gone),
                                 ("failed", [i for i, _ in failed])):
                if its:
                    conn.execute(update(review_items).where(review_items.c.id.in_([i.id for i in its]))
                                 .values(closing=outcome))
            if not failed:
                conn.execute(update(review_campaigns).where(review_campaigns.c.id == c.id).values(
                    status=CLOSED, closed_at=now, closed_by=ctx.actor.username))
        entry.after = {"campaign": c.id, "on_deadline": c.on_deadline, "forced": forced,
                       "unreviewed": len(unreviewed), "disabled": len(disabled), "reported": len(reported),
                       "gone": len(gone), "failed": len(failed)}
    outbox.tell_delegates(ctx.gw, ctx.services, ((i.adherent, i.login) for i in disabled),
                          lambda listed: closing_mail(c, listed, now if forced else None), SYSTEM)
    return Closure(get_campaign(ctx.services, c.id), tuple(disabled), tuple(reported), tuple(gone), tuple(failed))


def closing_mail(c: Campaign, listed: str, closed_early: datetime | None) -> tuple[str, str]:
    """What a delegate is told of its logins disabled at the close: not reviewed by the deadline, or — a close the
    security team brought forward — not reviewed when the campaign was closed, on that day."""
    if closed_early is None:
        fr, en = "n'ont pas été revus avant l'échéance", "were not reviewed by the deadline"
    else:
        fr = (f"n'avaient pas été revus quand l'équipe sécurité de la CIMR a clôturé la campagne, le "
              f"{closed_early:%d/%m/%Y}, avant son échéance du {c.deadline:%d/%m/%Y}")
        en = (f"had not been reviewed when CIMR's security team closed the campaign on {closed_early:%Y-%m-%d}, "
              f"before its deadline of {c.deadline:%Y-%m-%d}")
    return (f"Revue des accès « {c.name} » : ces logins de votre entreprise {fr} ; ils ont été désactivés : {listed}. "
            "Si l'un d'eux sert encore, réactivez-le dans le portail.",
            f"Access review '{c.name}': these logins of your company {en}; they were disabled: {listed}. If one is "
            "still needed, enable it again in the portal.")


def _still_there(gw: Gateway, item: Item) -> dict | None:
    """The user reviewed, when it is still enabled in its adherent as the snapshot saw it; else None."""
    rep = gw.user_rep(item.user_id)
    attrs = (rep or {}).get("attributes") or {}
    return rep if rep and rep.get("enabled") and (attrs.get("adherent") or [None])[0] == item.adherent else None


def _disable_unreviewed(ctx: Context, c: Campaign, item: Item, rep: dict,
                        forced: bool, now: datetime) -> None:
    """Disable one unreviewed user (``rep``, as just read) and end its sessions."""
    with audited(ctx.services.db, ctx.actor, "review.disable_unreviewed", item.adherent, item.login) as entry:
        entry.before, entry.after = {"enabled": True}, {"enabled": False, "campaign": c.id}
        entry.detail = (f"not reviewed before the campaign was closed early on {now:%Y-%m-%d} (campaign {c.id})"
                        if forced else f"not reviewed by the deadline {c.deadline:%Y-%m-%d} (campaign {c.id})")
        ctx.gw.update_user(item.user_id, {**rep, "enabled": False})
        ctx.gw.logout_user(item.user_id)
        if item.teleservice == EASYPAIEMENT:
            easypaiement.record(ctx.gw, item.adherent, ctx.automation)  # a validator may leave the adherent short


