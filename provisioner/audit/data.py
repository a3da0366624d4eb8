"""What the audit reads, as ``provisioner.audit.collect.collect`` fills it: the accounts with their memberships and
roles, the adherents, admin events, the live realm's security settings, and the rest ``build_report`` judges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from provisioner.audit.advisories import Register, SecurityFacts
from provisioner.trail import TrailEntry
from provisioner.tree import ACTIVE


@dataclass(frozen=True)
class Account:
    """A Keycloak user as the audit sees it: memberships (group paths) and direct role mappings."""

    id: str
    username: str
    enabled: bool
    created: datetime | None = None
    adherent: str | None = None          # the `adherent` attribute
    teleservice: str | None = None       # the `teleservice` attribute
    service_account: str | None = None   # client id when this is a client's service account
    groups: tuple[str, ...] = ()         # paths of the role-carrying groups (and their subgroups) it is in
    direct_roles: tuple[str, ...] = ()   # "client:role" or "realm:role" mapped to the user itself
    categories: tuple[str, ...] = ()     # Télédéclaration: the staff categories the user declares
    credential_types: tuple[str, ...] | None = None  # password, otp, webauthn...; None: not read


@dataclass(frozen=True)
class AdherentInfo:
    numero: str
    raison_sociale: str = ""
    status: str = ACTIVE
    confirmations: int = 1
    categories: tuple[str, ...] = ()     # the adherent's active staff categories
    # Since when it has had 2 confirmations without two enabled validators, as the provisioner recorded it (group
    # attribute easypaiement_incomplete_since); None: not recorded.
    incomplete_since: datetime | None = None
    terminated_at: datetime | None = None  # résiliation (provisioner/termination.py): group attribute terminated_at


@dataclass(frozen=True)
class AdminEvent:
    at: datetime
    actor: str            # who held the token: a username of the realm, or "master/admin" for another realm's
                          # user (a service account hides the person: see the trail)
    operation: str        # CREATE / UPDATE / DELETE / ACTION
    resource_type: str
    resource_path: str
    target: str | None = None  # username when the resource is a user


def service_account_username(client_id: str) -> str:
    """The username Keycloak gives a client's service account."""
    return f"service-account-{client_id}".lower()


@dataclass(frozen=True)
class ServiceAccounts:
    """The usernames of our service accounts in the realm (Keycloak's ``service-account-<client id>``)."""

    # agents, public forms, automation (and delegates via CLI)
    provisioner: str = service_account_username("provisioner")
    # writes the adherents' permissions (approval, repair)
    delegations: str = service_account_username("delegations")


@dataclass(frozen=True)
class Mapper:
    """A protocol mapper: what it puts in tokens (``claim.name``) and which provider computes it."""

    name: str
    provider: str                # protocolMapper, e.g. oidc-usermodel-attribute-mapper
    claim: str | None = None     # config "claim.name"


@dataclass(frozen=True)
class ClientConfig:
    """A client's security-relevant settings, as the Admin API's client representation gives them."""

    client_id: str
    enabled: bool = True
    public: bool = False
    standard_flow: bool = True
    implicit_flow: bool = False
    direct_grants: bool = False
    pkce: str | None = None                      # attribute pkce.code.challenge.method
    redirect_uris: tuple[str, ...] = ()
    default_scopes: tuple[str, ...] = ()         # client scopes, by name
    optional_scopes: tuple[str, ...] = ()
    mappers: tuple[Mapper, ...] = ()             # the client's own protocol mappers


@dataclass(frozen=True)
class RealmConfig:
    """The live realm's settings the absolute security rules judge (config_findings); defaults are secure."""

    brute_force_protected: bool = True
    events_enabled: bool = True
    admin_events_enabled: bool = True
    revoke_refresh_token: bool = True
    refresh_token_max_reuse: int = 0
    clients: tuple[ClientConfig, ...] = ()
    scope_mappers: Mapping[str, tuple[Mapper, ...]] = field(default_factory=dict)  # client scope -> its mappers
    delegate_roles: tuple[str, ...] = ()   # realm-management roles the realm role `delegate` grants, composites
                                           # expanded
    our_clients: tuple[str, ...] = ()      # the client ids realm/ declares (realm/clients.yaml)


@dataclass(frozen=True)
class ReviewProgress:
    """An open access review campaign: its deadline and, over every adherent in it, how many users were reviewed."""
    campaign_id: int
    name: str
    deadline: datetime
    users: int
    reviewed: int
    adherents_pending: tuple[str, ...]  # adherents with users still to review

    @property
    def percent(self) -> int:
        return 100 * self.reviewed // self.users if self.users else 100


@dataclass(frozen=True)
class AuditData:
    realm: str
    collected_at: datetime
    accounts: tuple[Account, ...]
    adherents: tuple[AdherentInfo, ...]
    group_roles: Mapping[str, tuple[str, ...]]  # group path -> roles it carries ("client:role" / "realm:role")
    teleservices: tuple[str, ...]               # client ids of the teleservices (realm/'s catalogue)
    last_logins: Mapping[str, datetime] = field(default_factory=dict)  # user id -> last LOGIN event
    login_retention_days: int | None = None
    secret_question_users: frozenset[str] = frozenset()
    trail: tuple[TrailEntry, ...] = ()
    declaration_services: tuple[str, ...] = ("teledeclaration",)  # their users declare staff categories
    admin_events: tuple[AdminEvent, ...] = ()
    drift: tuple[str, ...] | None = None  # None: could not be computed (see drift_note)
    delegations: tuple[tuple[str, str | None, str, str], ...] = ()  # permissions.audit_problems()
    drift_note: str = ""
    config: RealmConfig | None = None      # None: not read (see notes); no configuration finding then
    service_accounts: ServiceAccounts = ServiceAccounts()
    activity_since: datetime | None = None  # older trail entries are read only for "created by"
    notes: tuple[str, ...] = ()            # caveats of the collection, shown in the report
    reads: int = 0                        # Keycloak requests the collector made
    # Roles whose holders must use a second factor, as the report names roles ("realm:delegate",
    # "easypaiement:validateur"): realm/realm.yaml `second_factor.required_for`.
    second_factor_roles: tuple[str, ...] = ()
    # Open access review campaigns (provisioner/reviews.py), each with its completion.
    reviews: tuple[ReviewProgress, ...] = ()
    # What Keycloak's published advisories need, read from the live realm, and the register they are judged by
    # (provisioner/audit/advisories.py); None: not read (see notes).
    security: SecurityFacts | None = None
    register: Register | None = None
