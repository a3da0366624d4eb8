"""The security team's audit: who holds what, findings with a severity, admin activity (pure).

``provisioner.audit.collect.collect`` reads everything in bulk (read-only ``auditor`` account, our
database) into an ``AuditData``; ``build_report`` turns it into a ``Report`` without any I/O; the
``render_*`` functions turn a report into a table, CSV, JSON or a self-contained HTML page.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from provisioner.audit.advisories import Register, SecurityFacts, exposures
from provisioner.errors import Message
from provisioner.rules import EASYPAIEMENT, VALIDATEUR
from provisioner.trail import TrailEntry

SEVERITIES = ("info", "low", "medium", "high", "critical")
ADHERENTS, DELEGATES = "adherents", "delegates"
AGENT_ROLE, DELEGATE_ROLE = "agent", "delegate"
STAFF_ROLES = (AGENT_ROLE, "auditor")
CREATION_ACTIONS = ("user.create", "subscription.submit", "staff.create.")
# A trail entry and the Keycloak admin events it caused: the entry is written when the action ends.
JOIN_WINDOW = timedelta(seconds=120)
# Token claims the teleservices trust to pick the company's data, and the only mapper that may put them in tokens:
# ours (keycloak-extension/, MembershipClaimMapper), which derives them from group membership. Any other mapper
# reads user attributes, which a delegate can rewrite through the Admin API (Keycloak #40259).
MEMBERSHIP_CLAIMS = ("adherent", "categories", "easypaiement_confirmations", "easypaiement_enough_validators")
MEMBERSHIP_MAPPER = "cimr-membership-mapper"
OFFLINE_ACCESS = "offline_access"
SECOND_FACTOR_TYPES = frozenset({"otp", "webauthn", "webauthn-passwordless"})

# kind -> (severity, title)
KINDS: dict[str, tuple[str, Message]] = {
    "two-teleservices": ("high", Message("Un même identifiant détient les rôles de plusieurs téléservices",
                                         "One login holds roles of several teleservices")),
    "direct-role": ("high", Message("Rôle attribué directement à l'utilisateur (hors groupes de l'adhérent)",
                                    "Role mapped directly to the user (not through the adherent's groups)")),
    "validators-missing": ("high", Message("Deux confirmations E@syPaiement mais moins de deux validateurs actifs, "
                                           "depuis trop longtemps",
                                           "Two E@syPaiement confirmations but fewer than two enabled validators, "
                                           "for too long")),
    "suspended-enabled": ("high", Message("Adhérent suspendu avec des comptes encore actifs",
                                          "Suspended adherent with enabled accounts")),
    "foreign-adherent": ("high", Message("Pouvoirs dans un autre adhérent que le sien",
                                         "Powers in an adherent other than the user's own")),
    "outside-adherent": ("medium", Message("Utilisateur rattaché à aucun adhérent",
                                           "User outside any adherent")),
    "no-delegate": ("medium", Message("Adhérent sans personne déléguée active",
                                      "Adherent without an enabled delegate")),
    "categories-uncovered": ("medium", Message("Catégories actives que ne déclare aucun utilisateur Télédéclaration",
                                               "Active categories declared by no Télédéclaration user")),
    # issue 6: Keycloak's per-adherent fine-grained admin permissions (provisioner/permissions.py)
    "delegation-missing": ("high", Message("Adhérent sans sa permission Keycloak (la personne déléguée est bloquée)",
                                           "Adherent without its Keycloak permission (its delegate is blocked)")),
    "delegation-drifted": ("high", Message("La permission Keycloak de l'adhérent ne couvre pas exactement ses groupes",
                                           "The adherent's Keycloak permission does not cover exactly its groups")),
    "permission-foreign": ("high", Message("Permission d'administration fine étrangère aux adhérents",
                                           "Fine-grained admin permission that belongs to no adherent")),
    "permission-type-wide": ("critical", Message("Permission d'administration fine sur tous les utilisateurs ou groupes",
                                                 "Fine-grained admin permission over every user or group")),
    "realm-drift": ("medium", Message("La configuration du realm diffère de realm/",
                                      "The realm's configuration differs from realm/")),
    # The live realm's configuration against absolute security rules (independent of realm/): config_findings.
    "claim-forgeable": ("critical", Message("Revendication d'adhérent (adherent, categories, confirmations "
                                            "E@syPaiement) tirée d'un attribut que la personne déléguée peut réécrire",
                                            "Adherent claim (adherent, categories, E@syPaiement confirmations) taken "
                                            "from an attribute the delegate can rewrite")),
    "delegate-role-bypass": ("critical", Message("Le rôle delegate accorde un rôle d'administration qui contourne "
                                                 "les permissions fines",
                                                 "The delegate role grants an administration role that bypasses "
                                                 "fine-grained permissions")),
    "direct-grant-public": ("high", Message("Connexion directe par mot de passe (direct grant) sur un client public "
                                            "ou un téléservice",
                                            "Direct access grants (password grant) on a public client or a "
                                            "teleservice")),
    "wildcard-redirect": ("high", Message("URI de redirection avec joker, ou flux implicite activé",
                                          "Wildcard redirect URI, or implicit flow enabled")),
    "brute-force-off": ("high", Message("Protection contre la force brute désactivée",
                                        "Brute-force protection disabled")),
    "events-off": ("high", Message("Journalisation des événements Keycloak désactivée",
                                   "Keycloak event logging disabled")),
    "public-client-no-pkce": ("medium", Message("Client public sans PKCE S256",
                                                "Public client without PKCE S256")),
    "refresh-token-reuse": ("medium", Message("Jetons de rafraîchissement réutilisables (pas de rotation)",
                                              "Reusable refresh tokens (no rotation)")),
    "offline-access-teleservice": ("medium", Message("Accès hors ligne (offline_access) offert à un téléservice",
                                                     "Offline access (offline_access) offered to a teleservice")),
    "second-factor-missing": ("high", Message("Compte à pouvoirs sans second facteur enregistré (personne déléguée, "
                                              "agent, auditeur ou validateur)",
                                              "Powerful account without an enrolled second factor (delegate, "
                                              "agent, auditor or validator)")),
    "inactive": ("low", Message("Aucune connexion depuis longtemps", "No login for a long time")),
    "dormant-soon": ("info", Message("Sera désactivé comme dormant sous peu (provisioner dormant)",
                                     "About to be disabled as dormant (provisioner dormant)")),
    "dormant-overdue": ("medium", Message("Dormant mais toujours actif : la désactivation planifiée n'a pas eu lieu",
                                          "Dormant yet enabled: the scheduled disabling did not run")),
    "review-open": ("info", Message("Revue des accès en cours", "Access review in progress")),
    "review-overdue": ("medium", Message("Revue des accès échue et non clôturée (provisioner review close)",
                                         "Access review past its deadline and not closed (provisioner review close)")),
    "adherent-terminated": ("info", Message("Adhérent en cours de résiliation", "Member being terminated")),
    "purge-overdue": ("medium", Message("Adhérent résilié dont la purge est en retard",
                                        "Terminated member whose purge is overdue")),
    "no-secret-questions": ("low", Message("Questions secrètes non renseignées", "No secret questions")),
    # Keycloak's published advisories (realm/advisories.yaml): the severity is the advisory's own.
    "keycloak-advisory": ("high", Message("Keycloak en service est touché par une faille publiée que notre "
                                          "configuration ne neutralise pas",
                                          "The running Keycloak is affected by a published advisory our "
                                          "configuration does not mitigate")),
    "keycloak-advisory-mitigated": ("info", Message("Faille publiée de cette version de Keycloak, neutralisée par "
                                                    "notre configuration",
                                                    "Published advisory of this Keycloak version, mitigated by our "
                                                    "configuration")),
    "admin-group-delegated": ("critical", Message("Groupe géré par une personne déléguée qui confère un rôle "
                                                  "d'administration du realm",
                                                  "Group a delegate manages that confers a realm administration "
                                                  "role")),
}


def severity_rank(severity: str) -> int:
    """Position of a severity in SEVERITIES; ValueError names the allowed ones."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
    return SEVERITIES.index(severity)


# --- input: what the collector read --------------------------------------------------------------

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
    status: str = "active"
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


@dataclass(frozen=True)
class ServiceAccounts:
    """The usernames of our service accounts in the realm (Keycloak's ``service-account-<client id>``)."""

    provisioner: str = "service-account-provisioner"   # agents, public forms, automation (and delegates via CLI)
    delegations: str = "service-account-delegations"   # writes the adherents' permissions (approval, repair)


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


# --- output ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Holding:
    adherent: str
    raison_sociale: str
    adherent_status: str
    teleservice: str
    role: str
    username: str
    enabled: bool
    last_login: datetime | None
    created: datetime | None
    created_by: str | None


@dataclass(frozen=True)
class Finding:
    severity: str
    kind: str
    subject: str
    adherent: str | None
    detail: str
    # The detail in French and English, when the rule says it so itself (the others: provisioner/audit/words.py).
    said: Message | None = field(default=None, compare=False, repr=False)

    @property
    def title(self) -> Message:
        return KINDS[self.kind][1]


@dataclass(frozen=True)
class Report:
    realm: str
    generated_at: datetime
    inactive_days: int
    holdings: tuple[Holding, ...]
    findings: tuple[Finding, ...]
    activity: tuple[TrailEntry, ...]
    drift_note: str
    notes: tuple[str, ...]
    counts: Mapping[str, int]

    def at_or_above(self, severity: str) -> tuple[Finding, ...]:
        """Findings of this severity or worse."""
        rank = severity_rank(severity)
        return tuple(f for f in self.findings if severity_rank(f.severity) >= rank)

    def to_json(self) -> dict:
        def plain(obj: Any) -> Any:
            return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(obj).items()}
        return {"realm": self.realm, "generated_at": self.generated_at.isoformat(),
                "inactive_days": self.inactive_days, "counts": dict(self.counts), "notes": list(self.notes),
                "drift": self.drift_note,
                "findings": [{**{k: v for k, v in plain(f).items() if k != "said"}, "title": f.title.en,
                              "title_fr": f.title.fr} for f in self.findings],
                "holdings": [plain(h) for h in self.holdings],
                "activity": [{k: v for k, v in plain(a).items() if k in SECTIONS["activity"]} for a in self.activity]}


# --- the rules -------------------------------------------------------------------------------------

def _adherent_of_path(path: str) -> str | None:
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] in (ADHERENTS, DELEGATES) else None


class _View:
    """Derived facts about each account (effective roles, kind), computed once."""

    def __init__(self, data: AuditData):
        self.data = data
        self.roles: dict[str, set[str]] = {}
        self.tele: dict[str, dict[str, set[tuple[str, str]]]] = {}  # id -> client -> {(adherent, role)}
        for a in data.accounts:
            roles = set(a.direct_roles)
            tele: dict[str, set[tuple[str, str]]] = {}
            for path in a.groups:
                for role in data.group_roles.get(path, ()):
                    roles.add(role)
                    client, _, name = role.partition(":")
                    if client in data.teleservices:
                        tele.setdefault(client, set()).add((_adherent_of_path(path) or a.adherent or "", name))
            for role in a.direct_roles:
                client, _, name = role.partition(":")
                if client in data.teleservices:
                    tele.setdefault(client, set()).add((a.adherent or "", name))
            self.roles[a.id], self.tele[a.id] = roles, tele

    def is_staff(self, a: Account) -> bool:
        return any(f"realm:{r}" in self.roles[a.id] for r in STAFF_ROLES)

    def delegate_of(self, a: Account) -> str | None:
        return next((_adherent_of_path(p) for p in a.groups if p.startswith(f"/{DELEGATES}/")), None)

    def kind(self, a: Account) -> str:
        if a.service_account:
            return "service-account"
        if self.is_staff(a):
            return "staff"
        if self.delegate_of(a) or "realm:delegate" in self.roles[a.id]:
            return "delegate"
        if a.adherent and a.username == a.adherent and not a.teleservice:
            return "delegate"  # a delegate account awaiting approval (not yet in /delegates/<n>)
        return "user"

    def adherents_of(self, a: Account) -> set[str]:
        found = {_adherent_of_path(p) for p in a.groups} - {None}
        return found | ({a.adherent} if a.adherent else set())


def _finding(kind: str, subject: str, adherent: str | None, detail: str) -> Finding:
    return Finding(KINDS[kind][0], kind, subject, adherent, detail)


DORMANT_NOTICE_DAYS = 14  # "about to be disabled": within this many days of the dormant threshold


def _lifecycle(data: AuditData, view: _View, now: datetime, dormant_days: int, grace_days: int) -> list[Finding]:
    """Where accounts and adherents stand in their lifecycle: teleservice users the dormant rule is about to disable
    (or should have), open access reviews and their completion, adherents being terminated (and purges overdue)."""
    out: list[Finding] = []
    for a in data.accounts:
        if not (a.enabled and view.kind(a) == "user"):
            continue
        since = data.last_logins.get(a.id) or a.created
        if since is None:
            continue
        due = since + timedelta(days=dormant_days)
        if due <= now:
            out.append(_finding("dormant-overdue", a.username, a.adherent,
                                f"no login since {since:%Y-%m-%d}; dormant since {due:%Y-%m-%d} ({dormant_days} days)"))
        elif due - now <= timedelta(days=DORMANT_NOTICE_DAYS):
            out.append(_finding("dormant-soon", a.username, a.adherent,
                                f"no login since {since:%Y-%m-%d}; disabled from {due:%Y-%m-%d} unless it logs in"))
    for r in data.reviews:
        pending = r.adherents_pending
        more = f" (+{len(pending) - 10} more)" if len(pending) > 10 else ""
        out.append(_finding("review-overdue" if r.deadline <= now else "review-open", f"review {r.campaign_id}", None,
                            f"'{r.name}', deadline {r.deadline:%Y-%m-%d}: {r.reviewed}/{r.users} users reviewed "
                            f"({r.percent}%); adherents with users to review: "
                            f"{', '.join(pending[:10]) or 'none'}{more}"))
    for ad in data.adherents:
        if ad.status != "terminated" or ad.terminated_at is None:
            continue
        purge = ad.terminated_at + timedelta(days=grace_days)
        kind = "purge-overdue" if purge <= now else "adherent-terminated"
        out.append(_finding(kind, ad.numero, ad.numero, f"terminated {ad.terminated_at:%Y-%m-%d}; reversible until, "
                                                        f"then purged from, {purge:%Y-%m-%d}"))
    return out


def find_issues(data: AuditData, view: _View, inactive_days: int, now: datetime,
                incomplete_days: int = 7, dormant_days: int = 180, grace_days: int = 30) -> list[Finding]:
    """Every finding, each rule applied to the whole realm's data."""
    out: list[Finding] = _lifecycle(data, view, now, dormant_days, grace_days)
    dormant = {f.subject for f in out if f.kind in ("dormant-soon", "dormant-overdue")}  # said better than inactive
    adherents = {ad.numero: ad for ad in data.adherents}
    for a in data.accounts:
        kind = view.kind(a)
        if kind == "service-account":
            continue
        tele = view.tele[a.id]
        if len(tele) >= 2:
            held = ", ".join(f"{c}:{r}" for c in sorted(tele) for _, r in sorted(tele[c]))
            out.append(_finding("two-teleservices", a.username, a.adherent, f"holds {held}"))
        for role in sorted(a.direct_roles):
            out.append(_finding("direct-role", a.username, a.adherent, f"{role} mapped to the user directly"))
        foreign = sorted({ad for roles in tele.values() for ad, _ in roles} - {a.adherent, ""})
        if kind == "user" and a.adherent and foreign:
            out.append(_finding("foreign-adherent", a.username, a.adherent,
                                f"adherent {a.adherent} but powers in {', '.join(foreign)}"))
        in_adherent = any(p.startswith(f"/{ADHERENTS}/") for p in a.groups)
        if kind == "user" and not in_adherent:
            out.append(_finding("outside-adherent", a.username, a.adherent,
                                f"in no adherent's group (adherent attribute: {a.adherent or 'none'})"))
        if a.enabled and kind in ("user", "delegate", "staff") and a.username not in dormant:
            last = data.last_logins.get(a.id)
            since = last or a.created
            if since is not None and now - since > timedelta(days=inactive_days):
                what = f"last login {last:%Y-%m-%d}" if last else f"never logged in (created {a.created:%Y-%m-%d})"
                out.append(_finding("inactive", a.username, a.adherent, f"{what}; threshold {inactive_days} days"))
        if kind == "user" and a.enabled and tele and a.id not in data.secret_question_users:
            out.append(_finding("no-secret-questions", a.username, a.adherent, "no secret questions stored"))
        strong = sorted(set(data.second_factor_roles) & view.roles[a.id])
        if a.enabled and strong and a.credential_types is not None \
                and not set(a.credential_types) & SECOND_FACTOR_TYPES:
            out.append(_finding("second-factor-missing", a.username, a.adherent,
                                f"holds {', '.join(strong)}; credentials: {', '.join(a.credential_types) or 'none'} "
                                "(enrols at its next login)"))

    delegates: dict[str, list[Account]] = {}
    validators: dict[str, list[Account]] = {}
    declared: dict[str, set[str]] = {}  # adherent -> categories its enabled Télédéclaration users declare
    tied: dict[str, list[Account]] = {}
    for a in data.accounts:
        if a.service_account:
            continue
        d = view.delegate_of(a)
        if d:
            delegates.setdefault(d, []).append(a)
        for ad, role in view.tele[a.id].get(EASYPAIEMENT, ()):
            if role == VALIDATEUR and a.enabled:
                validators.setdefault(ad, []).append(a)
        for client in data.declaration_services:
            for ad, _ in view.tele[a.id].get(client, ()):
                if a.enabled:
                    declared.setdefault(ad, set()).update(a.categories)
        for ad in view.adherents_of(a):
            tied.setdefault(ad, []).append(a)
    for numero, ad in sorted(adherents.items()):
        if ad.status == "suspended":
            enabled = sorted(a.username for a in tied.get(numero, ()) if a.enabled)
            if enabled:
                out.append(_finding("suspended-enabled", numero, numero,
                                    f"{len(enabled)} enabled: {', '.join(enabled[:20])}"))
            continue
        if not any(a.enabled for a in delegates.get(numero, ())):
            out.append(_finding("no-delegate", numero, numero, "no enabled member of /delegates/" + numero))
        # The brochure: Télédéclaration users must declare all the adherent's active categories.
        missing = sorted(set(ad.categories) - declared[numero]) if numero in declared else []
        if missing:
            out.append(_finding("categories-uncovered", numero, numero,
                                f"no enabled Télédéclaration user declares {', '.join(missing)}"))
        lasting = _incomplete_for_too_long(ad, len(validators.get(numero, ())), incomplete_days, now)
        if lasting:
            out.append(_finding("validators-missing", numero, numero, lasting))
    for change in data.drift or ():
        out.append(_finding("realm-drift", data.realm, None, change))
    if data.config is not None:
        out += config_findings(data.realm, data.config, data.teleservices)
    for kind, adherent, subject, detail in data.delegations:
        out.append(_finding(kind, subject, adherent, detail))
    if data.security is not None and data.register is not None:
        out += advisory_findings(data.register, data.security)
    return sorted(out, key=lambda f: (-severity_rank(f.severity), f.kind, f.adherent or "", f.subject))


def _incomplete_for_too_long(ad: AdherentInfo, validators: int, days: int, now: datetime) -> str | None:
    """The brochure lets a delegate choose 2 confirmations before creating its second validator: a short gap is
    normal, one longer than ``days`` is a finding. A gap the provisioner did not record (made outside our actions,
    or before the record existed) is reported at once: nobody knows how long it has lasted."""
    if ad.confirmations < 2 or validators >= 2:
        return None
    what = f"{validators} enabled validator(s) for 2 confirmations"
    if ad.incomplete_since is None:
        return f"{what}; since: not recorded"
    if now - ad.incomplete_since > timedelta(days=days):
        return f"{what} since {ad.incomplete_since:%Y-%m-%d} ({(now - ad.incomplete_since).days} days; " \
               f"threshold {days} days)"
    return None


def advisory_findings(register: Register, facts: SecurityFacts) -> list[Finding]:
    """Each published advisory the running Keycloak is affected by: open (a control of ours fails, or only an upgrade
    fixes it) at the advisory's severity, mitigated at info; and each group a delegate manages that confers a
    realm-management role (joining it makes an administrator: CVE-2026-94000)."""
    out: list[Finding] = []
    for e in exposures(register, facts):
        a, version = e.advisory, facts.keycloak_version
        fixed = Message(f"corrigée en {', '.join(a.fixed_in)}", f"fixed in {', '.join(a.fixed_in)}") if a.fixed_in \
            else Message("aucune correction publiée", "no fix released")
        if e.problems:
            said = Message(f"Keycloak {version} : {a.id} ({fixed.fr}) ; ouverte ici : "
                           f"{' ; '.join(p.fr for p in e.problems)}",
                           f"Keycloak {version}: {a.id} ({fixed.en}); open here: {'; '.join(p.en for p in e.problems)}")
            out.append(Finding(a.severity, "keycloak-advisory", a.id, None,
                               f"Keycloak {version}: {a.title} ({fixed.en}); open here: "
                               f"{'; '.join(p.en for p in e.problems)}", said))
        else:
            said = Message(f"Keycloak {version} : {a.id} ({fixed.fr}) ; neutralisée ici par notre configuration",
                           f"Keycloak {version}: {a.id} ({fixed.en}); closed here by our configuration")
            out.append(Finding("info", "keycloak-advisory-mitigated", a.id, None,
                               f"Keycloak {version}: {a.title} ({fixed.en}); closed here by "
                               f"{', '.join(a.controls)}", said))
    for path, roles in sorted(facts.group_admin_roles.items()):
        if path.startswith(f"/{ADHERENTS}/"):
            held = ", ".join(sorted(roles))
            out.append(Finding(KINDS["admin-group-delegated"][0], "admin-group-delegated", path, _adherent_of_path(path),
                               f"confers realm-management {held}; the adherent's delegate manages its members and can "
                               "put itself or a new user in it (CVE-2026-94000)",
                               Message(f"confère l'administration du realm ({held}) ; la personne déléguée de "
                                       "l'adhérent en gère les membres et peut s'y ajouter, ou y créer un utilisateur",
                                       f"confers realm administration ({held}); the member's delegate manages its "
                                       "members and can join it or create a user in it")))
    return out


# realm-management roles that make Keycloak skip fine-grained admin permissions (docs/security.md §3).
def _bypasses_permissions(role: str) -> bool:
    return role.startswith(("view-", "manage-")) or role in ("realm-admin", "impersonation")


def config_findings(realm: str, config: RealmConfig, teleservices: tuple[str, ...]) -> list[Finding]:
    """The live realm's configuration against absolute security rules (whatever realm/ says)."""
    out: list[Finding] = []
    if not config.brute_force_protected:
        out.append(_finding("brute-force-off", realm, None, "bruteForceProtected is false: passwords of 5-10 "
                                                            "characters can be guessed without lockout"))
    off = [name for name, on in (("eventsEnabled", config.events_enabled),
                                 ("adminEventsEnabled", config.admin_events_enabled)) if not on]
    if off:
        out.append(_finding("events-off", realm, None, f"{' and '.join(off)} false: logins or admin changes "
                                                        "are not recorded"))
    if not config.revoke_refresh_token or config.refresh_token_max_reuse > 0:
        out.append(_finding("refresh-token-reuse", realm, None,
                            f"revokeRefreshToken {str(config.revoke_refresh_token).lower()}, refreshTokenMaxReuse "
                            f"{config.refresh_token_max_reuse}: a stolen refresh token stays usable"))
    bypass = sorted(r for r in config.delegate_roles if _bypasses_permissions(r))
    if bypass:
        out.append(_finding("delegate-role-bypass", DELEGATE_ROLE, None,
                            f"grants realm-management {', '.join(bypass)}: every delegate skips its adherent's "
                            "fine-grained permissions"))
    for c in config.clients:
        if not c.enabled:
            continue  # a disabled client issues no token
        scoped = [(m, f" of client scope {scope}") for scope in (*c.default_scopes, *c.optional_scopes)
                  for m in config.scope_mappers.get(scope, ())]
        for m, where in [(m, "") for m in c.mappers] + scoped:
            if m.claim in MEMBERSHIP_CLAIMS and m.provider != MEMBERSHIP_MAPPER:
                out.append(_finding("claim-forgeable", c.client_id, None,
                                    f"claim {m.claim} from mapper {m.name} ({m.provider}){where}, not "
                                    f"{MEMBERSHIP_MAPPER}: a delegate can rewrite user attributes (Keycloak #40259)"))
        if c.direct_grants and (c.public or c.client_id in teleservices):
            what = "public client" if c.public else "teleservice"
            out.append(_finding("direct-grant-public", c.client_id, None,
                                f"{what} with directAccessGrantsEnabled: passwords are sent to it directly, "
                                "outside the login flow"))
        if c.public and c.standard_flow and c.pkce != "S256":
            out.append(_finding("public-client-no-pkce", c.client_id, None,
                                f"public client with the standard flow and pkce.code.challenge.method "
                                f"{c.pkce or 'unset'}: an intercepted code can be exchanged"))
        if c.client_id in teleservices:
            scopes = [kind for kind, names in (("default", c.default_scopes), ("optional", c.optional_scopes))
                      if OFFLINE_ACCESS in names]
            if scopes:
                out.append(_finding("offline-access-teleservice", c.client_id, None,
                                    f"{OFFLINE_ACCESS} among its {' and '.join(scopes)} client scopes: offline "
                                    "tokens outlive the session"))
        wild = [u for u in c.redirect_uris if "*" in u] if c.client_id in config.our_clients else []
        if wild:
            out.append(_finding("wildcard-redirect", c.client_id, None, f"redirect URI {', '.join(wild)}"))
        if c.implicit_flow:
            out.append(_finding("wildcard-redirect", c.client_id, None,
                                "implicitFlowEnabled: tokens are sent in the redirect URI"))
    return out


def _creators(trail: tuple[TrailEntry, ...]) -> dict[str, TrailEntry]:
    out: dict[str, TrailEntry] = {}
    for e in sorted(trail, key=lambda e: e.at):
        if e.outcome == "ok" and e.target and e.action.startswith(CREATION_ACTIONS) and e.target not in out:
            out[e.target] = e
    return out


def holdings(data: AuditData, view: _View) -> list[Holding]:
    """Per adherent, teleservice and role, the accounts holding it."""
    adherents = {ad.numero: ad for ad in data.adherents}
    creators = _creators(data.trail)
    rows = []
    for a in data.accounts:
        created_by = creators[a.username].actor if a.username in creators else None
        for client, held in view.tele[a.id].items():
            for numero, role in held:
                ad = adherents.get(numero, AdherentInfo(numero, "", "unknown"))
                rows.append(Holding(numero, ad.raison_sociale, ad.status, client, role, a.username, a.enabled,
                                    data.last_logins.get(a.id), a.created, created_by))
    return sorted(rows, key=lambda h: (h.adherent, h.teleservice, h.role, h.username))


def token_holders(entry: TrailEntry, accounts: ServiceAccounts) -> frozenset[str]:
    """The Keycloak users whose token may have carried out this trail entry's action: its admin events name one.

    A delegate acts with its own token in the portal (portal/services.py ``gateway``); through the CLI (``--as``,
    cli.base.Run) and for its adherent group's own attributes (core.Services.automation, docs/security.md
    §5.6) the provisioner's service account acts for it. Everyone else (agents, auditors, the public forms'
    subscriber and user) acts through the provisioner's service account; an agent's approval also writes the
    adherent's permissions with the delegations service account (permissions.writer).
    """
    if entry.actor_role == DELEGATE_ROLE:
        return frozenset({entry.actor.lower(), accounts.provisioner})
    if entry.actor_role == AGENT_ROLE:
        return frozenset({accounts.provisioner, accounts.delegations})
    return frozenset({accounts.provisioner})


def admin_activity(data: AuditData) -> list[TrailEntry]:
    """Our audit trail (the person) joined with Keycloak's admin events (what Keycloak changed).

    An entry takes the not-yet-taken admin events on the same target user, in the window before it, made with
    the token its person would have used (token_holders): a console change made meanwhile by someone else stays
    on its own row (events indexed by target: linear in the number of entries and events).
    """
    by_target: dict[str, list[tuple[datetime, int]]] = {}
    for i, k in enumerate(data.admin_events):
        if k.target:
            by_target.setdefault(k.target, []).append((k.at, i))
    for events in by_target.values():
        events.sort()
    used: set[int] = set()
    rows = []
    for t in sorted(data.trail, key=lambda e: e.at):
        if data.activity_since and t.at < data.activity_since:
            continue
        caused = []
        holders = token_holders(t, data.service_accounts)
        for at, i in by_target.get(t.target or "", ()):
            if (i not in used and t.at - JOIN_WINDOW <= at <= t.at + timedelta(seconds=2)
                    and data.admin_events[i].actor in holders):
                used.add(i)
                k = data.admin_events[i]
                caused.append(f"{k.operation} {k.resource_path}")
        rows.append(replace(t, before=None, after=None, keycloak=tuple(caused),
                            source="trail+keycloak" if caused else "trail"))
    for i, k in enumerate(data.admin_events):
        if i not in used:
            rows.append(TrailEntry(k.at, k.actor, "keycloak", None, f"{k.resource_type} {k.operation}".lower(),
                                   k.target or k.resource_path, "ok", keycloak=(f"{k.operation} {k.resource_path}",),
                                   source="keycloak"))
    return sorted(rows, key=lambda r: r.at, reverse=True)


def build_report(data: AuditData, inactive_days: int = 90, now: datetime | None = None,
                 incomplete_days: int = 7, dormant_days: int = 180, grace_days: int = 30) -> Report:
    """The full report (pure): holdings, findings, admin activity, counts and caveats. ``incomplete_days``: how long
    a 2-confirmation adherent may lack its second validator before it is a finding; ``dormant_days`` and
    ``grace_days``: the DORMANT_DAYS and TERMINATION_GRACE_DAYS settings."""
    now = now or data.collected_at
    view = _View(data)
    findings = find_issues(data, view, inactive_days, now, incomplete_days, dormant_days, grace_days)
    notes = list(data.notes)
    if data.login_retention_days is not None and data.login_retention_days < inactive_days:
        notes.append(f"Login events are kept {data.login_retention_days} days: 'inactive' cannot see logins older "
                     f"than that.")
    notes.append("Last login comes from Keycloak LOGIN events (Keycloak stores no last-login time).")
    kinds = [view.kind(a) for a in data.accounts]
    counts = {"accounts": len(data.accounts), "users": kinds.count("user"), "delegates": kinds.count("delegate"),
              "staff": kinds.count("staff"), "service_accounts": kinds.count("service-account"),
              "adherents": len(data.adherents), "findings": len(findings), "keycloak_reads": data.reads}
    for s in SEVERITIES:
        counts[f"findings_{s}"] = sum(f.severity == s for f in findings)
    return Report(data.realm, now, inactive_days, tuple(holdings(data, view)), tuple(findings),
                  tuple(admin_activity(data)), data.drift_note, tuple(notes), counts)


# --- renderers -------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, bool):
        return "enabled" if v else "DISABLED"
    if isinstance(v, tuple):
        return "; ".join(v)
    return str(v)


SECTIONS = {
    "findings": ("severity", "kind", "adherent", "subject", "detail"),
    "holdings": ("adherent", "raison_sociale", "adherent_status", "teleservice", "role", "username", "enabled",
                 "last_login", "created", "created_by"),
    "activity": ("at", "actor", "actor_role", "adherent", "action", "target", "outcome", "source", "keycloak"),
}


def _rows(report: Report, section: str) -> list[dict]:
    items = {"findings": report.findings, "holdings": report.holdings, "activity": report.activity}[section]
    return [{c: getattr(i, c) for c in SECTIONS[section]} for i in items]


def render_table(report: Report, limit: int = 200) -> str:
    """A readable plain-text report (each section capped at ``limit`` rows; use CSV/JSON for everything)."""
    out = [f"Audit of realm {report.realm} at {_fmt(report.generated_at)} UTC",
           "  " + ", ".join(f"{k}={v}" for k, v in report.counts.items() if not k.startswith("findings_")),
           f"  realm drift: {report.drift_note}"] + [f"  note: {n}" for n in report.notes]
    for section in ("findings", "holdings", "activity"):
        rows = [[_fmt(r[c]) for c in SECTIONS[section]] for r in _rows(report, section)]
        out += ["", f"== {section} ({len(rows)}) =="]
        if not rows:
            out.append("  (none)")
            continue
        shown = rows[:limit]
        widths = [min(60, max(len(c), *(len(r[i]) for r in shown))) for i, c in enumerate(SECTIONS[section])]
        out.append("  ".join(c.ljust(w) for c, w in zip(SECTIONS[section], widths)).rstrip())
        out += ["  ".join(v[:60].ljust(w) for v, w in zip(r, widths)).rstrip() for r in shown]
        if len(rows) > limit:
            out.append(f"  ... {len(rows) - limit} more (use --format csv or json)")
    return "\n".join(out)


def render_csv(report: Report, section: str = "findings") -> str:
    """One section as CSV (header row first)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SECTIONS[section])
    for row in _rows(report, section):
        writer.writerow([_fmt(row[c]) if row[c] is not None else "" for c in SECTIONS[section]])
    return buf.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)


_HTML = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<title>Audit de sécurité — {{ r.realm }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:2rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-size:.85rem;vertical-align:top}
th{background:#eee}.critical,.high{background:#fdd}.medium{background:#ffe9c7}.low{background:#fffbd6}
.off{color:#a00;font-weight:bold}small{color:#555}
</style></head><body>
<h1>Audit de sécurité <small lang="en">/ Security audit</small> — {{ r.realm }}</h1>
<p>Généré le {{ fmt(r.generated_at) }} UTC. {% for k, v in r.counts.items() if not k.startswith("findings_") %}{{ k }} : {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</p>
<p>Dérive du realm / Realm drift : {{ r.drift_note }}</p>
{% for n in r.notes %}<p><small>{{ n }}</small></p>{% endfor %}
<h2>Constats <small lang="en">/ Findings</small> ({{ r.findings|length }})</h2>
<table><tr><th>Gravité</th><th>Constat</th><th>Adhérent</th><th>Sujet</th><th>Détail</th></tr>
{% for f in r.findings %}<tr class="{{ f.severity }}"><td>{{ f.severity }}</td><td>{{ f.title.fr }}<br><small lang="en">{{ f.title.en }}</small></td><td>{{ f.adherent or "—" }}</td><td>{{ f.subject }}</td><td>{{ f.detail }}</td></tr>
{% else %}<tr><td colspan="5">Aucun constat / No findings</td></tr>{% endfor %}</table>
<h2>Qui détient quoi <small lang="en">/ Who holds what</small> ({{ r.holdings|length }})</h2>
<table><tr><th>Adhérent</th><th>Téléservice</th><th>Rôle</th><th>Utilisateur</th><th>État</th><th>Dernière connexion</th><th>Créé le</th><th>Créé par</th></tr>
{% for h in r.holdings %}<tr><td>{{ h.adherent }} {{ h.raison_sociale }}{% if h.adherent_status != "active" %} ({{ h.adherent_status }}){% endif %}</td><td>{{ h.teleservice }}</td><td>{{ h.role }}</td><td>{{ h.username }}</td><td{% if not h.enabled %} class="off"{% endif %}>{{ "actif" if h.enabled else "désactivé" }}</td><td>{{ fmt(h.last_login) }}</td><td>{{ fmt(h.created) }}</td><td>{{ h.created_by or "—" }}</td></tr>
{% endfor %}</table>
<h2>Activité d'administration <small lang="en">/ Admin activity</small> ({{ r.activity|length }})</h2>
<table><tr><th>Quand</th><th>Qui</th><th>Rôle</th><th>Adhérent</th><th>Action</th><th>Cible</th><th>Résultat</th><th>Keycloak</th></tr>
{% for a in r.activity %}<tr><td>{{ fmt(a.at) }}</td><td>{{ a.actor }}</td><td>{{ a.actor_role }}</td><td>{{ a.adherent or "—" }}</td><td>{{ a.action }}</td><td>{{ a.target or "—" }}</td><td>{{ a.outcome }}</td><td>{{ a.keycloak|join("; ") }}</td></tr>
{% endfor %}</table>
</body></html>
"""


def render_html(report: Report) -> str:
    """A self-contained HTML page (inline style, no script, no external resource), French first."""
    from jinja2 import Environment

    return Environment(autoescape=True).from_string(_HTML).render(r=report, fmt=_fmt)
