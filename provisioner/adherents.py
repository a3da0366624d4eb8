"""The agent's actions on an adherent (signed letters) and the adherent's settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from provisioner import easypaiement, rules
from provisioner.context import Context
from provisioner.core import Services
from provisioner.db import delegate_history as history_table
from provisioner.errors import KeycloakRejected, Message, RuleViolation
from provisioner import outbox, password_links
from provisioner.mailer import notice_mail
from provisioner.delegates import (DelegateTerm, NewDelegate, delegate_account, in_office, record_new_term,
                                   replaced_rep, update_open_term, validate_delegate)
from provisioner.tenancy import Actor, require_adherent, require_agent
from provisioner.rules import password_refused
from provisioner.tree import (ACTIVE, SUSPENDED, TERMINATED_AT, Member, adherent_accounts, adherent_members,
                              adherent_state, require_active, set_enabled)


@dataclass(frozen=True)
class Adherent:
    numero: str
    raison_sociale: str
    status: str                       # active / suspended / terminated
    easypaiement_confirmations: int   # 1 / 2
    categories: tuple[str, ...]
    delegate_login: str               # = numero
    delegate_email: str | None
    delegate_enabled: bool
    terminated_at: datetime | None = None  # résiliation (provisioner/termination.py)


def get_adherent(ctx: Context) -> Adherent:
    """The adherent as Keycloak holds it (tenant-checked); RuleViolation('adherent') when not approved."""
    require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
    state = adherent_state(ctx.gw, ctx.adherent)
    delegate = ctx.gw.user_by_username(ctx.adherent)
    terminated = state.group.attr(TERMINATED_AT)
    return Adherent(ctx.adherent, state.raison_sociale, state.status, state.confirmations, state.categories, ctx.adherent,
                    delegate.email if delegate else None, bool(delegate and delegate.enabled),
                    datetime.fromisoformat(terminated) if terminated else None)


def active_categories(ctx: Context) -> tuple[str, ...]:
    """The adherent's active categories (tenant-checked), from one read of its tree (our extension): the same read
    as its delegate's listing."""
    require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
    return adherent_members(ctx.gw, ctx.adherent)[0].categories


def reset_delegate_password(ctx: Context, password: str,
                            password_confirm: str) -> None:
    """Agent, on a signed letter: set a temporary delegate password (changed at next login), end sessions."""
    with ctx.audited("delegate.reset_password", ctx.adherent):
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        rules.raise_if(rules.check_password_pair(ctx.services.password_policy, password, password_confirm, ctx.adherent))
        user = delegate_account(ctx.gw, ctx.adherent)
        try:
            ctx.gw.set_password(user.id, password, temporary=True)
        except KeycloakRejected as exc:
            raise password_refused(exc) from None
        ctx.gw.logout_user(user.id)
        if user.email:
            outbox.post(ctx.services, notice_mail(
                user.email, ctx.adherent, "Votre mot de passe d'administrateur des utilisateurs a été réinitialisé par la "
                "CIMR à la suite de votre courrier. Il vous sera remis par la CIMR ; vous devrez le changer à la "
                "première connexion.", "Your user-administrator password was reset by CIMR following your letter. "
                "CIMR will hand it to you; you must change it at first login."), ctx.adherent, ctx.actor)


def change_delegate_email(ctx: Context, email: str) -> None:
    """Agent, on a signed letter: change the delegate's e-mail (notice sent to the old and new address)."""
    with ctx.audited("delegate.change_email", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        rules.raise_if(rules.collect({"email": rules.check_email(email)}))
        user = delegate_account(ctx.gw, ctx.adherent)
        rep = ctx.gw.user_rep(user.id)
        entry.before, entry.after = {"email": rep.get("email")}, {"email": email}
        rep["email"], rep["emailVerified"] = email, True
        ctx.gw.update_user(user.id, rep)
        update_open_term(ctx.services, ctx.adherent, email=email)
        for to in {entry.before["email"], email} - {None}:
            outbox.post(ctx.services, notice_mail(
                to, ctx.adherent, f"L'adresse e-mail de l'administrateur des utilisateurs est désormais {email}.",
                f"The user administrator's e-mail address is now {email}."), ctx.adherent, ctx.actor)


def replace_delegate(ctx: Context, new: NewDelegate) -> password_links.Mailed | None:
    """Agent, réabonnement: the delegate account (username = numero) gets the new person, who chooses its own
    password through a link mailed to it (the agent never handles one); the previous person's password, second
    factor and sessions stop working at once; the history keeps who was delegate when.

    When the delegate in office is already this person (same e-mail and name), only the details change: no new
    password, no link. A re-run after a crash finishes the replacement. Returns what became of the link's mail
    (None for a details-only update)."""
    with ctx.audited("delegate.replace", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        rules.raise_if(validate_delegate(ctx.services, new, ctx.adherent, with_password=False))
        user = delegate_account(ctx.gw, ctx.adherent)
        entry.before = {"nom": user.last_name, "prenom": user.first_name, "email": user.email}
        entry.after = new.public()
        same_person = in_office(ctx.services, ctx.adherent, new)
        ctx.gw.update_user(user.id, replaced_rep(ctx.gw.user_rep(user.id), new))
        if same_person:
            entry.after |= {"details_only": True}
            return None
        for cred in ctx.gw.credentials(user.id):  # password, OTP, WebAuthn... of the previous delegate
            ctx.gw.delete_credential(user.id, cred["id"])
        ctx.gw.logout_user(user.id)
        mailed = password_links.mail_delegate_link(ctx.services, ctx.actor, user.id, ctx.adherent, new.email)
        entry.after |= {"link_mailed": mailed.sent}
        record_new_term(ctx.services, ctx.adherent, user.id, new, ctx.actor)
        return mailed


def send_delegate_link(ctx: Context) -> password_links.Mailed:
    """Agent: a new link for the current delegate (the first mail did not go out, or the link expired)."""
    with ctx.audited("delegate.password_link", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        user = delegate_account(ctx.gw, ctx.adherent)
        if not user.email:
            raise RuleViolation("email", Message("La personne déléguée n'a pas d'e-mail : enregistrez-le d'abord.",
                                                 "The delegate has no e-mail: record it first."))
        mailed = password_links.mail_delegate_link(ctx.services, ctx.actor, user.id, ctx.adherent, user.email)
        entry.after = {"mailed": mailed.sent, "expires_at": mailed.expires_at.isoformat()}
        return mailed


def delegate_history(services: Services, actor: Actor, adherent: str) -> list[DelegateTerm]:
    """Who was delegate of the adherent, oldest first."""
    require_adherent(actor, adherent, adherent)
    with services.db.connect() as conn:
        rows = conn.execute(select(history_table).where(history_table.c.adherent == adherent)
                            .order_by(history_table.c.since, history_table.c.id))
        return [DelegateTerm(r.user_id, r.civilite, r.nom, r.prenom, r.email, r.since, r.until, r.ended_by)
                for r in rows]


def suspend_adherent(ctx: Context, reason: str = "") -> int:
    """Agent: status=suspended; every enabled user of the adherent disabled (tagged) and logged out.
    Returns how many accounts were disabled. Re-runnable: a re-run finishes an interrupted suspension."""
    with ctx.audited("adherent.suspend", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        state = adherent_state(ctx.gw, ctx.adherent)
        # The status first: while it says suspended, no delegate action goes through.
        ctx.gw.set_group_attributes(state.group, {"status": [SUSPENDED]})
        count = 0
        for user in adherent_accounts(ctx.gw, ctx.adherent):
            if user.enabled:
                set_enabled(ctx.gw, user.id, False, suspended=True)
                count += 1
            ctx.gw.logout_user(user.id)
        entry.before, entry.after = {"status": state.status}, {"status": SUSPENDED, "disabled": count}
        entry.detail = reason or None
        return count


def reactivate_adherent(ctx: Context) -> int:
    """Agent: status=active; re-enables exactly the accounts the suspension disabled. Returns how many."""
    with ctx.audited("adherent.reactivate", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        state = adherent_state(ctx.gw, ctx.adherent)
        count = 0
        for user in adherent_accounts(ctx.gw, ctx.adherent):
            if user.attr("suspended_by_cimr") == "true":
                set_enabled(ctx.gw, user.id, True, suspended=False)
                count += 1
        ctx.gw.set_group_attributes(state.group, {"status": [ACTIVE]})
        easypaiement.record(ctx.gw, ctx.adherent, ctx.automation)  # its validators are back (or not)
        entry.before, entry.after = {"status": state.status}, {"status": ACTIVE, "enabled": count}
        return count


def completeness(ctx: Context) -> easypaiement.Completeness:
    """The adherent's E@syPaiement completeness (tenant-checked); RuleViolation('adherent') when not approved."""
    require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
    return easypaiement.read(ctx.gw, ctx.adherent)[1]


def set_easypaiement_confirmations(ctx: Context, confirmations: int) -> "easypaiement.Completeness":
    """Delegate (own adherent) or agent: 1 or 2 confirmations. 2 is accepted before the second validator exists
    (the brochure's order); the adherent is then incomplete until it does (returned, shown to the delegate)."""
    with ctx.audited("adherent.easypaiement_confirmations", ctx.adherent) as entry:
        require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
        state = adherent_state(ctx.gw, ctx.adherent)
        require_active(state)
        entry.before, entry.after = {"confirmations": state.confirmations}, {"confirmations": confirmations}
        rules.check_confirmations(confirmations)
        after, attributes = easypaiement.with_confirmations(ctx.gw, state, confirmations)
        entry.after["validators_missing"] = after.missing
        # A delegate's token may not write its adherent group (its status lives there too): our service account
        # does, after the tenant check and the rule above.
        ctx.automation().set_group_attributes(state.group, attributes)
        return after


@dataclass(frozen=True)
class CategoriesChange:
    """What an agent's change of the active categories did: added, retired, and the Télédéclaration users who still
    declare a retired category (their token no longer carries it; their delegate should give them another)."""
    categories: tuple[str, ...]
    added: tuple[str, ...]
    retired: tuple[str, ...]
    flagged: tuple[str, ...]  # logins


def set_categories(ctx: Context, categories: tuple[str, ...]) -> CategoriesChange:
    """Agent: the adherent's active staff categories (cadres, employés, ouvriers...). The Télédéclaration form offers
    exactly them and the `categories` claim is cut to them (our protocol mapper). Retiring one flags its users."""
    categories = tuple(dict.fromkeys(c.strip().lower() for c in categories if c.strip()))
    with ctx.audited("adherent.categories", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        problem = rules.check_categories(categories)
        if problem:
            raise RuleViolation("categories", problem)
        state, members = adherent_members(ctx.gw, ctx.adherent)
        added = tuple(c for c in categories if c not in state.categories)
        retired = tuple(c for c in state.categories if c not in categories)
        entry.before, entry.after = {"categories": list(state.categories)}, {"categories": list(categories)}
        if added or retired:
            ctx.gw.set_group_attributes(state.group, {"categories": list(categories)})
        declaring = tuple(t.client_id for t in ctx.services.catalogue if t.declares)
        flagged = tuple(sorted(m.user.username for m in members if declares_outside(m, categories, declaring)))
        entry.after |= {"flagged": list(flagged)}
        return CategoriesChange(categories, added, retired, flagged)


def declares_outside(member: Member, active: tuple[str, ...], declaring: tuple[str, ...]) -> bool:
    """A user of a declaration service (Télédéclaration) who declares a category its adherent no longer has."""
    return (any(g.split("/")[0] in declaring for g in member.groups if g)
            and any(c not in active for c in member.user.attributes.get("categories") or ()))
