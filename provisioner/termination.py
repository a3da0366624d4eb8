"""The end of a subscription (résiliation), on the adherent's signed letter.

1. ``terminate_adherent`` (agent): status ``terminated`` with its date; every account of the adherent disabled —
   the delegate included — and logged out; the delegate's Keycloak delegation (its fine-grained permission) removed,
   so even a token still alive can no longer touch the adherent's users; the delegate's term closed. Nothing is
   deleted: the history stays.
2. ``reinstate_adherent`` (agent), within ``TERMINATION_GRACE_DAYS`` (30): the letter was withdrawn or a mistake;
   exactly the accounts the termination disabled are enabled again and the delegation restored.
3. ``purge_adherent`` (agent, or cron through ``due_for_purge``), after the grace period: the adherent's Keycloak
   users and groups deleted, its delegation gone, and our records of the people anonymised — subscription forms,
   delegate terms, secret questions, mails, password links. The trail is kept whole: it is the record of who did
   what (docs/retention.md says how long each record is kept and why, under Morocco's law 09-08).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from provisioner import permissions
from provisioner.context import Context
from provisioner.delegates import close_term
from provisioner.core import Services
from provisioner.db import delegate_history, mail_outbox, password_links, secret_questions, subscriptions
from provisioner.errors import Message, RuleViolation
from provisioner.gateway import Gateway
from provisioner.tenancy import require_agent
from provisioner.tree import (ACTIVE, ADHERENTS, DELEGATES, TERMINATED, TERMINATED_AT, adherent_accounts,
                              adherent_members, adherent_state, set_enabled)
from provisioner import clock

ERASED = "[effacé]"


@dataclass(frozen=True)
class Purged:
    numero: str
    users: int
    groups: int




def terminated_at(state) -> datetime | None:
    value = state.group.attr(TERMINATED_AT)
    return datetime.fromisoformat(value) if value else None


def terminate_adherent(ctx: Context, reason: str = "") -> int:
    """Agent, on the signed letter: see the module. Returns how many accounts were disabled. Re-runnable."""
    with ctx.audited("adherent.terminate", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        state = adherent_state(ctx.gw, ctx.adherent)
        when = terminated_at(state) or clock.now()
        # The status first: while it says terminated, no delegate action goes through.
        ctx.gw.set_group_attributes(state.group, {"status": [TERMINATED], TERMINATED_AT: [when.isoformat()]})
        count = 0
        for user in adherent_accounts(ctx.gw, ctx.adherent):
            if user.enabled:
                set_enabled(ctx.gw, user.id, False, suspended=True)  # tagged: a reinstatement enables exactly these
                count += 1
            ctx.gw.logout_user(user.id)
        permissions.remove_delegation(permissions.writer(ctx.services.settings), ctx.adherent)
        close_term(ctx.services, ctx.adherent, ctx.actor)
        grace = ctx.services.settings.termination_grace_days
        entry.before = {"status": state.status}
        entry.after = {"status": TERMINATED, "disabled": count,
                       "purge_from": (when + timedelta(days=grace)).date().isoformat()}
        entry.detail = reason or None
        return count


def _require_terminated(state) -> datetime:
    when = terminated_at(state)
    if state.status != TERMINATED or when is None:
        raise RuleViolation("adherent", Message("Cet adhérent n'est pas résilié.", "This member is not terminated."))
    return when


def reinstate_adherent(ctx: Context, now: datetime | None = None) -> int:
    """Agent, within the grace period: the accounts the termination disabled are enabled, the delegation restored.
    Returns how many accounts. RuleViolation after the grace period (the purge is due) or when not terminated."""
    with ctx.audited("adherent.reinstate", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        state = adherent_state(ctx.gw, ctx.adherent)
        when = _require_terminated(state)
        grace = ctx.services.settings.termination_grace_days
        if (now or clock.now()) > when + timedelta(days=grace):
            raise RuleViolation("adherent", Message(
                f"La résiliation date de plus de {grace} jours : elle ne peut plus être annulée (purge due). Une "
                "nouvelle adhésion passe par un nouvel abonnement.",
                f"The termination is more than {grace} days old: it can no longer be undone (purge due). A new "
                "membership goes through a new subscription."))
        permissions.ensure_delegation(permissions.writer(ctx.services.settings), ctx.adherent)
        count = 0
        for user in adherent_accounts(ctx.gw, ctx.adherent):
            if user.attr("suspended_by_cimr") == "true":
                set_enabled(ctx.gw, user.id, True, suspended=False)
                count += 1
        ctx.gw.set_group_attributes(state.group, {"status": [ACTIVE], TERMINATED_AT: []})
        entry.before, entry.after = {"status": TERMINATED}, {"status": ACTIVE, "enabled": count}
        return count


def due_for_purge(gw: Gateway, services: Services, now: datetime | None = None) -> list[str]:
    """The terminated adherents whose grace period is over (for cron: `provisioner adherent purge --due`)."""
    now, grace = now or clock.now(), timedelta(days=services.settings.termination_grace_days)
    top = gw.group_by_path(f"/{ADHERENTS}")
    due = []
    for group in gw.children(top.id) if top else []:
        value = group.attr(TERMINATED_AT)
        if group.attr("status") == TERMINATED and value and datetime.fromisoformat(value) + grace <= now:
            due.append(group.name)
    return sorted(due)


def purge_adherent(ctx: Context, now: datetime | None = None) -> Purged:
    """After the grace period: delete the adherent's accounts and groups, anonymise our records of its people,
    keep the trail. Refused before the period is over, or when the adherent is not terminated."""
    with ctx.audited("adherent.purge", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        state, members = adherent_members(ctx.gw, ctx.adherent)
        when = _require_terminated(state)
        grace = ctx.services.settings.termination_grace_days
        if (now or clock.now()) < when + timedelta(days=grace):
            raise RuleViolation("adherent", Message(
                f"La résiliation peut encore être annulée jusqu'au {(when + timedelta(days=grace)):%d/%m/%Y} : la "
                "purge n'est possible qu'après.",
                f"The termination can still be undone until {(when + timedelta(days=grace)):%Y-%m-%d}: the purge is "
                "possible only after that."))
        accounts = {u.id: u for u in adherent_accounts(ctx.gw, ctx.adherent)} | {m.user.id: m.user for m in members}
        delegate = ctx.gw.user_by_username(ctx.adherent)
        if delegate is not None:
            accounts[delegate.id] = delegate
        for user_id in accounts:
            ctx.gw.delete_user(user_id)
        permissions.remove_delegation(permissions.writer(ctx.services.settings), ctx.adherent)
        groups = 0
        for path in (f"/{ADHERENTS}/{ctx.adherent}", f"/{DELEGATES}/{ctx.adherent}"):
            group = ctx.gw.group_by_path(path)
            if group is not None:
                ctx.gw.delete_group(group.id)
                groups += 1
        _anonymise(ctx.services, ctx.adherent, list(accounts))
        entry.after = {"users_deleted": len(accounts), "groups_deleted": groups}
        return Purged(ctx.adherent, len(accounts), groups)


def _anonymise(services: Services, adherent: str, user_ids: list[str]) -> None:
    """Our records of the adherent's people, without the people: forms, terms, questions, mails, links."""
    with services.db.begin() as conn:
        for row in conn.execute(select(subscriptions.c.id, subscriptions.c.form).where(
                subscriptions.c.adherent == adherent)):
            conn.execute(update(subscriptions).where(subscriptions.c.id == row.id).values(
                form=_erased_form(row.form), reason=None))
        conn.execute(update(delegate_history).where(delegate_history.c.adherent == adherent).values(
            civilite=None, nom=ERASED, prenom=ERASED, email=None))
        if user_ids:
            conn.execute(delete(secret_questions).where(secret_questions.c.user_id.in_(user_ids)))
            conn.execute(delete(password_links).where(password_links.c.user_id.in_(user_ids)))
        conn.execute(delete(mail_outbox).where(mail_outbox.c.adherent == adherent))


def _erased_form(form: dict | None) -> dict:
    """The subscription form without a person in it: the company's numéro and name stay (a public register)."""
    company = (form or {}).get("company") or {}
    return {"company": {"numero": company.get("numero"), "raison_sociale": company.get("raison_sociale")},
            "erased": True}
