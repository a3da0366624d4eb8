"""Who is acting, and the one tenant check every action passes through."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.errors import Forbidden, NotFound, TenantViolation
from provisioner.gateway import Gateway, User

AGENT, DELEGATE, AUDITOR = "agent", "delegate", "auditor"


@dataclass(frozen=True)
class Actor:
    """The person behind an action: a CIMR agent, or the delegate of one adherent."""

    username: str
    role: str                      # agent / delegate / auditor
    adherent: str | None = None    # the delegate's own adherent

    @classmethod
    def agent(cls, username: str) -> "Actor":
        return cls(username, AGENT)

    @classmethod
    def delegate(cls, adherent: str) -> "Actor":
        return cls(adherent, DELEGATE, adherent)


def resolve_actor(gw: Gateway, username: str) -> Actor:
    """The Actor for a realm username, from its realm roles (agent, auditor) or delegate group; NotFound/Forbidden."""
    user = gw.user_by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r} in realm {gw.realm}")
    if not user.enabled:
        raise Forbidden(f"user {username!r} is disabled")
    roles = gw.effective_realm_roles(user.id)
    if AGENT in roles:
        return Actor(user.username, AGENT)
    if AUDITOR in roles:
        return Actor(user.username, AUDITOR)
    if DELEGATE in roles and user.attr("adherent"):
        return Actor(user.username, DELEGATE, user.attr("adherent"))
    raise Forbidden(f"user {username!r} is neither a CIMR agent nor a delegate")


def require_agent(actor: Actor, adherent: str | None, target: str) -> None:
    """Agent-only actions (subscriptions, signed letters); raises TenantViolation otherwise."""
    if actor.role != AGENT:
        raise TenantViolation(actor.username, adherent, target)


def require_adherent(actor: Actor, adherent: str, target: str) -> None:
    """A delegate acts only inside their own adherent; an agent may act for any adherent."""
    if actor.role == AGENT:
        return
    if actor.role == DELEGATE and actor.adherent == adherent:
        return
    raise TenantViolation(actor.username, adherent, target)


def user_of(gw: Gateway, actor: Actor, adherent: str, login: str) -> User:
    """The teleservice user `login` of `adherent`, after the tenant check; NotFound or TenantViolation."""
    require_adherent(actor, adherent, login)
    user = gw.user_by_username(login)
    if user is None:
        raise NotFound(f"no user {login!r}")
    if user.attr("adherent") != adherent or not user.attr("teleservice"):
        # Another adherent's user (or a delegate/agent account): same refusal as a foreign adherent.
        raise TenantViolation(actor.username, adherent, login)
    return user
