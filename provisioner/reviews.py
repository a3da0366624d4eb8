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

import csv
import html
import io
import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import Iterable

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from provisioner import clock, easypaiement, outbox, rules, teleservice_users
from provisioner.core import Services
from provisioner.db import review_campaigns, review_items, review_reminders
from provisioner.errors import Message, NotAllowed, NotFound, ProvisionerError, RuleViolation, ValidationError
from provisioner.gateway import Gateway
from provisioner.mailer import notice_mail
from provisioner.rules import EASYPAIEMENT, M
from provisioner.tenancy import AUDITOR, DELEGATE, Actor, require_adherent
from provisioner.trail import audited
from provisioner.clock import aware
from provisioner.tree import ACTIVE, ADHERENTS, adherent_members

log = logging.getLogger(__name__)

KEEP, REVOKE = "keep", "revoke"
DECISIONS = (KEEP, REVOKE)
DISABLE, REPORT = "disable", "report"
ON_DEADLINE = (DISABLE, REPORT)
OPEN, CLOSED = "open", "closed"
SYSTEM_ROLE = "system"
# The scheduled close (cron) at the deadline: no person, this rule.
SYSTEM = Actor("revue-des-acces (tâche planifiée)", SYSTEM_ROLE)
MAX_DAYS = 366        # a deadline at most a year away
MAX_REMINDERS = 5
PORTAL_PATH = "/delegue/revues"


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    opened_by: str
    opened_at: datetime
    deadline: datetime
    on_deadline: str
    reminder_days: tuple[int, ...]
    scope: tuple[str, ...] | None       # None: every approved adherent
    status: str
    closed_at: datetime | None = None
    closed_by: str | None = None

    @property
    def open(self) -> bool:
        return self.status == OPEN

    def before_deadline(self, now: datetime | None = None) -> bool:
        """Open and its deadline not reached: closing it now is an early close, the security team's to confirm."""
        return self.open and (now or clock.now()) < self.deadline


@dataclass(frozen=True)
class Item:
    """One user to review, as the snapshot saw it, and what became of it."""

    id: int
    campaign_id: int
    adherent: str
    user_id: str
    login: str
    teleservice: str
    powers: tuple[str, ...]
    decision: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    closing: str | None = None          # unreviewed at the close: disabled / reported / gone / failed
    name: str = ""                      # the delegate's page: the user's current name (not stored)

    @property
    def pending(self) -> bool:
        return self.decision is None


@dataclass(frozen=True)
class Snapshot:
    """A user to review, before it is stored."""

    adherent: str
    user_id: str
    login: str
    teleservice: str
    powers: tuple[str, ...]


@dataclass(frozen=True)
class Completion:
    """One adherent's progress in a campaign."""

    adherent: str
    total: int
    kept: int
    revoked: int
    pending: int
    disabled: int = 0      # unreviewed, disabled at the close
    reported: int = 0      # unreviewed, reported at the close

    @property
    def percent(self) -> int:
        return math.floor(100 * (self.kept + self.revoked) / self.total) if self.total else 100


@dataclass(frozen=True)
class Reminder:
    campaign_id: int
    adherent: str
    days: tuple[int, ...]   # the reminder days this mail stands for (several when cron missed one)
    pending: int
    sent: bool              # False: no delegate e-mail, or the SMTP server did not take it (the outbox retries)


@dataclass(frozen=True)
class Closure:
    campaign: Campaign
    disabled: tuple[Item, ...]
    reported: tuple[Item, ...]
    gone: tuple[Item, ...]                      # deleted or already disabled since the snapshot
    failed: tuple[tuple[Item, str], ...]


# --- messages -----------------------------------------------------------------------------------------------
NOT_AUDITOR = M("Seule l'équipe sécurité de la CIMR (rôle auditeur) ouvre et clôture les revues des accès.",
                "Only CIMR's security team (auditor role) opens and closes access reviews.")
NOT_REVIEWER = M("Seule la personne déléguée de l'adhérent décide de garder ou de révoquer ses utilisateurs : la revue "
                 "est l'attestation de l'entreprise.",
                 "Only the member's delegate decides to keep or revoke its users: the review is the company's own "
                 "attestation.")
NOT_OPEN = M("Cette campagne de revue est clôturée : plus aucune décision n'est possible.",
             "This review campaign is closed: no more decisions can be made.")
ALREADY_DECIDED = M("Une décision a déjà été prise pour cet utilisateur dans cette campagne.",
                    "A decision was already made for this user in this campaign.")
BAD_DECISION = M("Choisissez « Conserver » ou « Révoquer ».", "Choose 'Keep' or 'Revoke'.")
BEFORE_DEADLINE = M("L'échéance de la campagne n'est pas atteinte : attendez-la, ou confirmez une clôture anticipée.",
                    "The campaign's deadline has not come yet: wait for it, or confirm an early close.")
BAD_DEADLINE = M("Indiquez l'échéance sous la forme d'une date (jour, mois, année).",
                 "Give the deadline as a date (day, month, year).")
NOTHING_TO_REVIEW = M("Aucun utilisateur actif à revoir chez les adhérents choisis.",
                      "No enabled user to review at the chosen members.")






# --- pure ---------------------------------------------------------------------------------------------------
def parse_reminder_days(text: str) -> tuple[tuple[int, ...], Message | None]:
    """"7,1" -> (7, 1), largest first; an empty text is no reminder."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not all(p.isdigit() and 1 <= int(p) <= 90 for p in parts):
        return (), M("Jours de rappel : des nombres de 1 à 90 séparés par des virgules (ex. 7,1).",
                     "Reminder days: numbers from 1 to 90 separated by commas (e.g. 7,1).")
    days = tuple(sorted({int(p) for p in parts}, reverse=True))
    if len(days) > MAX_REMINDERS:
        return (), M(f"{MAX_REMINDERS} jours de rappel au plus.", f"At most {MAX_REMINDERS} reminder days.")
    return days, None


def check_campaign(name: str, deadline: datetime | None, on_deadline: str, reminder_days: str,
                   adherents: Iterable[str] | None, now: datetime) -> dict[str, Message]:
    """Every field of a new campaign (no I/O): name, deadline (future, within a year), what the deadline does,
    reminder days, the numéros listed (None: every adherent)."""
    errors = rules.collect({"name": rules.check_text(name, True, 120)})
    if deadline is None:
        errors["deadline"] = rules.REQUIRED
    elif deadline <= now:
        errors["deadline"] = M("L'échéance doit être dans le futur.", "The deadline must be in the future.")
    elif deadline > now + timedelta(days=MAX_DAYS):
        errors["deadline"] = M("L'échéance doit être dans moins d'un an.", "The deadline must be within a year.")
    if on_deadline not in ON_DEADLINE:
        errors["on_deadline"] = M("Choisissez ce que fait l'échéance : désactiver les utilisateurs non revus, ou "
                                  "seulement les signaler.", "Choose what the deadline does: disable the users not "
                                  "reviewed, or only report them.")
    problem = parse_reminder_days(reminder_days)[1]
    if problem:
        errors["reminder_days"] = problem
    if adherents is not None:
        listed = list(adherents)
        bad = [n for n in listed if rules.check_adherent(n)]
        if not listed:
            errors["adherents"] = M("Indiquez au moins un numéro d'adhérent, ou aucun pour tous les adhérents.",
                                    "Give at least one member number, or none for every member.")
        elif bad:
            errors["adherents"] = M(f"Numéro d'adhérent invalide : {bad[0]} (4 à 10 chiffres).",
                                    f"Invalid member number: {bad[0]} (4 to 10 digits).")
    return errors


def parse_deadline(value: datetime | str | None) -> tuple[datetime | None, Message | None]:
    """A deadline as typed: a date YYYY-MM-DD is the end of that day (UTC), an ISO date-time is itself (UTC when it
    has no offset); a datetime is kept. (None, BAD_DEADLINE) when it cannot be read; (None, None) when empty."""
    if value is None or isinstance(value, datetime):
        return aware(value), None
    text = value.strip()
    if not text:
        return None, None
    try:
        if len(text) == 10:
            return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(23, 59, 59), timezone.utc), None
        return aware(datetime.fromisoformat(text)), None
    except ValueError:
        return None, BAD_DEADLINE


def _paths(groups: dict[str, dict]) -> dict[str, str]:
    """Each group's path, from the names and parents of the whole tree."""
    paths: dict[str, str] = {}

    def path(gid: str) -> str:
        if gid not in paths:
            parent = groups[gid].get("parentId")
            paths[gid] = (path(parent) if parent in groups else "") + "/" + groups[gid]["name"]
        return paths[gid]

    for gid in groups:
        path(gid)
    return paths


def adherent_groups(groups: list[dict]) -> dict[str, dict]:
    """numéro -> the adherent's group (/adherents/<n>), from the extension's group listing."""
    top = next((g for g in groups if g.get("parentId") is None and g["name"] == ADHERENTS), None)
    return {g["name"]: g for g in groups if top and g.get("parentId") == top["id"]}


def snapshot(users_: list[dict], groups: list[dict], scope: set[str], teleservices: tuple[str, ...]) -> list[Snapshot]:
    """The enabled teleservice users of the adherents in ``scope`` with their powers (leaf groups
    /adherents/<n>/<teleservice>/<role> of their own adherent and teleservice), by adherent and login."""
    by_id = {g["id"]: g for g in groups}
    path_of = _paths(by_id)
    out = []
    for u in users_:
        attrs = u.get("attributes") or {}
        adherent, teleservice = (attrs.get("adherent") or [None])[0], (attrs.get("teleservice") or [None])[0]
        if (not u.get("enabled") or u.get("serviceAccountClientLink") or adherent not in scope
                or teleservice not in teleservices):
            continue
        prefix = f"/{ADHERENTS}/{adherent}/{teleservice}/"
        powers = tuple(sorted(p[len(prefix):] for p in (path_of.get(g) for g in u.get("groups") or ())
                              if p and p.startswith(prefix) and "/" not in p[len(prefix):]))
        out.append(Snapshot(adherent, u["id"], u["username"], teleservice, powers))
    return sorted(out, key=lambda s: (s.adherent, s.login))


def reminders_due(campaign: Campaign, already: set[int], now: datetime) -> tuple[int, ...]:
    """The reminder days of the campaign reached by ``now`` (deadline - days <= now < deadline) and not sent yet."""
    if not campaign.open or now >= campaign.deadline:
        return ()
    return tuple(d for d in campaign.reminder_days
                 if campaign.deadline - timedelta(days=d) <= now and d not in already)


def completion(items: Iterable[Item]) -> list[Completion]:
    """Per adherent: how many users, kept, revoked, still pending, and what the close did to the unreviewed."""
    by: dict[str, list[Item]] = {}
    for item in items:
        by.setdefault(item.adherent, []).append(item)
    return [Completion(n, len(its), sum(i.decision == KEEP for i in its), sum(i.decision == REVOKE for i in its),
                       sum(i.pending for i in its), sum(i.closing == "disabled" for i in its),
                       sum(i.closing == "reported" for i in its)) for n, its in sorted(by.items())]


CSV_ADHERENTS = ("adherent", "users", "kept", "revoked", "pending", "completion_percent", "disabled_at_deadline",
                 "reported_at_deadline")
CSV_DECISIONS = ("adherent", "login", "teleservice", "powers", "decision", "decided_by", "decided_at",
                 "at_deadline")


def render_csv(campaign: Campaign, items: list[Item], section: str = "adherents") -> str:
    """Completion per adherent (``adherents``), or every user with its decision (``decisions``)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if section == "decisions":
        w.writerow(CSV_DECISIONS)
        for i in items:
            w.writerow([i.adherent, i.login, i.teleservice, "|".join(i.powers), i.decision or "pending",
                        i.decided_by or "", i.decided_at.isoformat(timespec="seconds") if i.decided_at else "",
                        i.closing or ""])
    else:
        w.writerow(CSV_ADHERENTS)
        for c in completion(items):
            w.writerow([c.adherent, c.total, c.kept, c.revoked, c.pending, c.percent, c.disabled, c.reported])
    return out.getvalue()


# The export's words (fr / en): the page is read by people, the CSV by machines (codes there).
EXPORT_WORDS = {DISABLE: "désactivés / disabled", REPORT: "signalés / reported", OPEN: "ouverte / open",
                CLOSED: "clôturée / closed", KEEP: "conservé / kept", REVOKE: "révoqué / revoked",
                "disabled": "désactivé / disabled", "reported": "signalé / reported", "gone": "parti / gone",
                "failed": "échec / failed", None: "en attente / pending"}


def render_html(campaign: Campaign, items: list[Item], teleservices: dict[str, str] | None = None) -> str:
    """A self-contained page (inline style, no script): the campaign, completion per adherent, every decision; in
    words, French then English (teleservices by their names when given)."""
    e, w, names = html.escape, EXPORT_WORDS.get, teleservices or {}
    rows = "".join(f"<tr><td>{e(c.adherent)}</td><td>{c.total}</td><td>{c.kept}</td><td>{c.revoked}</td>"
                   f"<td>{c.pending}</td><td>{c.percent} %</td><td>{c.disabled}</td><td>{c.reported}</td></tr>"
                   for c in completion(items))
    decisions = "".join(
        f"<tr><td>{e(i.adherent)}</td><td>{e(i.login)}</td><td>{e(names.get(i.teleservice, i.teleservice))}</td>"
        f"<td>{e(', '.join(rules.power_label(p).fr for p in i.powers))}</td><td>{e(w(i.decision, ''))}</td>"
        f"<td>{e(i.decided_by or '')}</td><td>{e(f'{i.decided_at:%d/%m/%Y %H:%M}' if i.decided_at else '')}</td>"
        f"<td>{e(w(i.closing, '') if i.closing else '')}</td></tr>" for i in items)
    c = campaign
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Revue des accès {c.id} — {e(c.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #999;padding:.3em .6em;text-align:left}}caption{{font-weight:bold;text-align:left}}</style>
</head><body>
<h1>Revue des accès / Access review {c.id} — {e(c.name)}</h1>
<p>Ouverte par / opened by {e(c.opened_by)}, {c.opened_at:%d/%m/%Y %H:%M} UTC. Échéance / deadline
{c.deadline:%d/%m/%Y %H:%M} UTC. À l'échéance, les non revus sont / at the deadline, the unreviewed are:
{e(w(c.on_deadline, ''))}. État / status: {e(w(c.status, ''))}
{f"({c.closed_at:%d/%m/%Y %H:%M} UTC, {e(c.closed_by or '')})" if c.closed_at else ""}.</p>
<table><caption>Avancement par adhérent / completion per member</caption>
<thead><tr><th>Adhérent</th><th>Utilisateurs</th><th>Conservés</th><th>Révoqués</th><th>En attente</th>
<th>Avancement</th><th>Désactivés à l'échéance</th><th>Signalés à l'échéance</th></tr></thead>
<tbody>{rows}</tbody></table>
<table><caption>Décisions / decisions</caption>
<thead><tr><th>Adhérent</th><th>Login</th><th>Téléservice</th><th>Pouvoirs</th><th>Décision</th>
<th>Par</th><th>Le</th><th>À l'échéance</th></tr></thead>
<tbody>{decisions}</tbody></table>
</body></html>
"""


# --- reading ------------------------------------------------------------------------------------------------
def _campaign(r) -> Campaign:
    return Campaign(r.id, r.name, r.opened_by, aware(r.opened_at), aware(r.deadline), r.on_deadline,
                    parse_reminder_days(r.reminder_days)[0], tuple(r.scope) if r.scope is not None else None,
                    r.status, aware(r.closed_at), r.closed_by)


def _item(r) -> Item:
    return Item(r.id, r.campaign_id, r.adherent, r.user_id, r.login, r.teleservice, tuple(r.powers), r.decision,
                r.decided_by, aware(r.decided_at), r.closing)


def campaigns(services: Services, status: str | None = None) -> list[Campaign]:
    """The campaigns, newest first (only open or closed ones when ``status`` is given)."""
    q = select(review_campaigns).order_by(review_campaigns.c.id.desc())
    if status:
        q = q.where(review_campaigns.c.status == status)
    with services.db.connect() as conn:
        return [_campaign(r) for r in conn.execute(q)]


def get_campaign(services: Services, campaign_id: int) -> Campaign:
    """One campaign; NotFound when there is none with this id."""
    with services.db.connect() as conn:
        row = conn.execute(select(review_campaigns).where(review_campaigns.c.id == campaign_id)).first()
    if row is None:
        raise NotFound(f"no access review campaign {campaign_id}")
    return _campaign(row)


def items(services: Services, campaign_id: int, adherent: str | None = None) -> list[Item]:
    """The campaign's items by adherent and login (one adherent's when given)."""
    q = (select(review_items).where(review_items.c.campaign_id == campaign_id)
         .order_by(review_items.c.adherent, review_items.c.login))
    if adherent is not None:
        q = q.where(review_items.c.adherent == adherent)
    with services.db.connect() as conn:
        return [_item(r) for r in conn.execute(q)]


def open_progress(db) -> list[tuple[Campaign, list[Completion]]]:
    """Every open campaign with its completion per adherent (the security audit's report reads this)."""
    with db.connect() as conn:
        opened = [_campaign(r) for r in conn.execute(
            select(review_campaigns).where(review_campaigns.c.status == OPEN).order_by(review_campaigns.c.id))]
        return [(c, completion(_item(r) for r in conn.execute(
            select(review_items).where(review_items.c.campaign_id == c.id)))) for c in opened]


def items_to_review(gw: Gateway, services: Services, actor: Actor, adherent: str) -> list[tuple[Campaign, list[Item]]]:
    """The delegate's page: each open campaign with the adherent's items (pending first), with the users' current
    names (one read of the adherent's tree). The tenant check first."""
    with audited(services.db, actor, "review.list", adherent, adherent, read=True):
        require_adherent(actor, adherent, adherent)
        out = []
        for c in sorted(campaigns(services, OPEN), key=lambda c: c.deadline):
            mine = items(services, c.id, adherent)
            if mine:
                out.append((c, sorted(mine, key=lambda i: (not i.pending, i.login))))
    if not out:
        return out
    names = {m.user.id: f"{m.user.first_name or ''} {m.user.last_name or ''}".strip()
             for m in adherent_members(gw, adherent)[1]}
    return [(c, [replace(i, name=names.get(i.user_id, "")) for i in its]) for c, its in out]


def pending_count(services: Services, adherent: str) -> int:
    """How many of the adherent's users wait for a decision in open campaigns (the delegate's tab)."""
    q = (select(review_items.c.id).join(review_campaigns, review_campaigns.c.id == review_items.c.campaign_id)
         .where(review_campaigns.c.status == OPEN, review_items.c.adherent == adherent,
                review_items.c.decision.is_(None)))
    with services.db.connect() as conn:
        return len(conn.execute(q).all())


def require_security_team(actor: Actor, action: str) -> None:
    """Opening and closing a campaign: the security team (realm role auditor). NotAllowed otherwise."""
    if actor.role != AUDITOR:
        raise NotAllowed(actor.username, action, NOT_AUDITOR)


# --- actions ------------------------------------------------------------------------------------------------
def open_campaign(gw: Gateway, services: Services, actor: Actor, name: str, deadline: datetime | str | None,
                  on_deadline: str, reminder_days: str = "7,1", adherents: list[str] | None = None,
                  now: datetime | None = None) -> Campaign:
    """Open a campaign and take its snapshot (``adherents`` None: every active approved adherent; ``deadline`` a
    datetime, or as typed: ``parse_deadline``). ``gw`` reads every user and group (the provisioner's service
    account). ValidationError for a bad field or an adherent not approved or suspended; RuleViolation when nobody is
    to be reviewed; NotAllowed for anyone but an auditor."""
    now = now or clock.now()
    deadline, unreadable = parse_deadline(deadline)
    with audited(services.db, actor, "review.open", None, name) as entry:
        require_security_team(actor, "review.open")
        listed = None if adherents is None else sorted({a.strip() for a in adherents})
        rules.raise_if(check_campaign(name.strip(), deadline, on_deadline, reminder_days, listed, now)
                       | ({"deadline": unreadable} if unreadable else {}))
        groups = gw.audit_listing("groups", gw.count_groups())
        known = {n: g for n, g in adherent_groups(groups).items()
                 if ((g.get("attributes") or {}).get("status") or [ACTIVE])[0] == ACTIVE}
        missing = [n for n in listed or () if n not in known]
        if missing:
            raise ValidationError({"adherents": M(
                f"Adhérent sans abonnement validé ou suspendu : {', '.join(missing)}.",
                f"Member without an approved subscription, or suspended: {', '.join(missing)}.")})
        scope = set(listed) if listed is not None else set(known)
        found = snapshot(gw.audit_listing("users", gw.count_users()), groups, scope, services.catalogue.ids)
        if not found:
            raise RuleViolation("adherents", NOTHING_TO_REVIEW)
        days = parse_reminder_days(reminder_days)[0]
        with services.db.begin() as conn:
            cid = conn.execute(insert(review_campaigns).values(
                name=name.strip(), opened_by=actor.username, opened_at=now, deadline=deadline,
                on_deadline=on_deadline, reminder_days=",".join(map(str, days)), scope=listed, status=OPEN,
            )).inserted_primary_key[0]
            conn.execute(insert(review_items), [
                {"campaign_id": cid, "adherent": s.adherent, "user_id": s.user_id, "login": s.login,
                 "teleservice": s.teleservice, "powers": list(s.powers)} for s in found])
        entry.target = f"campaign:{cid}"
        entry.after = {"campaign": cid, "name": name.strip(), "deadline": deadline.isoformat(),
                       "on_deadline": on_deadline, "reminder_days": list(days), "adherents": listed or "all",
                       "users": len(found), "adherents_reviewed": len({s.adherent for s in found})}
    return get_campaign(services, cid)


def _one_item(services: Services, item_id: int) -> Item:
    with services.db.connect() as conn:
        row = conn.execute(select(review_items).where(review_items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"no access review item {item_id}")
    return _item(row)


def decide(gw: Gateway, services: Services, actor: Actor, item_id: int, decision: str,
           now: datetime | None = None) -> Item:
    """The delegate's decision on one of its users: keep, or revoke (``teleservice_users.disable_user``,
    confirmed: disabled, sessions ended). Only the delegate decides — the review is the company's attestation, which neither a CIMR
    agent nor the security team can give for it (NotAllowed) — for its own adherent's items (TenantViolation),
    once, while the campaign is open (RuleViolation); NotFound for an unknown item."""
    item = _one_item(services, item_id)
    with audited(services.db, actor, "review.decide", item.adherent, item.login) as entry:
        if actor.role != DELEGATE:
            raise NotAllowed(actor.username, "review.decide", NOT_REVIEWER)
        require_adherent(actor, item.adherent, item.login)
        if decision not in DECISIONS:
            raise ValidationError({"decision": BAD_DECISION})
        if not get_campaign(services, item.campaign_id).open:
            raise RuleViolation("campaign", NOT_OPEN)
        if not item.pending:
            raise RuleViolation("decision", ALREADY_DECIDED)
        entry.before = {"campaign": item.campaign_id, "teleservice": item.teleservice, "powers": list(item.powers)}
        entry.after = {"decision": decision}
        if decision == REVOKE:
            try:
                # An explicit decision: a validator's departure is confirmed by it (disable_user's trail says so).
                teleservice_users.disable_user(gw, services, actor, item.adherent, item.login, confirmed=True)
                entry.detail = "revoked: disabled, sessions ended"
            except NotFound:
                entry.detail = "revoked: the user no longer exists"
        with services.db.begin() as conn:
            done = conn.execute(update(review_items).where(review_items.c.id == item.id,
                                                           review_items.c.decision.is_(None)).values(
                decision=decision, decided_by=actor.username, decided_at=(now or clock.now()))).rowcount
        if not done:  # another request decided meanwhile
            raise RuleViolation("decision", ALREADY_DECIDED)
    return _one_item(services, item_id)


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
        for numero, count in sorted(pending.items()):
            due = reminders_due(c, {d for n, d in sent if n == numero}, now)
            if due:
                out.append(_remind_one(gw, services, c, numero, due, count, now))
    return out


def _remind_one(gw: Gateway, services: Services, c: Campaign, numero: str, due: tuple[int, ...], pending: int,
                now: datetime) -> Reminder:
    delegate = gw.user_by_username(numero)
    if delegate is None or not delegate.email:
        log.warning("adherent %s: no delegate e-mail for the access review reminder (campaign %s)", numero, c.id)
        return Reminder(c.id, numero, due, pending, False)
    try:
        with services.db.begin() as conn:
            ids = [conn.execute(insert(review_reminders).values(campaign_id=c.id, adherent=numero, days=d,
                                                                sent_at=now)).inserted_primary_key[0] for d in due]
    except IntegrityError:  # another run claimed these days first
        return Reminder(c.id, numero, due, pending, False)
    with audited(services.db, SYSTEM, "review.remind", numero, f"campaign:{c.id}") as entry:
        left = max(1, math.ceil((c.deadline - now).total_seconds() / 86400))
        mail = outbox.post(services, reminder_mail(services, delegate.email, numero, c, pending, left), numero, SYSTEM)
        with services.db.begin() as conn:
            conn.execute(update(review_reminders).where(review_reminders.c.id.in_(ids)).values(mail_id=mail.id))
        entry.after = {"campaign": c.id, "days": list(due), "pending": pending, "mailed": mail.sent}
    return Reminder(c.id, numero, due, pending, mail.sent)


def reminder_mail(services: Services, to: str, numero: str, c: Campaign, pending: int, days_left: int):
    then_fr = ("seront désactivés" if c.on_deadline == DISABLE else "seront signalés à l'équipe sécurité de la CIMR")
    then_en = ("will be disabled" if c.on_deadline == DISABLE else "will be reported to CIMR's security team")
    url = services.settings.portal_url + PORTAL_PATH
    return notice_mail(
        to, numero,
        f"Revue des accès « {c.name} » : {pending} utilisateur(s) de votre entreprise attendent votre décision "
        f"(conserver ou révoquer). Échéance : {c.deadline:%d/%m/%Y} (dans {days_left} jour(s)). Les utilisateurs non "
        f"revus à l'échéance {then_fr}. Portail : {url}",
        f"Access review '{c.name}': {pending} user(s) of your company wait for your decision (keep or revoke). "
        f"Deadline: {c.deadline:%Y-%m-%d} (in {days_left} day(s)). Users not reviewed by the deadline {then_en}. "
        f"Portal: {url}")


def close_campaign(gw: Gateway, services: Services, actor: Actor, campaign_id: int, force: bool = False,
                   now: datetime | None = None) -> Closure:
    """At the deadline (before it only with ``force``, by a person): the unreviewed items are disabled (``gw``:
    the provisioner's service account; each in the trail under ``actor``; their delegates told) or only reported,
    as the campaign says (a user deleted or disabled since the opening is ``gone`` either way); then it is closed
    — unless some could not be disabled (``failed``): it stays open and a re-run finishes. The security team, or the
    scheduled close (SYSTEM, never forced)."""
    now = now or clock.now()
    with audited(services.db, actor, "review.close", None, f"campaign:{campaign_id}") as entry:
        if actor.role != SYSTEM_ROLE:
            require_security_team(actor, "review.close")
        c = get_campaign(services, campaign_id)
        if not c.open:
            raise RuleViolation("campaign", NOT_OPEN)
        if now < c.deadline and not (force and actor.role == AUDITOR):
            raise RuleViolation("force", BEFORE_DEADLINE)
        # A close that failed on some users left the campaign open: a re-run finishes the job.
        unreviewed = [i for i in items(services, c.id) if i.pending and i.closing in (None, "failed")]
        disabled, reported, gone, failed = [], [], [], []
        forced = now < c.deadline
        for item in unreviewed:
            try:
                rep = _still_there(gw, item)
                if rep is None:  # deleted, disabled or moved since the snapshot: neither reported nor disabled
                    gone.append(item)
                elif c.on_deadline == REPORT:
                    reported.append(item)
                else:
                    _disable_unreviewed(gw, services, actor, c, item, rep, forced, now)
                    disabled.append(item)
            except ProvisionerError as exc:
                failed.append((item, f"{type(exc).__name__}: {exc}"))
        with services.db.begin() as conn:
            for outcome, its in (("disabled", disabled), ("reported", reported), ("gone", gone),
                                 ("failed", [i for i, _ in failed])):
                if its:
                    conn.execute(update(review_items).where(review_items.c.id.in_([i.id for i in its]))
                                 .values(closing=outcome))
            if not failed:
                conn.execute(update(review_campaigns).where(review_campaigns.c.id == c.id).values(
                    status=CLOSED, closed_at=now, closed_by=actor.username))
        entry.after = {"campaign": c.id, "on_deadline": c.on_deadline, "forced": forced,
                       "unreviewed": len(unreviewed), "disabled": len(disabled), "reported": len(reported),
                       "gone": len(gone), "failed": len(failed)}
    outbox.tell_delegates(gw, services, ((i.adherent, i.login) for i in disabled),
                          lambda listed: closing_mail(c, listed, now if forced else None), SYSTEM)
    return Closure(get_campaign(services, c.id), tuple(disabled), tuple(reported), tuple(gone), tuple(failed))


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


def _disable_unreviewed(gw: Gateway, services: Services, actor: Actor, c: Campaign, item: Item, rep: dict,
                        forced: bool, now: datetime) -> None:
    """Disable one unreviewed user (``rep``, as just read) and end its sessions."""
    with audited(services.db, actor, "review.disable_unreviewed", item.adherent, item.login) as entry:
        entry.before, entry.after = {"enabled": True}, {"enabled": False, "campaign": c.id}
        entry.detail = (f"not reviewed before the campaign was closed early on {now:%Y-%m-%d} (campaign {c.id})"
                        if forced else f"not reviewed by the deadline {c.deadline:%Y-%m-%d} (campaign {c.id})")
        gw.update_user(item.user_id, {**rep, "enabled": False})
        gw.logout_user(item.user_id)
        if item.teleservice == EASYPAIEMENT:
            easypaiement.record(gw, services, item.adherent)  # a validator may leave the adherent short


