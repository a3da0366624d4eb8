"""A teleservice user of an adherent, shared by the actions on them (users, bulk, reviews, second factor): the form,
the checks and the Keycloak representation (pure), the view the pages show, and what several actions do to one
(a departure: ``disable_user``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from provisioner import easypaiement, rules
from provisioner.context import Context
from provisioner.core import Services
from provisioner.errors import Message
from provisioner.gateway import User
from provisioner.rules import VALIDATEUR, Access
from provisioner.secret_questions import SecretAnswer
from provisioner.tenancy import require_adherent
from provisioner.tree import (AdherentState, adherent_state, enabled_validators, leaf_path, powers_of, require_active,
                              set_enabled)


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


def check_details(d: UserDetails) -> dict[str, Message]:
    return rules.collect({
        "civilite": rules.check_civilite(d.civilite),
        "nom": rules.check_name(d.nom),
        "prenom": rules.check_name(d.prenom),
        "fonction": rules.check_text(d.fonction, False, 80),
        "email": rules.check_email(d.email),
        "telephone": rules.check_phone(d.telephone),
    })


def check_new_user(services: Services, new: NewUser, active_categories: tuple[str, ...]) -> dict[str, Message]:
    """Every field of the form (no I/O): login, details, password, secret questions, teleservice access."""
    errors = rules.collect({"login": rules.check_login(new.login)}) | check_details(new.details)
    if new.password_confirm is None:
        problem = rules.check_password(services.password_policy, new.password, new.login)
        errors |= {"password": problem} if problem else {}
    else:
        errors |= rules.check_password_pair(services.password_policy, new.password, new.password_confirm, new.login)
    errors |= rules.check_secret_questions([(a.question, a.answer) for a in new.secret_answers])
    return errors | rules.check_access(new.access, active_categories, services.catalogue)


def user_attributes(adherent: str, d: UserDetails, access: Access) -> dict[str, list[str]]:
    """The attributes of a (normalised) access: a declaration service's type, categories and provider."""
    attrs = {"adherent": [adherent], "teleservice": [access.teleservice]}
    attrs |= {k: [v] for k, v in (("civilite", d.civilite), ("fonction", d.fonction),
                                  ("telephone", d.telephone)) if v}
    if access.user_type:
        attrs["user_type"] = [access.user_type]
        attrs["categories"] = list(access.categories)
        if access.provider:
            attrs["provider"] = [access.provider]
    return attrs


def user_rep(adherent: str, new: NewUser, access: Access) -> dict:
    """User, groups, attributes and (temporary) password in ONE representation: one POST, all or nothing."""
    d = new.details
    return {"username": new.login, "enabled": True, "email": d.email, "emailVerified": True,
            "firstName": d.prenom, "lastName": d.nom, "attributes": user_attributes(adherent, d, access),
            "groups": [leaf_path(adherent, access.teleservice, p) for p in access.powers],
            "credentials": [{"type": "password", "value": new.password, "temporary": True}]}


def view(user: User, adherent: str, powers: tuple[str, ...], locked: bool = False) -> TeleserviceUser:
    details = UserDetails(user.last_name or "", user.first_name or "", user.email or "", user.attr("civilite") or "",
                          user.attr("fonction") or "", user.attr("telephone") or "")
    access = Access(user.attr("teleservice") or "", powers, user.attr("user_type"), user.attr("provider"),
                    tuple(user.attributes.get("categories") or ()))
    return TeleserviceUser(user.id, user.username, adherent, user.enabled, details, access, locked)


def public(view: TeleserviceUser) -> dict:
    return {"login": view.login, "enabled": view.enabled, **asdict(view.details), **asdict(view.access)}


def active_state(ctx: Context, target: str) -> AdherentState:
    """The request's adherent, after the tenant check on ``target``; RuleViolation unless active."""
    require_adherent(ctx.actor, ctx.adherent, target)
    state = adherent_state(ctx.gw, ctx.adherent)
    require_active(state)
    return state


def validators_changed(ctx: Context, powers: tuple[str, ...]) -> None:
    """After a change touching a validator: keep the adherent's E@syPaiement completeness record up to date."""
    if VALIDATEUR in powers:
        easypaiement.record(ctx.gw, ctx.adherent, ctx.automation)


def disable_user(ctx: Context, login: str,
                 confirmed: bool = False) -> None:
    """A departing user: disabled and logged out at once. A validator whose departure leaves a 2-confirmation
    adherent with fewer than two needs ``confirmed`` (NeedsConfirmation carries the warning to show first)."""
    with ctx.audited("user.disable", login) as entry:
        state = active_state(ctx, login)
        user = ctx.user(login)
        validator = user.enabled and VALIDATEUR in powers_of(ctx.gw, ctx.adherent, user.id)
        if validator:
            rules.check_validator_departure(state.confirmations, len(enabled_validators(ctx.gw, ctx.adherent)) - 1,
                                            confirmed)
        entry.before, entry.after = {"enabled": user.enabled}, {"enabled": False}
        set_enabled(ctx.gw, user.id, False)
        ctx.gw.logout_user(user.id)
        after = easypaiement.record(ctx.gw, ctx.adherent, ctx.automation) if validator else None
        if after is not None and after.missing:
            entry.after["validators_missing"] = after.missing
            entry.detail = "confirmed: leaves the adherent without enough validators"
