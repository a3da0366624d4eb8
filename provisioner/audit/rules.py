"""The audit's rules (pure): each applied to the whole realm's data, each raising findings of one kind or more
(provisioner/audit/findings.py): accounts and adherents, their lifecycle, the live realm's configuration against
absolute security rules, Keycloak's published advisories."""

from __future__ import annotations

from datetime import datetime, timedelta

from provisioner.audit.advisories import Register, SecurityFacts, exposures
from provisioner.audit.data import Account, AdherentInfo, AuditData, RealmConfig
from provisioner.audit.findings import KINDS, Finding, severity_rank
from provisioner.errors import Message
from provisioner.realm.desired import MEMBERSHIP_CLAIMS, MEMBERSHIP_MAPPER, OFFLINE_ACCESS
from provisioner.rules import EASYPAIEMENT, VALIDATEUR
from provisioner.rules import SECOND_FACTOR_TYPES
from provisioner.tenancy import AGENT, AUDITOR, DELEGATE
from provisioner.tree import ADHERENTS, DELEGATES, SUSPENDED, TERMINATED

STAFF_ROLES = (AGENT, AUDITOR)  # realm roles of CIMR's staff accounts


def _adherent_of_path(path: str) -> str | None:
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] in (ADHERENTS, DELEGATES) else None


class View:
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
        if self.delegate_of(a) or f"realm:{DELEGATE}" in self.roles[a.id]:
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


def _lifecycle(data: AuditData, view: View, now: datetime, dormant_days: int, grace_days: int) -> list[Finding]:
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
        if ad.status != TERMINATED or ad.terminated_at is None:
            continue
        purge = ad.terminated_at + timedelta(days=grace_days)
        kind = "purge-overdue" if purge <= now else "adherent-terminated"
        out.append(_finding(kind, ad.numero, ad.numero, f"terminated {ad.terminated_at:%Y-%m-%d}; reversible until, "
                                                        f"then purged from, {purge:%Y-%m-%d}"))
    return out


def find_issues(data: AuditData, view: View, inactive_days: int, now: datetime,
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
        if ad.status == SUSPENDED:
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
        out.append(_finding("delegate-role-bypass", DELEGATE, None,
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
