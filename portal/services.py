"""What the portal's views share: the provisioner's Services, the gateway for the person acting, the Actor.

Built lazily and rebuilt after Keycloak was unreachable, so the portal recovers without a restart.
"""

from __future__ import annotations

import threading

from flask import Flask, abort, current_app, g, request
from sqlalchemy.engine import Engine

from provisioner import core
from provisioner.context import Context
from provisioner.gateway import Gateway
from provisioner.settings import Settings
from provisioner.tenancy import AGENT, AUDITOR, DELEGATE, Actor


class PortalServices:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._gateway: Gateway | None = None
        self._auditor_gateway: Gateway | None = None
        self._core: core.Services | None = None

    @property
    def core(self) -> core.Services:
        """The provisioner's Services (database, mailer, password policy), opened on first use."""
        if self._core is None:
            with self._lock:
                if self._core is None:
                    self._core = core.Services.from_settings(self.settings)
        return self._core

    @property
    def engine(self) -> Engine:
        return self.core.db.engine

    def service_gateway(self) -> Gateway:
        """The provisioner's service account (CIMR agents' actions, public forms); audited per person."""
        if self._gateway is None:
            with self._lock:
                if self._gateway is None:
                    self._gateway = Gateway.as_service_account(self.settings)
        return self._gateway

    def auditor_gateway(self) -> Gateway:
        """The realm's read-only `auditor` account (the security report), kept like the service account's: a report
        does not open a new connection and fetch a new token each time."""
        if self._auditor_gateway is None:
            with self._lock:
                if self._auditor_gateway is None:
                    self._auditor_gateway = Gateway.as_auditor(self.settings)
        return self._auditor_gateway

    def forget_gateway(self) -> None:
        """Drop the gateways (after Keycloak was unreachable) so the next request builds fresh ones."""
        self._gateway = self._auditor_gateway = None


def init_app(app: Flask) -> None:
    app.extensions["cimr"] = PortalServices(app.config["SETTINGS"])


def services() -> PortalServices:
    return current_app.extensions["cimr"]


def core_services() -> core.Services:
    return services().core


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def teleservice_names() -> dict[str, str]:
    """Each teleservice's name by its client id (realm/'s): pages say « E@syPaiement », never `easypaiement`."""
    return {t.client_id: t.name for t in core_services().catalogue}


def actor() -> Actor:
    """The logged-in person as the provisioner sees them (the role of the space being used)."""
    user = g.get("user")
    if not user:
        abort(401)
    space = g.get("space")  # delegate / agent / auditor: set by the blueprint's guard
    if space == DELEGATE and DELEGATE in user["roles"] and user.get("adherent"):
        return Actor.delegate(user["adherent"])
    if space in (AGENT, AUDITOR) and space in user["roles"]:
        return Actor(user["username"], space)
    abort(403)


def gateway() -> Gateway:
    """A delegate acts with their own token (Keycloak's fine-grained permissions confine it to their adherent,
    on top of the provisioner's tenant check); agents and public forms use the service account. One gateway per
    request: a page view (GET, which writes nothing) makes each Keycloak read once, whichever parts of the page ask."""
    if g.get("space") == "delegate" and current_app.config["DELEGATE_OWN_TOKEN"]:
        if "delegate_gateway" not in g:
            g.delegate_gateway = _delegate_gateway()
        return g.delegate_gateway
    return services().service_gateway()


def _delegate_gateway() -> Gateway:
    from portal.auth import access_token
    gw = Gateway.with_token(settings(), access_token())
    if request.method in ("GET", "HEAD"):
        gw.remember_reads()
    return gw


def context(adherent: str | None = None) -> Context:
    """The request as the provisioner's actions take it (provisioner/context.py): the person, their gateway, our
    services, and the adherent acted on — a delegate's own, from its login, never from the request; the one an
    agent's page names."""
    who = actor()
    return Context(gateway(), core_services(), who, who.adherent if who.role == DELEGATE else adherent)
