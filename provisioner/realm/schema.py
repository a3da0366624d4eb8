"""realm/'s YAML files (realm.yaml, clients.yaml, user-profile.yaml): their schema, stated with pydantic, and their
reading into a RealmSpec (provisioner/realm/spec.py). Every problem is a RealmSpecError naming the file, the dotted
key (``realm.password_policy.max_length``, ``clients.portal.url``) and what to fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, Mapping

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr,
                      ValidationError, ValidationInfo, model_validator)
from pydantic_core import PydanticCustomError

from provisioner.errors import RealmSpecError
from provisioner.settings import Settings
from provisioner.realm import spec
from provisioner.realm.spec import ADHERENT_CLAIMS, BUILTIN_CLIENT_IDS, CLAIMABLE, FILES, REALM_MANAGEMENT_ROLES

# The only realm-management roles a delegate may hold: any view-*/manage-* role makes Keycloak skip the
# fine-grained admin permissions that confine the delegate to its own adherent (docs/security.md).
DELEGATE_SAFE_ROLES = frozenset({"query-users", "query-groups"})
_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}$")


def realm_spec(settings: Settings) -> spec.RealmSpec:
    """The realm/ of these settings (REALM_DIR), named after their realm, with their REALM_VAR_* variables."""
    return load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)


def load_realm_spec(directory: Path, realm_name: str, overrides: Mapping[str, str] | None = None) -> spec.RealmSpec:
    """realm/ as a RealmSpec; ``${NAME}`` is REALM_VAR_NAME (``overrides``), else the default under `variables`.
    Raises RealmSpecError naming file, key and problem."""
    raw = {name: _load_yaml(directory / name) for name in FILES}
    declared = raw["realm.yaml"].get("variables") or {}
    if not isinstance(declared, dict):
        raise RealmSpecError("realm.yaml", "variables", "must be a mapping of NAME: default")
    variables = {str(k): str(v) for k, v in declared.items()} | dict(overrides or {})
    profile = _validate(_ProfileFile, "user-profile.yaml", raw, variables=variables)
    clients = _validate(_ClientsFile, "clients.yaml", raw, variables=variables, attributes=set(profile.attributes))
    every_client = clients.teleservices | clients.clients
    realm = _validate(_RealmFile, "realm.yaml", raw, variables=variables,
                      client_roles={client_id: set(c.roles) for client_id, c in every_client.items()})
    r = realm.realm
    return spec.RealmSpec(
        realm_name, r.display_name, r.locales, r.default_locale, spec.PasswordPolicy(**r.password_policy.model_dump()),
        spec.BruteForce(**r.brute_force.model_dump()), spec.Events(**r.events.model_dump()),
        spec.Sessions(**r.sessions.model_dump()),
        realm_roles=tuple(spec.Role(name, role.description, role.composites)
                          for name, role in realm.realm_roles.items()),
        groups=tuple(spec.GroupSpec(name, group.realm_roles) for name, group in realm.groups.items()),
        clients=tuple(c.to_spec(cid) for cid, c in every_client.items()),
        attributes=tuple(spec.Attribute(name, **a.model_dump()) for name, a in profile.attributes.items()),
        builtin_clients=tuple(spec.BuiltinClient(cid, b.enabled) for cid, b in clients.builtin_clients.items()),
        second_factor=realm.second_factor.to_spec(),
        login_pages=spec.LoginPages(**r.login.model_dump()) if r.login else None)


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


# pydantic's error types -> our problem; any other is one of ours (_problem)
_PROBLEMS = {"missing": "is required", "int_type": "must be a whole number, got {input!r}",
             "bool_type": "must be true or false, got {input!r}", "string_type": "must be a string, got {input!r}",
             "tuple_type": "must be a list, got {input!r}", "dict_type": "must be a mapping, got {input!r}",
             "model_type": "must be a mapping, got {input!r}", "literal_error": "must be one of {expected}",
             "greater_than_equal": "must be at least {ge}, got {input}",
             "less_than_equal": "must be at most {le}, got {input}"}


def _validate(schema: type[_Model], file: str, raw: dict[str, dict], **context: Any) -> Any:
    """realm/'s ``file`` through its schema; pydantic's first error becomes the RealmSpecError."""
    try:
        return schema.model_validate(raw[file], context=context)
    except ValidationError as e:
        error = e.errors()[0]
    ctx = error.get("ctx", {})
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"] if p != "[key]")
    problem = _PROBLEMS.get(error["type"], "{problem}").format(input=error["input"], **ctx)
    raise RealmSpecError(file, (key + ctx.get("at", "")).lstrip("."), problem) from None


# --- the schema's words -------------------------------------------------------------------------------------------

def _problem(problem: str, at: str = "") -> PydanticCustomError:
    """A refusal in our words; ``at`` lengthens the key of the value checked (".max_length", ".owner[2]")."""
    return PydanticCustomError("realm_spec", "{problem}", {"problem": problem, "at": at})


def _rule(holds: Callable[[Any], Any], problem: str, before: bool = False) -> AfterValidator | BeforeValidator:
    """Refuses a value for which ``holds`` is false ("<problem>, got <value>"); ``before`` pydantic's own checks."""
    def check(value: Any) -> Any:
        if not holds(value):
            raise _problem(f"{problem}, got {value!r}")
        return value
    return BeforeValidator(check) if before else AfterValidator(check)


def _substitute(value: str, info: ValidationInfo) -> str:
    """``${NAME}`` -> the variable's value; an undeclared NAME is refused."""
    def variable(match: re.Match) -> str:
        if match.group(1) not in info.context["variables"]:
            raise _problem(f"uses ${{{match.group(1)}}} but no such variable is declared or set")
        return info.context["variables"][match.group(1)]
    return _VAR.sub(variable, value)


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise _problem(f"not a valid regular expression: {e}") from None
    return pattern


def _client_roles(roles: dict[str, tuple[str, ...]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """{client: [role, ...]} -> ((client, (role, ...)), ...), sorted; only realm-management's roles are known."""
    for owner, names in roles.items():
        for i, role in enumerate(names):
            if owner != "realm-management" or role not in REALM_MANAGEMENT_ROLES:
                raise _problem(f"role {owner}/{role} is not declared (known realm-management roles: "
                               f"{', '.join(sorted(REALM_MANAGEMENT_ROLES))})", f".{owner}[{i}]")
    return tuple((owner, tuple(sorted(names))) for owner, names in roles.items())


def _declared(key: str, names: Iterable[str], known: set[str], problem: str, what: str = "role ") -> None:
    """Refuses the first of ``names`` not ``known``, at ``key[i]`` (from the model checking)."""
    for i, name in enumerate(names):
        if name not in known:
            raise _problem(f"{what}{name!r} {problem}", f"{key}[{i}]")


class _Model(BaseModel):
    """A mapping of realm/: an unknown key is refused naming the allowed ones; an optional key left empty (null)
    takes its default, a section left empty is an empty mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, dict):
            return data  # pydantic refuses it: "must be a mapping"
        if unknown := sorted(set(data) - set(cls.model_fields), key=str):
            raise _problem(f"unknown key (allowed: {', '.join(sorted(cls.model_fields))})", f".{unknown[0]}")
        return {k: v for k, v in data.items() if v is not None or cls.model_fields[k].is_required()}


_Text = Annotated[StrictStr, AfterValidator(_substitute)]  # every string may use ${NAME}
_Texts = tuple[_Text, ...]
_Seconds = Annotated[StrictInt, Field(ge=1, le=10**7)]
_RoleName = Annotated[StrictStr, _rule(_NAME.match, "role names are lower-case letters, digits and '-'")]
_ClientId = Annotated[StrictStr, _rule(_NAME.match, "client ids are lower-case letters, digits and '-'")]
# A realm role's composites, a service account's roles: {client: [role, ...]}, read as Role.composites holds them.
_ClientRoles = Annotated[dict[StrictStr, _Texts], AfterValidator(_client_roles), _rule(
    lambda v: isinstance(v, dict), "must be a mapping of client id to role list", before=True)]
_Url = Annotated[_Text, AfterValidator(lambda url: url.rstrip("/")),
                 _rule(lambda url: re.match(r"^https?://[^/\s]+(/\S*)?$", url), "must be an absolute http(s) URL")]
_BuiltinId = Annotated[StrictStr, _rule(BUILTIN_CLIENT_IDS.__contains__,
                                        f"not one of Keycloak's built-in clients ({', '.join(BUILTIN_CLIENT_IDS)})")]


# --- one model per file, its sections nested as in the file -------------------------------------------------------

class _ProfileFile(_Model):
    class Attribute(_Model):
        display: _Text
        admin_only: StrictBool = False
        multivalued: StrictBool = False
        values: _Texts = ()
        pattern: _Text | None = None
        max_length: Annotated[StrictInt, Field(ge=1, le=2000)] | None = None

    attributes: dict[StrictStr, Attribute]


class _ClientsFile(_Model):
    class Client(_Model):
        name: _Text
        url: _Url | None = None
        secret: _Text
        roles: dict[_RoleName, _Text | None] = {}  # name: description
        claims: _Texts = ()
        redirect_paths: _Texts = ()  # none: /callback; a client without url has none
        service_account_roles: _ClientRoles = ()

        def to_spec(self, client_id: str) -> spec.Client:
            kind = "teleservice" if isinstance(self, _ClientsFile.Teleservice) else "portal" if self.url else "service"
            return spec.Client(client_id, self.name, kind, self.url, self.secret,
                               (self.redirect_paths or ("/callback",)) if self.url else (),
                               tuple(spec.Role(name, about or "") for name, about in self.roles.items()),
                               self.claims, self.service_account_roles)

    class Teleservice(Client):
        url: _Url
        roles: dict[_RoleName, _Text | None]

        @model_validator(mode="after")
        def _has_a_role(self) -> Any:
            if not self.roles:
                raise _problem("a teleservice needs at least one role (access is holding one)", ".roles")
            return self

    class Builtin(_Model):
        enabled: StrictBool

    teleservices: dict[_ClientId, Teleservice]
    clients: dict[_ClientId, Client] = {}
    builtin_clients: dict[_BuiltinId, Builtin] = {}

    @model_validator(mode="after")
    def _claims_declared_ids_once(self, info: ValidationInfo) -> Any:
        claimable = set(ADHERENT_CLAIMS) | (set(CLAIMABLE) & info.context["attributes"])
        for section in ("teleservices", "clients"):
            for client_id, client in getattr(self, section).items():
                _declared(f".{section}.{client_id}.claims", client.claims, claimable,
                          f"is not a declared user-profile attribute usable as a claim ({', '.join(CLAIMABLE)}) "
                          f"nor an adherent claim ({', '.join(ADHERENT_CLAIMS)})", what="")
        if twice := [client_id for client_id in self.clients if client_id in self.teleservices]:
            raise _problem("client id declared twice", f".{twice[0]}")
        return self


class _RealmFile(_Model):
    class PasswordPolicy(_Model):
        min_length: Annotated[StrictInt, Field(ge=1, le=128)]
        max_length: Annotated[StrictInt, Field(ge=1, le=128)]
        pattern: Annotated[_Text, AfterValidator(_regex)]
        not_username: StrictBool
        history: Annotated[StrictInt, Field(ge=0, le=50)]

        @model_validator(mode="after")
        def _max_not_below_min(self) -> Any:
            if self.max_length < self.min_length:
                raise _problem("must not be below min_length", ".max_length")
            return self

    class BruteForce(_Model):
        enabled: StrictBool
        max_failures: Annotated[StrictInt, Field(ge=1, le=100)]
        wait_increment_seconds: _Seconds
        max_wait_seconds: _Seconds
        failure_reset_seconds: _Seconds
        permanent_lockout: StrictBool

    class Events(_Model):
        login: StrictBool
        admin: StrictBool
        admin_details: StrictBool
        retention_days: Annotated[StrictInt, Field(ge=1, le=3650)]

    class Sessions(_Model):
        idle_seconds: Annotated[StrictInt, Field(ge=30, le=10**7)]
        max_seconds: Annotated[StrictInt, Field(ge=30, le=10**7)]
        access_token_seconds: Annotated[StrictInt, Field(ge=30, le=10**7)]
        rotate_refresh_tokens: StrictBool

    class Login(_Model):
        theme: _Text
        display_name_html: _Text
        forgot_password_url: Annotated[_Text, _rule(lambda url: re.match(r"^https?://[^/\s]+", url),
                                                    "must be an http(s) URL")]

    class Realm(_Model):
        display_name: _Text
        locales: _Texts
        default_locale: _Text
        password_policy: PasswordPolicy
        brute_force: BruteForce
        events: Events
        sessions: Sessions
        login: Login | None = None  # None: Keycloak's own pages, untouched

        @model_validator(mode="after")
        def _default_locale_offered(self) -> Any:
            if self.default_locale not in self.locales:
                raise _problem(f"{self.default_locale!r} is not one of realm.locales {list(self.locales)}",
                               ".default_locale")
            return self

    class RealmRole(_Model):
        """`name: description`, or `name: {description, composites: {client: [role, ...]}}`."""
        description: _Text
        composites: _ClientRoles = ()

        @model_validator(mode="before")
        @classmethod
        def _described(cls, data: Any) -> Any:
            return {"description": data or ""} if data is None or isinstance(data, str) else data

    class Group(_Model):
        realm_roles: _Texts = ()

    class Otp(_Model):
        algorithm: Literal["HmacSHA1", "HmacSHA256", "HmacSHA512"]
        digits: Annotated[StrictInt, Field(ge=6, le=8)]
        period: Annotated[StrictInt, Field(ge=15, le=120)]
        look_around: Annotated[StrictInt, Field(ge=0, le=2)]

    class SecondFactor(_Model):
        required_for: dict[StrictStr, _Texts] = {}  # `realm` or a client id -> role names
        otp: Otp | None = None
        levels: Annotated[dict[StrictStr, StrictInt], _rule(
            lambda levels: sorted(levels.values()) == [1, 2] and all(levels),
            "must name exactly two acr values, for levels 1 (password) and 2 (second factor)")] = {"password": 1,
                                                                                                  "2fa": 2}

        def to_spec(self) -> spec.SecondFactor:
            otp = {f"otp_{k}": v for k, v in self.otp.model_dump().items()} if self.otp else {}
            return spec.SecondFactor(tuple(role if owner == "realm" else f"{owner}.{role}"
                                           for owner, roles in self.required_for.items() for role in roles),
                                     tuple(sorted(self.levels.items(), key=lambda kv: kv[1])), **otp)

    variables: dict[Any, Any] = {}  # NAME: default, read before the rest (read_realm)
    realm: Realm
    realm_roles: dict[_RoleName, RealmRole] = {}
    groups: dict[StrictStr, Group] = {}
    second_factor: SecondFactor = SecondFactor()

    @model_validator(mode="after")
    def _roles_declared(self, info: ValidationInfo) -> Any:
        """A group's and the second factor's roles are declared; none held by every delegate would bypass the
        fine-grained admin permissions."""
        roles, client_roles = set(self.realm_roles), info.context["client_roles"]
        for name, group in self.groups.items():
            _declared(f".groups.{name}.realm_roles", group.realm_roles, roles,
                      f"is not declared under realm_roles ({', '.join(sorted(roles))})")
        for role in self.groups["delegates"].realm_roles if "delegates" in self.groups else ():
            for owner, names in self.realm_roles[role].composites:
                if unsafe := sorted(set(names) - DELEGATE_SAFE_ROLES):
                    raise _problem(f"{unsafe[0]!r} is held by every delegate and would bypass the fine-grained admin "
                                   f"permissions (allowed: {', '.join(sorted(DELEGATE_SAFE_ROLES))})",
                                   f".realm_roles.{role}.composites.{owner}")
        for owner, names in self.second_factor.required_for.items():
            key, known = f".second_factor.required_for.{owner}", roles if owner == "realm" else client_roles.get(owner)
            if known is None:
                raise _problem(f"not `realm` nor a declared client ({', '.join(sorted(client_roles))})", key)
            _declared(key, names, known, f"is not declared ({', '.join(sorted(known))})")
        return self
