"""The delegate's actions on their own adherent's teleservice users (an agent may do them too)."""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.tenancy import Actor


@dataclass(frozen=True)
class UserDetails:
    nom: str
    prenom: str
    email: str
    civilite: str = ""
    fonction: str = ""
    telephone: str = ""


@dataclass(frozen=True)
class NewUser:
    """The delegate's form to create a teleservice user."""

    login: str
    details: UserDetails
    access: Access
    password: str = field(repr=False)
    password_confirm: str | None = field(repr=False, default=None)  # None: not asked (bulk import)
    secret_answers: tuple[SecretAnswer, ...] = ()


@dataclass(frozen=True)
class TeleserviceUser:
    id: str
    login: str
    adherent: str
    enabled: bool
    details: UserDetails
    access: Access
    locked: bool = False


def create_user(gw: Gateway, services: Services, actor: Actor, adherent: str, new: NewUser) -> TeleserviceUser:
    """One POST: user with groups, attributes and (temporary) password; then the hashed secret answers
    (undone in Keycloak if they cannot be stored). Raises ValidationError, RuleViolation, TenantViolation."""
    raise NotImplementedError


def list_users(gw: Gateway, services: Services, actor: Actor, adherent: str,
               teleservice: str | None = None) -> dict[str, list[TeleserviceUser]]:
    """The adherent's users grouped by teleservice (every teleservice listed, maybe empty)."""
    raise NotImplementedError


def get_user(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str) -> TeleserviceUser:
    raise NotImplementedError


def find_logins(gw: Gateway, services: Services, actor: Actor, adherent: str, query: str) -> list[TeleserviceUser]:
    """'Show a user's login': the adherent's users whose name, e-mail or login contains query."""
    raise NotImplementedError


def set_password(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str, password: str,
                 password_confirm: str | None = None) -> None:
    """A temporary password: the user must change it at next login. Policy checked first."""
    raise NotImplementedError


def change_access(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str,
                  access: Access) -> TeleserviceUser:
    """New powers / type / provider / categories, same teleservice only (one login, one teleservice)."""
    raise NotImplementedError


def update_details(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str,
                   details: UserDetails) -> TeleserviceUser:
    raise NotImplementedError


def set_secret_questions(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str,
                         answers: tuple[SecretAnswer, ...]) -> None:
    raise NotImplementedError


def disable_user(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str) -> None:
    """A departing user: disabled and logged out at once (a needed validator is refused)."""
    raise NotImplementedError


def enable_user(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str) -> None:
    raise NotImplementedError


def unlock_user(gw: Gateway, services: Services, actor: Actor, adherent: str, login: str) -> bool:
    """Clear a brute-force lockout; returns whether the user was locked."""
    raise NotImplementedError
