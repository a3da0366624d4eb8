"""Who is acting, and the one tenant check every action passes through (pure: provisioner/context.py applies it
to the accounts Keycloak holds)."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.errors import TenantViolation

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
