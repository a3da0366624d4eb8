"""What the realm should be: frozen dataclasses, read from realm/'s YAML and checked strictly (provisioner/realm/
schema.py) before anything touches Keycloak."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.catalogue import Catalogue, Teleservice
from provisioner.rules import PasswordPolicy

FILES = ("realm.yaml", "clients.yaml", "user-profile.yaml")
# Roles of Keycloak's built-in realm-management client that a service account may be given.
REALM_MANAGEMENT_ROLES = frozenset({
    "view-realm", "view-users", "view-clients", "view-events", "view-identity-providers",
    "view-authorization", "manage-realm", "manage-users", "manage-clients", "manage-events",
    "manage-identity-providers", "manage-authorization", "query-users", "query-groups",
    "query-clients", "query-realms", "create-client", "impersonation", "realm-admin",
})
CLAIMABLE = ("adherent", "user_type", "categories", "teleservice")
# Claims of the adherent rather than of the user (no user-profile attribute): our extension's mapper computes them
# from the adherent's group (provisioner/realm/plan.py). Name -> JSON type of the claim.
ADHERENT_CLAIMS = {"easypaiement_confirmations": "int", "easypaiement_enough_validators": "boolean"}
# Keycloak's built-in clients that realm/ may declare (admin-permissions belongs to fine-grained permissions).
BUILTIN_CLIENT_IDS = ("account", "account-console", "admin-cli", "broker", "realm-management",
                      "security-admin-console")


@dataclass(frozen=True)
class BruteForce:
    enabled: bool
    max_failures: int
    wait_increment_seconds: int
    max_wait_seconds: int
    failure_reset_seconds: int
    permanent_lockout: bool


@dataclass(frozen=True)
class Events:
    login: bool
    admin: bool
    admin_details: bool
    retention_days: int


@dataclass(frozen=True)
class Sessions:
    idle_seconds: int
    max_seconds: int
    access_token_seconds: int
    rotate_refresh_tokens: bool = True  # each refresh token is accepted once


@dataclass(frozen=True)
class LoginPages:
    """Keycloak's login pages: our theme (keycloak-extension/src/main/resources/theme/), the brand band, and where
    "Mot de passe oublié ?" leads (the portal's secret-question reset; Keycloak's e-mail reset stays off)."""
    theme: str
    display_name_html: str
    forgot_password_url: str


@dataclass(frozen=True)
class SecondFactor:
    """Who must use a second factor at every login, the OTP policy, and the levels of authentication (acr) a client
    may ask for (step-up)."""

    # Keycloak's role names as `conditional-user-role` takes them: "delegate" (a realm role) or
    # "easypaiement.validateur" (a client role).
    required_for: tuple[str, ...] = ()
    levels: tuple[tuple[str, int], ...] = (("password", 1), ("2fa", 2))  # acr value -> level
    otp_algorithm: str = "HmacSHA1"
    otp_digits: int = 6
    otp_period: int = 30
    otp_look_around: int = 1

    def roles_for(self, owner: str | None) -> tuple[str, ...]:
        """The required roles of one client (its client roles), of the realm (``owner="realm"``), or all (None)."""
        if owner is None:
            return self.required_for
        if owner == "realm":
            return tuple(r for r in self.required_for if "." not in r)
        return tuple(r for r in self.required_for if r.startswith(owner + "."))

    @property
    def acr_password(self) -> str:
        return self.levels[0][0]

    @property
    def acr_second_factor(self) -> str:
        return self.levels[1][0]


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    # Roles this (realm) role is a composite of: ((client id, (role, ...)), ...). Compared by plan.
    composites: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    kind: str  # "teleservice" | "portal" | "service"
    url: str | None
    secret: str | None
    redirect_paths: tuple[str, ...]
    roles: tuple[Role, ...]
    claims: tuple[str, ...]
    service_account_roles: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def restricts_login(self) -> bool:
        """Teleservices refuse, inside Keycloak, the login of a user holding none of their roles."""
        return self.kind == "teleservice"

    @property
    def has_login_flow(self) -> bool:
        """People log in to it through a browser flow of ours (second factor, step-up): teleservices, the portal."""
        return self.kind in ("teleservice", "portal")


@dataclass(frozen=True)
class BuiltinClient:
    """One of the clients Keycloak creates in every realm: attack surface, so its settings are declared too."""

    client_id: str
    enabled: bool


@dataclass(frozen=True)
class Attribute:
    name: str
    display: str
    admin_only: bool
    multivalued: bool
    values: tuple[str, ...]
    pattern: str | None
    max_length: int | None


@dataclass(frozen=True)
class GroupSpec:
    name: str
    realm_roles: tuple[str, ...]


@dataclass(frozen=True)
class RealmSpec:
    name: str
    display_name: str
    locales: tuple[str, ...]
    default_locale: str
    password_policy: PasswordPolicy
    brute_force: BruteForce
    events: Events
    sessions: Sessions
    realm_roles: tuple[Role, ...]
    groups: tuple[GroupSpec, ...]
    clients: tuple[Client, ...]
    attributes: tuple[Attribute, ...]
    builtin_clients: tuple[BuiltinClient, ...] = ()
    second_factor: SecondFactor = SecondFactor()
    login_pages: LoginPages | None = None  # None: Keycloak's own pages, untouched

    @property
    def teleservices(self) -> tuple[Client, ...]:
        return tuple(c for c in self.clients if c.kind == "teleservice")

    def catalogue(self) -> Catalogue:
        """The teleservices and their powers (provisioner/catalogue.py): what every other part reads of realm/."""
        strong = self.second_factor.required_for
        return Catalogue(tuple(Teleservice(c.client_id, c.name, tuple(r.name for r in c.roles),
                                           tuple((r.name, r.description) for r in c.roles), c.claims,
                                           tuple(r.name for r in c.roles if f"{c.client_id}.{r.name}" in strong), c.url)
                               for c in self.teleservices))

    def client(self, client_id: str) -> Client:
        return next(c for c in self.clients if c.client_id == client_id)
