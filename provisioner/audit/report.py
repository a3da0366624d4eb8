"""The security team's audit report (pure): who holds what, the findings, admin activity.

``provisioner.audit.collect.collect`` reads everything in bulk (read-only ``auditor`` account, our database) into an
``AuditData`` (provisioner/audit/data.py); ``build_report`` turns it into a ``Report`` without any I/O, applying the
rules (provisioner/audit/rules.py); provisioner/audit/render.py turns a report into a table, CSV, JSON or a
self-contained HTML page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from provisioner.audit.data import AdherentInfo, AuditData, ServiceAccounts
from provisioner.audit.findings import SEVERITIES, Finding, severity_rank
from provisioner.audit.rules import View, find_issues
from provisioner.tenancy import AGENT, DELEGATE
from provisioner.trail import TrailEntry

# Trail actions that create an account (prefixes): their person is its creator ("created by").
CREATION_ACTIONS = ("user.create", "subscription.submit", "staff.create.")
# A trail entry and the Keycloak admin events it caused: the entry is written when the action ends.
JOIN_WINDOW = timedelta(seconds=120)
# The columns of each section of the report (the table, the CSV, the activity in JSON).
SECTIONS = {
    "findings": ("severity", "kind", "adherent", "subject", "detail"),
    "holdings": ("adherent", "raison_sociale", "adherent_status", "teleservice", "role", "username", "enabled",
                 "last_login", "created", "created_by"),
    "activity": ("at", "actor", "actor_role", "adherent", "action", "target", "outcome", "source", "keycloak"),
}


@dataclass(frozen=True)
class Holding:
    adherent: str
    raison_sociale: str
    adherent_status: str
    teleservice: str
    role: str
    username: str
    enabled: bool
    last_login: datetime | None
    created: datetime | None
    created_by: str | None


@dataclass(frozen=True)
class Report:
    realm: str
    generated_at: datetime
    inactive_days: int
    holdings: tuple[Holding, ...]
    findings: tuple[Finding, ...]
    activity: tuple[TrailEntry, ...]
    drift_note: str
    notes: tuple[str, ...]
    counts: Mapping[str, int]

    def at_or_above(self, severity: str) -> tuple[Finding, ...]:
        """Findings of this severity or worse."""
        rank = severity_rank(severity)
        return tuple(f for f in self.findings if severity_rank(f.severity) >= rank)

    def to_json(self) -> dict:
        def plain(obj: Any) -> Any:
            return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(obj).items()}
        return {"realm": self.realm, "generated_at": self.generated_at.isoformat(),
                "inactive_days": self.inactive_days, "counts": dict(self.counts), "notes": list(self.notes),
                "drift": self.drift_note,
                "findings": [{**{k: v for k, v in plain(f).items() if k != "said"}, "title": f.title.en,
                              "title_fr": f.title.fr} for f in self.findings],
                "holdings": [plain(h) for h in self.holdings],
                "activity": [{k: v for k, v in plain(a).items() if k in SECTIONS["activity"]} for a in self.activity]}


def _creators(trail: tuple[TrailEntry, ...]) -> dict[str, TrailEntry]:
    out: dict[str, TrailEntry] = {}
    for e in sorted(trail, key=lambda e: e.at):
        if e.outcome == "ok" and e.target and e.action.startswith(CREATION_ACTIONS) and e.target not in out:
            out[e.target] = e
    return out


def holdings(data: AuditData, view: View) -> list[Holding]:
    """Per adherent, teleservice and role, the accounts holding it."""
    adherents = {ad.numero: ad for ad in data.adherents}
    creators = _creators(data.trail)
    rows = []
    for a in data.accounts:
        created_by = creators[a.username].actor if a.username in creators else None
        for client, held in view.tele[a.id].items():
            for numero, role in held:
                ad = adherents.get(numero, AdherentInfo(numero, "", "unknown"))
                rows.append(Holding(numero, ad.raison_sociale, ad.status, client, role, a.username, a.enabled,
                                    data.last_logins.get(a.id), a.created, created_by))
    return sorted(rows, key=lambda h: (h.adherent, h.teleservice, h.role, h.username))


def token_holders(entry: TrailEntry, accounts: ServiceAccounts) -> frozenset[str]:
    """The Keycloak users whose token may have carried out this trail entry's action: its admin events name one.

    A delegate acts with its own token in the portal (portal/services.py ``gateway``); through the CLI (``--as``,
    cli.base.Run) and for its adherent group's own attributes (core.Services.automation, docs/security.md
    §5.6) the provisioner's service account acts for it. Everyone else (agents, auditors, the public forms'
    subscriber and user) acts through the provisioner's service account; an agent's approval also writes the
    adherent's permissions with the delegations service account (permissions.writer).
    """
    if entry.actor_role == DELEGATE:
        return frozenset({entry.actor.lower(), accounts.provisioner})
    if entry.actor_role == AGENT:
        return frozenset({accounts.provisioner, accounts.delegations})
    return frozenset({accounts.provisioner})


def admin_activity(data: AuditData) -> list[TrailEntry]:
    """Our audit trail (the person) joined with Keycloak's admin events (what Keycloak changed).

    An entry takes the not-yet-taken admin events on the same target user, in the window before it, made with
    the token its person would have used (token_holders): a console change made meanwhile by someone else stays
    on its own row (events indexed by target: linear in the number of entries and events).
    """
    by_target: dict[str, list[tuple[datetime, int]]] = {}
    for i, k in enumerate(data.admin_events):
        if k.target:
            by_target.setdefault(k.target, []).append((k.at, i))
    for events in by_target.values():
        events.sort()
    used: set[int] = set()
    rows = []
    for t in sorted(data.trail, key=lambda e: e.at):
        if data.activity_since and t.at < data.activity_since:
            continue
        caused = []
        holders = token_holders(t, data.service_accounts)
        for at, i in by_target.get(t.target or "", ()):
            if (i not in used and t.at - JOIN_WINDOW <= at <= t.at + timedelta(seconds=2)
                    and data.admin_events[i].actor in holders):
                used.add(i)
                k = data.admin_events[i]
                caused.append(f"{k.operation} {k.resource_path}")
        rows.append(replace(t, before=None, after=None, keycloak=tuple(caused),
                            source="trail+keycloak" if caused else "trail"))
    for i, k in enumerate(data.admin_events):
        if i not in used:
            rows.append(TrailEntry(k.at, k.actor, "keycloak", None, f"{k.resource_type} {k.operation}".lower(),
                                   k.target or k.resource_path, "ok", keycloak=(f"{k.operation} {k.resource_path}",),
                                   source="keycloak"))
    return sorted(rows, key=lambda r: r.at, reverse=True)


def build_report(data: AuditData, inactive_days: int = 90, now: datetime | None = None,
                 incomplete_days: int = 7, dormant_days: int = 180, grace_days: int = 30) -> Report:
    """The full report (pure): holdings, findings, admin activity, counts and caveats. ``incomplete_days``: how long
    a 2-confirmation adherent may lack its second validator before it is a finding; ``dormant_days`` and
    ``grace_days``: the DORMANT_DAYS and TERMINATION_GRACE_DAYS settings."""
    now = now or data.collected_at
    view = View(data)
    findings = find_issues(data, view, inactive_days, now, incomplete_days, dormant_days, grace_days)
    notes = list(data.notes)
    if data.login_retention_days is not None and data.login_retention_days < inactive_days:
        notes.append(f"Login events are kept {data.login_retention_days} days: 'inactive' cannot see logins older "
                     f"than that.")
    notes.append("Last login comes from Keycloak LOGIN events (Keycloak stores no last-login time).")
    kinds = [view.kind(a) for a in data.accounts]
    counts = {"accounts": len(data.accounts), "users": kinds.count("user"), "delegates": kinds.count("delegate"),
              "staff": kinds.count("staff"), "service_accounts": kinds.count("service-account"),
              "adherents": len(data.adherents), "findings": len(findings), "keycloak_reads": data.reads}
    for s in SEVERITIES:
        counts[f"findings_{s}"] = sum(f.severity == s for f in findings)
    return Report(data.realm, now, inactive_days, tuple(holdings(data, view)), tuple(findings),
                  tuple(admin_activity(data)), data.drift_note, tuple(notes), counts)
