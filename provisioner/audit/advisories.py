"""Keycloak's published advisories against the live realm (pure): the register (realm/advisories.yaml), which
versions each advisory affects, and the controls of ours that make an affected version harmless here.

``collect`` reads a ``SecurityFacts`` from the live realm; ``advisory_findings`` reports each advisory the running
Keycloak is affected by while one of its controls does not hold, and ``admin_group_findings`` each group whose
membership a delegate manages although it confers a realm-management role (CVE-2026-94000's door).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from provisioner.audit.findings import SEVERITIES
from provisioner.errors import Message as M, RealmSpecError
from provisioner.realm.desired import REFRESH_TOKEN_ONCE
from provisioner.tree import ADHERENTS

EXPOSURES = ("fixed", "mitigated", "not-exposed")
REGISTER_FILE = "advisories.yaml"


@dataclass(frozen=True)
class Advisory:
    id: str
    title: str
    severity: str
    affected: tuple[str, ...]      # PEP 440 specifiers, one per release branch
    fixed_in: tuple[str, ...]
    exposure: str
    why: str
    controls: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    issue: int | None = None       # keycloak/keycloak issue number

    def affects(self, version: str) -> bool:
        """Whether Keycloak ``version`` (e.g. "26.7.5") carries the flaw; an unreadable version counts as affected."""
        try:
            v = Version(version)
        except InvalidVersion:
            return True
        return any(v in SpecifierSet(r) for r in self.affected)


@dataclass(frozen=True)
class Register:
    keycloak: str                  # the pinned version the register was reviewed against
    advisories: tuple[Advisory, ...]


def load_register(realm_dir: Path) -> Register:
    """realm/advisories.yaml, checked; RealmSpecError names the entry and the problem."""
    path = Path(realm_dir) / REGISTER_FILE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RealmSpecError(REGISTER_FILE, "-", f"cannot be read: {exc}") from None
    out = []
    for i, raw in enumerate(doc.get("advisories") or []):
        where = f"advisories[{i}] {raw.get('id', '?')}"

        def fail(problem: str) -> RealmSpecError:
            return RealmSpecError(REGISTER_FILE, where, problem)

        missing = {"id", "title", "severity", "affected", "fixed_in", "exposure", "why"} - set(raw)
        if missing:
            raise fail(f"missing {', '.join(sorted(missing))}")
        if raw["severity"] not in SEVERITIES:
            raise fail(f"severity {raw['severity']!r} is not one of {', '.join(SEVERITIES)}")
        if raw["exposure"] not in EXPOSURES:
            raise fail(f"exposure {raw['exposure']!r} is not one of {', '.join(EXPOSURES)}")
        unknown = sorted(set(raw.get("controls") or ()) - set(CONTROLS))
        if unknown:
            raise fail(f"unknown control(s) {', '.join(unknown)} (known: {', '.join(sorted(CONTROLS))})")
        try:
            for spec in raw["affected"]:
                SpecifierSet(spec)
            for version in raw["fixed_in"]:
                Version(str(version))
        except (InvalidSpecifier, InvalidVersion) as exc:
            raise fail(f"bad version or range: {exc}") from None
        out.append(Advisory(str(raw["id"]), " ".join(str(raw["title"]).split()), raw["severity"],
                            tuple(raw["affected"]), tuple(str(v) for v in raw["fixed_in"]), raw["exposure"],
                            " ".join(str(raw["why"]).split()), tuple(raw.get("controls") or ()),
                            tuple(raw.get("tests") or ()), raw.get("issue")))
    return Register(str(doc.get("keycloak", "")), tuple(out))


# --- what the controls judge, read from the live realm -------------------------------------------------------

@dataclass(frozen=True)
class ClientPolicy:
    name: str
    enabled: bool
    conditions: tuple[str, ...]    # condition provider ids (any-client, client-updater-source-host...)
    executors: tuple[str, ...]     # executor provider ids of its profiles


@dataclass(frozen=True)
class AdminPermission:
    """A fine-grained admin permission that is not one of the per-adherent ones (those are checked by name and
    shape in provisioner/permissions.py)."""

    name: str
    resource_type: str             # Users / Groups / Roles / Clients
    scopes: tuple[str, ...] = ()
    denies: bool = False           # the permission or one of its policies has NEGATIVE logic


@dataclass(frozen=True)
class GroupPolicy:
    name: str
    extends_children: bool = False  # a group of the policy has extendChildren
    claim: str = ""                 # groupsClaim: judged on a token's claim instead of memberships


@dataclass(frozen=True)
class SecurityFacts:
    keycloak_version: str
    reset_password_allowed: bool = False
    organizations_enabled: bool = False
    identity_providers: tuple[str, ...] = ()
    client_policies: tuple[ClientPolicy, ...] = ()
    # Anonymous client registration's "trusted hosts" allowed (None: no such policy, i.e. no restriction).
    anonymous_registration_hosts: tuple[str, ...] | None = ()
    permissions: tuple[AdminPermission, ...] = ()
    group_policies: tuple[GroupPolicy, ...] = ()
    redirect_uris: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # enabled client -> its URIs
    group_admin_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)  # path -> realm-management roles
    account_admin_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)  # username -> the same
    delegate_roles: frozenset[str] = frozenset()  # realm-management roles of the realm role `delegate`
    # Administration roles our service accounts hold on purpose (realm/clients.yaml), by username: the delegations
    # account writes the per-adherent permissions, which Keycloak 26.7 lets only manage-realm do.
    by_design: Mapping[str, frozenset[str]] = field(default_factory=dict)


# --- the controls: each returns what is wrong (nothing: it holds) --------------------------------------------
ADMINISTRATION = ("realm-admin", "manage-realm", "manage-clients", "create-client", "manage-identity-providers",
                  "impersonation", "manage-authorization")


def _reset_off(f: SecurityFacts) -> list[M]:
    return [M("la page « Mot de passe oublié » de Keycloak est ouverte (resetPasswordAllowed) : son parcours répond à "
              "quiconque", "Keycloak's own « Forgot password » is on (resetPasswordAllowed): its reset-credentials "
              "flow answers anyone")] if f.reset_password_allowed else []


def _no_role_delegation(f: SecurityFacts) -> list[M]:
    out = [M(f"la permission « {p.name} » délègue des rôles", f"permission {p.name!r} delegates roles (resourceType "
             "Roles)") for p in f.permissions if p.resource_type == "Roles"]
    out += [M(f"le rôle des personnes déléguées accorde {r}", f"the delegate role grants {r}")
            for r in sorted(f.delegate_roles & {"view-realm", "manage-realm"})]
    return out


def _group_policies_exact(f: SecurityFacts) -> list[M]:
    return [M(f"la politique de groupe « {p.name} » " + ("s'étend aux sous-groupes" if p.extends_children else
                                                         f"juge la revendication « {p.claim} » d'un jeton"),
              f"group policy {p.name!r} " + ("extends to subgroups" if p.extends_children else
                                             f"judges the token claim {p.claim!r}"))
            for p in f.group_policies if p.extends_children or p.claim]


def _no_registration_conditions(f: SecurityFacts) -> list[M]:
    risky = {"client-updater-source-host", "client-updater-source-groups"}
    return [M(f"la politique de clients « {p.name} » se fie à l'origine de la demande "
              f"({', '.join(sorted(risky & set(p.conditions)))})",
              f"client policy {p.name!r} uses {', '.join(sorted(risky & set(p.conditions)))}")
            for p in f.client_policies if risky & set(p.conditions)]


def _registration_closed(f: SecurityFacts) -> list[M]:
    if f.anonymous_registration_hosts is None:
        return [M("l'enregistrement anonyme de clients n'est restreint à aucun hôte : tout le monde peut en "
                  "enregistrer", "anonymous client registration has no trusted-hosts policy: anyone may register a "
                  "client")]
    hosts = ", ".join(f.anonymous_registration_hosts)
    return [M(f"l'enregistrement anonyme de clients est permis depuis {hosts}",
              f"anonymous client registration is allowed from {hosts}")] if hosts else []


def _no_realm_administrators(f: SecurityFacts) -> list[M]:
    found = {who: roles & set(ADMINISTRATION) - f.by_design.get(who, frozenset())
             for who, roles in f.account_admin_roles.items()}
    return [M(f"{who} détient {', '.join(sorted(roles))}", f"{who} holds {', '.join(sorted(roles))}")
            for who, roles in sorted(found.items()) if roles]


def _no_identity_providers(f: SecurityFacts) -> list[M]:
    names = ", ".join(f.identity_providers)
    return [M(f"fournisseur(s) d'identité : {names}", f"identity provider(s) {names}")] if names else []


def _organizations_off(f: SecurityFacts) -> list[M]:
    return [M("les organisations sont activées", "organizations are enabled")] if f.organizations_enabled else []


def _exact_redirect_uris(f: SecurityFacts) -> list[M]:
    wild = {client: ", ".join(u for u in uris if "*" in u) for client, uris in sorted(f.redirect_uris.items())}
    return [M(f"{client} redirige vers {uris}", f"{client} redirects to {uris}") for client, uris in wild.items() if uris]


def _admin_groups_closed(f: SecurityFacts) -> list[M]:
    """No group a delegate manages confers a realm-management role, and no group confers one that a holder of
    manage-users lacks: joining it (CVE-2026-94000) would hand it over."""
    out = [M(f"{path} confère {', '.join(sorted(roles))}, et une personne déléguée en gère les membres",
             f"{path} confers {', '.join(sorted(roles))}, and delegates manage its members")
           for path, roles in sorted(f.group_admin_roles.items()) if path.startswith(f"/{ADHERENTS}/") and roles]
    holders = {who: roles for who, roles in f.account_admin_roles.items() if "manage-users" in roles}
    for path, roles in sorted(f.group_admin_roles.items()):
        for who, held in sorted(holders.items()):
            if roles - held and "realm-admin" not in held:
                more = ", ".join(sorted(roles - held))
                out.append(M(f"{path} confère {more} : {who} (manage-users) peut s'y ajouter",
                             f"{path} confers {more}: {who} (manage-users) can join it"))
    return out


def _no_reset_password_denial(f: SecurityFacts) -> list[M]:
    return [M(f"la permission « {p.name} » refuse la réinitialisation des mots de passe",
              f"permission {p.name!r} denies reset-password on {p.resource_type}") for p in f.permissions
            if p.denies and "reset-password" in p.scopes]


def _no_auth_flow_enforcer(f: SecurityFacts) -> list[M]:
    return [M(f"la politique de clients « {p.name} » impose un parcours de connexion (auth-flow-enforcer)",
              f"client policy {p.name!r} picks a login flow (auth-flow-enforcer)") for p in f.client_policies
            if p.enabled and "auth-flow-enforcer" in p.executors]


def _refresh_token_once(f: SecurityFacts) -> list[M]:
    if any(p.enabled and "any-client" in p.conditions and REFRESH_TOKEN_ONCE in p.executors for p in f.client_policies):
        return []
    return [M(f"aucune politique de clients active n'applique {REFRESH_TOKEN_ONCE} à tous les clients",
              f"no enabled client policy applies {REFRESH_TOKEN_ONCE} to every client")]


CONTROLS: dict[str, Callable[[SecurityFacts], list[M]]] = {
    "keycloak-reset-off": _reset_off,
    "no-role-delegation": _no_role_delegation,
    "group-policies-exact": _group_policies_exact,
    "no-client-registration-conditions": _no_registration_conditions,
    "client-registration-closed": _registration_closed,
    "no-realm-administrators": _no_realm_administrators,
    "no-identity-providers": _no_identity_providers,
    "organizations-off": _organizations_off,
    "exact-redirect-uris": _exact_redirect_uris,
    "admin-groups-closed": _admin_groups_closed,
    "no-reset-password-denial": _no_reset_password_denial,
    "no-auth-flow-enforcer": _no_auth_flow_enforcer,
    "refresh-token-once": _refresh_token_once,
}


@dataclass(frozen=True)
class Exposure:
    """An advisory the running Keycloak is affected by, with what leaves it open here (empty: our controls hold)."""

    advisory: Advisory
    problems: tuple[M, ...]


def exposures(register: Register, facts: SecurityFacts) -> list[Exposure]:
    """Every advisory affecting ``facts.keycloak_version``, each with the problems of its controls; an affected
    advisory without controls is open (only an upgrade helps)."""
    out = []
    for adv in register.advisories:
        if not adv.affects(facts.keycloak_version):
            continue
        if not adv.controls:
            fixed = ", ".join(adv.fixed_in)
            problems = [M(f"seule une mise à jour la corrige ({fixed or 'aucune correction publiée'})",
                          f"only an upgrade fixes it ({fixed or 'no fix released yet'})")]
        else:
            problems = [p for name in adv.controls for p in CONTROLS[name](facts)]
        out.append(Exposure(adv, tuple(problems)))
    return out
