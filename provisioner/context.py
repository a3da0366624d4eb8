"""One request to the provisioner: who acts, through which Keycloak connection, with which services, for which
adherent. Every action takes one; the portal and the CLI make it, once per request or command.

The connection is the person's own where it can be: in the portal a delegate acts with its own token (Keycloak's
fine-grained permissions confine it to its adherent, beneath our tenant check); the CLI acts as the provisioner's
service account. The one write our rules allow a delegate but Keycloak cannot confine goes through ``automation``:
the decision to escalate is taken here, not by the pages or the actions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from provisioner.core import Services
from provisioner.errors import Forbidden, NotFound, TenantViolation
from provisioner.gateway import Gateway, User
from provisioner.tenancy import AGENT, AUDITOR, DELEGATE, Actor, require_adherent
from provisioner.trail import Entry, audited


@dataclass(frozen=True)
class Context:
    gw: Gateway
    services: Services
    actor: Actor
    adherent: str | None = None   # the adherent acted on: the delegate's own, the one an agent chose, or none

    def on(self, adherent: str) -> Context:
        """The same request, acting on ``adherent``."""
        return replace(self, adherent=adherent)

    def audited(self, action: str, target: str | None, read: bool = False) -> AbstractContextManager[Entry]:
        """The trail's record of this action by the request's person on its adherent (provisioner/trail.py)."""
        return audited(self.services.db, self.actor, action, self.adherent, target, read)

    def automation(self) -> Gateway:
        """The provisioner's service account, for the adherent group's own attributes (E@syPaiement
        confirmations): a delegate's token may not write its group, whose attributes also hold CIMR's status and
        categories, and the Groups `manage` scope that would allow it would also let it rename or delete the group.
        Only after our tenant check and rules; the trail still names the person. Without a service account
        configured (tests of the CLI acting as admin), the request's own gateway."""
        return self.services.automation_gateway(self.gw)

    def user(self, login: str) -> User:
        """The teleservice user ``login`` of the request's adherent, after the tenant check; NotFound or
        TenantViolation."""
        return user_of(self.gw, self.actor, self.adherent, login)


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
