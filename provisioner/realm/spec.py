"""realm/ YAML -> frozen dataclasses, checked strictly before anything touches Keycloak."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from provisioner.errors import RealmSpecError

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
_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}$")


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int
    max_length: int
    pattern: str
    not_username: bool
    history: int

    def to_keycloak(self) -> str:
        parts = [f"length({self.min_length})", f"maxLength({self.max_length})", f"regexPattern({self.pattern})"]
        if self.not_username:
            parts.append("notUsername(undefined)")
        if self.history:
            parts.append(f"passwordHistory({self.history})")
        return " and ".join(parts)


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

    def client(self, client_id: str) -> Client:
        return next(c for c in self.clients if c.client_id == client_id)


class _Reader:
    """Walks one YAML file, recording the key path so every error names file, key and problem."""

    def __init__(self, file: str, variables: Mapping[str, str]):
        self.file, self.variables = file, variables

    def fail(self, key: str, problem: str) -> RealmSpecError:
        return RealmSpecError(self.file, key, problem)

    def mapping(self, value: Any, key: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(f"{key}.{missing[0]}", "is required")
        return value

    def typed(self, value: Any, key: str, kind: type | tuple, what: str) -> Any:
        if isinstance(value, bool) and kind is int or not isinstance(value, kind):
            raise self.fail(key, f"must be {what}, got {value!r}")
        return value

    def int_(self, m: dict, key: str, name: str, low: int = 0, high: int = 10**7) -> int:
        v = self.typed(m[name], f"{key}.{name}", int, "a whole number")
        if not low <= v <= high:
            raise self.fail(f"{key}.{name}", f"must be between {low} and {high}, got {v}")
        return v

    def bool_(self, m: dict, key: str, name: str) -> bool:
        return self.typed(m[name], f"{key}.{name}", bool, "true or false")

    def str_(self, value: Any, key: str) -> str:
        value = self.typed(value, key, str, "a string")
        def sub(match: re.Match) -> str:
            if match.group(1) not in self.variables:
                raise self.fail(key, f"uses ${{{match.group(1)}}} but no such variable is declared or set")
            return self.variables[match.group(1)]
        return _VAR.sub(sub, value)

    def str_list(self, value: Any, key: str) -> tuple[str, ...]:
        self.typed(value, key, list, "a list of strings")
        return tuple(self.str_(v, f"{key}[{i}]") for i, v in enumerate(value))

    def roles(self, value: Any, key: str, composites: bool = False) -> tuple[Role, ...]:
        """`name: description`, or (realm roles) `name: {description, composites: {client: [role, ...]}}`."""
        self.typed(value, key, dict, "a mapping of role name to description")
        out = []
        for name, desc in value.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.fail(f"{key}.{name}", "role names are lower-case letters, digits and '-'")
            if composites and isinstance(desc, dict):
                body = self.mapping(desc, f"{key}.{name}", {"description", "composites"}, {"description"})
                out.append(Role(name, self.str_(body["description"] or "", f"{key}.{name}.description"),
                                self.composites(body.get("composites") or {}, f"{key}.{name}.composites")))
            else:
                out.append(Role(name, self.str_(desc or "", f"{key}.{name}")))
        return tuple(out)

    def composites(self, value: Any, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Client roles (of a realm role's composites, or a service account's); only realm-management's are known."""
        self.typed(value, key, dict, "a mapping of client id to role list")
        out = []
        for owner, names in value.items():
            names = self.str_list(names, f"{key}.{owner}")
            for i, role in enumerate(names):
                if owner != "realm-management" or role not in REALM_MANAGEMENT_ROLES:
                    raise self.fail(f"{key}.{owner}[{i}]",
                                    f"role {owner}/{role} is not declared (known realm-management roles: "
                                    f"{', '.join(sorted(REALM_MANAGEMENT_ROLES))})")
            out.append((owner, tuple(sorted(names))))
        return tuple(out)


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RealmSpecError(path.name, "-", "file is missing") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "-"
        raise RealmSpecError(path.name, where, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise RealmSpecError(path.name, "-", "must hold a mapping at the top level")
    return data


def load_realm_spec(directory: Path, realm_name: str, overrides: Mapping[str, str] | None = None) -> RealmSpec:
    """Read realm/ into a RealmSpec; raises RealmSpecError naming file, key and problem."""
    raw = {name: _load_yaml(directory / name) for name in FILES}
    declared = raw["realm.yaml"].get("variables") or {}
    if not isinstance(declared, dict):
        raise RealmSpecError("realm.yaml", "variables", "must be a mapping of NAME: default")
    variables = {str(k): str(v) for k, v in declared.items()} | dict(overrides or {})

    r = _Reader("realm.yaml", variables)
    top = r.mapping(raw["realm.yaml"], "(top)", {"variables", "realm", "realm_roles", "groups", "second_factor"},
                    {"realm"})
    realm = r.mapping(top["realm"], "realm",
                      {"display_name", "locales", "default_locale", "password_policy", "brute_force", "events",
                       "sessions", "login"},
                      {"display_name", "locales", "default_locale", "password_policy", "brute_force", "events",
                       "sessions"})
    locales = r.str_list(realm["locales"], "realm.locales")
    default_locale = r.str_(realm["default_locale"], "realm.default_locale")
    if default_locale not in locales:
        raise r.fail("realm.default_locale", f"{default_locale!r} is not one of realm.locales {list(locales)}")

    pp_keys = {"min_length", "max_length", "pattern", "not_username", "history"}
    pp = r.mapping(realm["password_policy"], "realm.password_policy", pp_keys, pp_keys)
    policy = PasswordPolicy(
        min_length=r.int_(pp, "realm.password_policy", "min_length", 1, 128),
        max_length=r.int_(pp, "realm.password_policy", "max_length", 1, 128),
        pattern=r.str_(pp["pattern"], "realm.password_policy.pattern"),
        not_username=r.bool_(pp, "realm.password_policy", "not_username"),
        history=r.int_(pp, "realm.password_policy", "history", 0, 50),
    )
    if policy.max_length < policy.min_length:
        raise r.fail("realm.password_policy.max_length", "must not be below min_length")
    try:
        re.compile(policy.pattern)
    except re.error as e:
        raise r.fail("realm.password_policy.pattern", f"not a valid regular expression: {e}") from None

    bf_keys = {"enabled", "max_failures", "wait_increment_seconds", "max_wait_seconds", "failure_reset_seconds",
               "permanent_lockout"}
    bf = r.mapping(realm["brute_force"], "realm.brute_force", bf_keys, bf_keys)
    brute = BruteForce(
        enabled=r.bool_(bf, "realm.brute_force", "enabled"),
        max_failures=r.int_(bf, "realm.brute_force", "max_failures", 1, 100),
        wait_increment_seconds=r.int_(bf, "realm.brute_force", "wait_increment_seconds", 1),
        max_wait_seconds=r.int_(bf, "realm.brute_force", "max_wait_seconds", 1),
        failure_reset_seconds=r.int_(bf, "realm.brute_force", "failure_reset_seconds", 1),
        permanent_lockout=r.bool_(bf, "realm.brute_force", "permanent_lockout"),
    )
    ev_keys = {"login", "admin", "admin_details", "retention_days"}
    ev = r.mapping(realm["events"], "realm.events", ev_keys, ev_keys)
    events = Events(r.bool_(ev, "realm.events", "login"), r.bool_(ev, "realm.events", "admin"),
                    r.bool_(ev, "realm.events", "admin_details"),
                    r.int_(ev, "realm.events", "retention_days", 1, 3650))
    se_keys = {"idle_seconds", "max_seconds", "access_token_seconds", "rotate_refresh_tokens"}
    se = r.mapping(realm["sessions"], "realm.sessions", se_keys, se_keys)
    sessions = Sessions(*(r.int_(se, "realm.sessions", k, 30) for k in ("idle_seconds", "max_seconds",
                                                                        "access_token_seconds")),
                        rotate_refresh_tokens=r.bool_(se, "realm.sessions", "rotate_refresh_tokens"))
    realm_roles = r.roles(top.get("realm_roles") or {}, "realm_roles", composites=True)
    groups = []
    role_names = {role.name for role in realm_roles}
    for name, body in r.typed(top.get("groups") or {}, "groups", dict, "a mapping of group name to settings").items():
        body = r.mapping(body or {}, f"groups.{name}", {"realm_roles"})
        roles = r.str_list(body.get("realm_roles") or [], f"groups.{name}.realm_roles")
        for i, role in enumerate(roles):
            if role not in role_names:
                raise r.fail(f"groups.{name}.realm_roles[{i}]",
                             f"role {role!r} is not declared under realm_roles ({', '.join(sorted(role_names))})")
        groups.append(GroupSpec(name, roles))
    _check_delegate_roles(r, realm_roles, groups)

    attributes = _attributes(_Reader("user-profile.yaml", variables), raw["user-profile.yaml"])
    clients_reader = _Reader("clients.yaml", variables)
    clients = _clients(clients_reader, raw["clients.yaml"], {a.name for a in attributes})
    builtin = _builtin_clients(clients_reader, raw["clients.yaml"].get("builtin_clients") or {})
    second = _second_factor(r, top.get("second_factor") or {}, realm_roles, clients)
    login_pages = None
    if "login" in realm:
        keys = {"theme", "display_name_html", "forgot_password_url"}
        lp = r.mapping(realm["login"], "realm.login", keys, keys)
        login_pages = LoginPages(*(r.str_(lp[k], f"realm.login.{k}") for k in ("theme", "display_name_html",
                                                                                "forgot_password_url")))
        if not re.match(r"^https?://[^/\s]+", login_pages.forgot_password_url):
            raise r.fail("realm.login.forgot_password_url",
                         f"must be an http(s) URL, got {login_pages.forgot_password_url!r}")
    return RealmSpec(realm_name, r.str_(realm["display_name"], "realm.display_name"), locales, default_locale,
                     policy, brute, events, sessions, realm_roles, tuple(groups), clients, attributes, builtin,
                     second, login_pages)


OTP_ALGORITHMS = ("HmacSHA1", "HmacSHA256", "HmacSHA512")


def _second_factor(r: _Reader, data: Any, realm_roles: tuple[Role, ...], clients: tuple[Client, ...]) -> SecondFactor:
    """`second_factor`: required_for {realm: [role], <client id>: [role]}, otp {...}, levels {acr: 1, acr: 2}."""
    body = r.mapping(data, "second_factor", {"required_for", "otp", "levels"})
    required: list[str] = []
    realm_names = {role.name for role in realm_roles}
    client_roles = {c.client_id: {role.name for role in c.roles} for c in clients}
    owners = r.typed(body.get("required_for") or {}, "second_factor.required_for", dict,
                     "a mapping of `realm` or a client id to role names")
    for owner, names in owners.items():
        key = f"second_factor.required_for.{owner}"
        known = realm_names if owner == "realm" else client_roles.get(owner)
        if known is None:
            raise r.fail(key, f"not `realm` nor a declared client ({', '.join(sorted(client_roles))})")
        for i, name in enumerate(r.str_list(names, key)):
            if name not in known:
                raise r.fail(f"{key}[{i}]", f"role {name!r} is not declared ({', '.join(sorted(known))})")
            required.append(name if owner == "realm" else f"{owner}.{name}")
    otp_keys = {"algorithm", "digits", "period", "look_around"}
    otp = r.mapping(body.get("otp") or {k: v for k, v in (("algorithm", "HmacSHA1"), ("digits", 6), ("period", 30),
                                                         ("look_around", 1))}, "second_factor.otp", otp_keys, otp_keys)
    algorithm = r.str_(otp["algorithm"], "second_factor.otp.algorithm")
    if algorithm not in OTP_ALGORITHMS:
        raise r.fail("second_factor.otp.algorithm", f"must be one of {', '.join(OTP_ALGORITHMS)}")
    levels = r.typed(body.get("levels") or {"password": 1, "2fa": 2}, "second_factor.levels", dict,
                     "a mapping of acr value to level")
    if sorted(levels.values()) != [1, 2] or not all(isinstance(k, str) and k for k in levels):
        raise r.fail("second_factor.levels", "must name exactly two acr values, for levels 1 (password) and 2 "
                                             f"(second factor); got {levels!r}")
    return SecondFactor(
        required_for=tuple(required), levels=tuple(sorted(levels.items(), key=lambda kv: kv[1])),
        otp_algorithm=algorithm, otp_digits=r.int_(otp, "second_factor.otp", "digits", 6, 8),
        otp_period=r.int_(otp, "second_factor.otp", "period", 15, 120),
        otp_look_around=r.int_(otp, "second_factor.otp", "look_around", 0, 2))


# The only realm-management roles a delegate may hold: any view-*/manage-* role makes Keycloak skip the
# fine-grained admin permissions that confine the delegate to its own adherent (docs/security.md).
DELEGATE_SAFE_ROLES = frozenset({"query-users", "query-groups"})


def _check_delegate_roles(r: _Reader, realm_roles: tuple[Role, ...], groups: list[GroupSpec]) -> None:
    by_name = {role.name: role for role in realm_roles}
    for group in groups:
        if group.name != "delegates":
            continue
        for role_name in group.realm_roles:
            for owner, names in by_name[role_name].composites:
                for name in names:
                    if name not in DELEGATE_SAFE_ROLES:
                        raise r.fail(f"realm_roles.{role_name}.composites.{owner}",
                                     f"{name!r} is held by every delegate and would bypass the fine-grained "
                                     f"admin permissions (allowed: {', '.join(sorted(DELEGATE_SAFE_ROLES))})")


def _attributes(r: _Reader, data: dict) -> tuple[Attribute, ...]:
    top = r.mapping(data, "(top)", {"attributes"}, {"attributes"})
    attrs = r.typed(top["attributes"], "attributes", dict, "a mapping of attribute name to settings")
    out = []
    for name, body in attrs.items():
        key = f"attributes.{name}"
        body = r.mapping(body, key, {"display", "admin_only", "multivalued", "values", "pattern", "max_length"},
                         {"display"})
        out.append(Attribute(
            name=name, display=r.str_(body["display"], f"{key}.display"),
            admin_only=r.bool_(body, key, "admin_only") if "admin_only" in body else False,
            multivalued=r.bool_(body, key, "multivalued") if "multivalued" in body else False,
            values=r.str_list(body["values"], f"{key}.values") if "values" in body else (),
            pattern=r.str_(body["pattern"], f"{key}.pattern") if "pattern" in body else None,
            max_length=r.int_(body, key, "max_length", 1, 2000) if "max_length" in body else None,
        ))
    return tuple(out)


# Keycloak's built-in clients that realm/ may declare (admin-permissions belongs to fine-grained permissions).
BUILTIN_CLIENT_IDS = ("account", "account-console", "admin-cli", "broker", "realm-management",
                      "security-admin-console")


def _builtin_clients(r: _Reader, data: Any) -> tuple[BuiltinClient, ...]:
    entries = r.typed(data, "builtin_clients", dict, "a mapping of built-in client id to settings")
    out = []
    for client_id, body in entries.items():
        key = f"builtin_clients.{client_id}"
        if client_id not in BUILTIN_CLIENT_IDS:
            raise r.fail(key, f"not one of Keycloak's built-in clients ({', '.join(BUILTIN_CLIENT_IDS)})")
        body = r.mapping(body, key, {"enabled"}, {"enabled"})
        out.append(BuiltinClient(client_id, r.bool_(body, key, "enabled")))
    return tuple(out)


def _clients(r: _Reader, data: dict, attribute_names: set[str]) -> tuple[Client, ...]:
    top = r.mapping(data, "(top)", {"teleservices", "clients", "builtin_clients"}, {"teleservices"})
    out: list[Client] = []
    for section in ("teleservices", "clients"):
        entries = r.typed(top.get(section) or {}, section, dict, "a mapping of client id to settings")
        for client_id, body in entries.items():
            key = f"{section}.{client_id}"
            if not isinstance(client_id, str) or not _NAME.match(client_id):
                raise r.fail(key, "client ids are lower-case letters, digits and '-'")
            allowed = {"name", "url", "secret", "roles", "claims", "redirect_paths", "service_account_roles"}
            required = {"name", "url", "secret", "roles"} if section == "teleservices" else {"name", "secret"}
            body = r.mapping(body, key, allowed, required)
            roles = r.roles(body.get("roles") or {}, f"{key}.roles")
            if section == "teleservices" and not roles:
                raise r.fail(f"{key}.roles", "a teleservice needs at least one role (access is holding one)")
            claims = r.str_list(body.get("claims") or [], f"{key}.claims")
            for i, claim in enumerate(claims):
                if claim in ADHERENT_CLAIMS:
                    continue
                if claim not in CLAIMABLE or claim not in attribute_names:
                    raise r.fail(f"{key}.claims[{i}]",
                                 f"{claim!r} is not a declared user-profile attribute usable as a claim "
                                 f"({', '.join(CLAIMABLE)}) nor an adherent claim ({', '.join(ADHERENT_CLAIMS)})")
            sa_roles = r.composites(body.get("service_account_roles") or {}, f"{key}.service_account_roles")
            url = r.str_(body["url"], f"{key}.url").rstrip("/") if "url" in body else None
            if url is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
                raise r.fail(f"{key}.url", f"must be an absolute http(s) URL, got {url!r}")
            kind = "teleservice" if section == "teleservices" else ("portal" if url else "service")
            paths = r.str_list(body.get("redirect_paths") or ["/callback"], f"{key}.redirect_paths") if url else ()
            out.append(Client(client_id, r.str_(body["name"], f"{key}.name"), kind, url,
                              r.str_(body["secret"], f"{key}.secret"), paths, roles, claims, sa_roles))
    ids = [c.client_id for c in out]
    for cid in ids:
        if ids.count(cid) > 1:
            raise r.fail(cid, "client id declared twice")
    return tuple(out)
