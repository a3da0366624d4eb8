"""Access review campaigns as we keep them: what a campaign and its items are, the checks of an opening (pure),
the snapshot of the users in scope and the completion (pure), the CSV and HTML exports, and the reads of our
database. The actions on them (open, decide, remind, close) are provisioner/reviews.py; the audit reads the open
ones' progress from here.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Iterable

from sqlalchemy import select

from provisioner import clock, rules
from provisioner.core import Services
from provisioner.db import review_campaigns, review_items
from provisioner.errors import Message, NotFound
from provisioner.rules import M
from provisioner.tenancy import Actor
from provisioner.clock import aware
from provisioner.tree import ADHERENTS


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


def get_item(services: Services, item_id: int) -> Item:
    """One item of a campaign; NotFound for an unknown id."""
    with services.db.connect() as conn:
        row = conn.execute(select(review_items).where(review_items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"no access review item {item_id}")
    return _item(row)


def open_progress(db) -> list[tuple[Campaign, list[Completion]]]:
    """Every open campaign with its completion per adherent (the security audit's report reads this)."""
    with db.connect() as conn:
        opened = [_campaign(r) for r in conn.execute(
            select(review_campaigns).where(review_campaigns.c.status == OPEN).order_by(review_campaigns.c.id))]
        return [(c, completion(_item(r) for r in conn.execute(
            select(review_items).where(review_items.c.campaign_id == c.id)))) for c in opened]


def pending_count(services: Services, adherent: str) -> int:
    """How many of the adherent's users wait for a decision in open campaigns (the delegate's tab)."""
    q = (select(review_items.c.id).join(review_campaigns, review_campaigns.c.id == review_items.c.campaign_id)
         .where(review_campaigns.c.status == OPEN, review_items.c.adherent == adherent,
                review_items.c.decision.is_(None)))
    with services.db.connect() as conn:
        return len(conn.execute(q).all())
