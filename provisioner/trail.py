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
from provisioner.errors import (Conflict, Forbidden, NotFound, ProvisionerError, RuleViolation, TenantViolation,
                                ValidationError, KeycloakRejected)
from provisioner.tenancy import Actor

# Never written to the trail, whatever an action puts in before/after.
SECRET_KEYS = frozenset({"password", "password_confirm", "credentials", "answer", "answers", "secret_questions",
                         "value", "secret"})
REFUSALS = (RuleViolation, ValidationError, TenantViolation, Forbidden, NotFound, Conflict, KeycloakRejected)


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
def audited(db: Database, actor: Actor, action: str, adherent: str | None, target: str | None) -> Iterator[Entry]:
    """Record the action's outcome: ok, refused (a rule, the tenant check, Keycloak's refusal) or error."""
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
