"""The agent's actions on an adherent (signed letters) and the adherent's settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner.subscriptions import DelegateForm
from provisioner.tenancy import Actor


@dataclass(frozen=True)
class Adherent:
    numero: str
    raison_sociale: str
    status: str                       # active / suspended
    easypaiement_confirmations: int   # 1 / 2
    categories: tuple[str, ...]
    delegate_login: str               # = numero
    delegate_email: str | None
    delegate_enabled: bool


@dataclass(frozen=True)
class DelegateTerm:
    """One row of the delegate history: who was delegate of the adherent, from when to when."""

    user_id: str
    civilite: str | None
    nom: str | None
    prenom: str | None
    email: str | None
    since: datetime
    until: datetime | None
    ended_by: str | None


def get_adherent(gw: Gateway, services: Services, actor: Actor, numero: str) -> Adherent:
    """The adherent as Keycloak holds it (tenant-checked); NotFound when not approved yet."""
    raise NotImplementedError


def reset_delegate_password(gw: Gateway, services: Services, actor: Actor, numero: str, password: str,
                            password_confirm: str) -> None:
    """Agent, on a signed letter: set a temporary delegate password (changed at next login), end sessions."""
    raise NotImplementedError


def change_delegate_email(gw: Gateway, services: Services, actor: Actor, numero: str, email: str) -> None:
    """Agent, on a signed letter: change the delegate's e-mail (notice sent to the old and new address)."""
    raise NotImplementedError


def replace_delegate(gw: Gateway, services: Services, actor: Actor, numero: str, new: DelegateForm) -> None:
    """Agent, réabonnement: the delegate account (username = numero) gets the new person; the previous one's
    password, sessions and OTP stop working; the history keeps who was delegate when."""
    raise NotImplementedError


def delegate_history(services: Services, actor: Actor, numero: str) -> list[DelegateTerm]:
    """Who was delegate of the adherent, oldest first."""
    raise NotImplementedError


def suspend_adherent(gw: Gateway, services: Services, actor: Actor, numero: str, reason: str = "") -> int:
    """Agent: status=suspended; every enabled user of the adherent disabled (tagged) and logged out.
    Returns how many accounts were disabled."""
    raise NotImplementedError


def reactivate_adherent(gw: Gateway, services: Services, actor: Actor, numero: str) -> int:
    """Agent: status=active; re-enables exactly the accounts the suspension disabled. Returns how many."""
    raise NotImplementedError


def set_easypaiement_confirmations(gw: Gateway, services: Services, actor: Actor, numero: str,
                                   confirmations: int) -> None:
    """Delegate (own adherent) or agent: 1 or 2 confirmations; 2 is refused with fewer than two validators."""
    raise NotImplementedError
