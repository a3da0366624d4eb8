"""The delegate's actions on their own adherent's teleservice users (an agent may do them too)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from provisioner import rules, secret_questions
from provisioner.context import Context
from provisioner.core import Services
from provisioner.errors import Conflict, KeycloakRejected, Message, RuleViolation
from provisioner.gateway import Gateway, User
from provisioner.rules import VALIDATEUR, Access, password_refused
from provisioner.secret_questions import SecretAnswer
from provisioner.tenancy import require_adherent
from provisioner.teleservice_users import (NewUser, TeleserviceUser, UserDetails, active_state, check_details,
                                          check_new_user, user_attributes, user_rep, validators_changed, view)
from provisioner.tree import AdherentState, adherent_members, enabled_validators, leaf_group, powers_of, set_enabled


# --- actions ------------------------------------------------------------------------------------------
def create_user(ctx: Context, new: NewUser) -> TeleserviceUser:
    """One POST: user with groups, attributes and (temporary) password; then the hashed secret answers
    (undone in Keycloak if they cannot be stored). Raises ValidationError, RuleViolation, TenantViolation."""
    with ctx.audited("user.create", new.login) as entry:
        state = active_state(ctx, new.login)
        rules.raise_if(check_new_user(ctx.services, new, state.categories))
        access = new.access.normalised(state.categories, ctx.services.catalogue)
        entry.after = {"login": new.login, **asdict(new.details), **asdict(access)}
        hashes = [secret_questions.hash_answer(a.answer) for a in new.secret_answers]
        existing = ctx.gw.user_by_username(new.login)
        if existing is not None:
            if not _unfinished_create(ctx.services, existing, ctx.adherent, new):
                raise RuleViolation("login", rules.login_taken(new.login))
            entry.detail = "resumed an interrupted creation"
            done = _finish_create(ctx.gw, ctx.services, existing, ctx.adherent, new, access, hashes)
            validators_changed(ctx, access.powers)
            return done
        user_id = _post_user(ctx.gw, user_rep(ctx.adherent, new, access))
        _store_or_undo(ctx.gw, ctx.services, user_id, new.secret_answers, hashes)
        validators_changed(ctx, access.powers)
        return TeleserviceUser(user_id, new.login, ctx.adherent, True, new.details, access)




def _unfinished_create(services: Services, user: User, adherent: str, new: NewUser) -> bool:
    """The same form, killed between Keycloak's POST and storing the answers: same adherent, teleservice and
    person, and no secret answers stored (every finished create_user stores them)."""
    return (user.attr("adherent") == adherent and user.attr("teleservice") == new.access.teleservice
            and (user.email or "").lower() == new.details.email.lower() and user.last_name == new.details.nom
            and user.first_name == new.details.prenom
            and not secret_questions.users_with_questions(services.db, [user.id]))


def _finish_create(gw: Gateway, services: Services, user: User, adherent: str, new: NewUser, access: Access,
                   hashes: list[str]) -> TeleserviceUser:
    """Complete a create_user a crash interrupted: the answers, and the password the form gives."""
    try:
        gw.set_password(user.id, new.password, temporary=True)
    except KeycloakRejected as exc:
        if not exc.password_history:  # history: it is already this password
            raise password_refused(exc) from None
    secret_questions.store(services.db, user.id, list(new.secret_answers), hashes)
    return view(gw.user(user.id), adherent, powers_of(gw, adherent, user.id))


def _post_user(gw: Gateway, rep: dict) -> str:
    try:
        return gw.create_user(rep)
    except Conflict:
        raise RuleViolation("login", rules.login_taken(rep["username"])) from None
    except KeycloakRejected as exc:
        raise password_refused(exc) if exc.about_password else exc from None


def _store_or_undo(gw: Gateway, services: Services, user_id: str, answers, hashes) -> None:
    try:
        secret_questions.store(services.db, user_id, list(answers), hashes)
    except Exception:
        gw.delete_user(user_id)  # compensate: the user exists with its answers, or not at all
        raise


def overview(ctx: Context, teleservice: str | None = None) -> tuple[AdherentState, dict[str, list[TeleserviceUser]]]:
    """The adherent (name, status, confirmations, categories) and its users grouped by teleservice (every
    teleservice listed, maybe empty), from one read of its tree's members (our Keycloak extension), whatever the
    number of users. RuleViolation('adherent') when not approved; Keycloak refuses another adherent's (Forbidden)."""
    with ctx.audited("user.list", teleservice, read=True):
        require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
        state, members = adherent_members(ctx.gw, ctx.adherent)
        clients = [teleservice] if teleservice else list(ctx.services.catalogue.ids)
        out: dict[str, list[TeleserviceUser]] = {c: [] for c in clients}
        for m in sorted(members, key=lambda m: m.user.username):
            if m.user.attr("adherent") == ctx.adherent and m.user.attr("teleservice") in clients:
                out[m.user.attr("teleservice")].append(view(m.user, ctx.adherent, m.roles(clients)))
        return state, out


def list_users(ctx: Context, teleservice: str | None = None) -> dict[str, list[TeleserviceUser]]:
    """The adherent's users grouped by teleservice (``overview`` without the adherent)."""
    return overview(ctx, teleservice)[1]


def get_user(ctx: Context, login: str) -> TeleserviceUser:
    """One of the adherent's users, from the read of its tree the delegate's pages make anyway (our extension,
    which also says whether brute-force detection locks it); a login not among its members goes through
    ``user_of`` (NotFound, or TenantViolation for another's)."""
    with ctx.audited("user.show", login, read=True):
        require_adherent(ctx.actor, ctx.adherent, login)
        _, members = adherent_members(ctx.gw, ctx.adherent)
        member = next((m for m in members if m.user.username == login.lower() and m.user.attr("adherent") == ctx.adherent
                       and m.user.attr("teleservice")), None)
        if member is None:
            user = ctx.user(login)
            powers = powers_of(ctx.gw, ctx.adherent, user.id)
            locked = bool(ctx.gw.brute_force_status(user.id).get("disabled"))
        else:
            user, powers, locked = member.user, member.roles(list(ctx.services.catalogue.ids)), member.locked
        return view(user, ctx.adherent, powers, locked)


def find_logins(ctx: Context, query: str) -> list[TeleserviceUser]:
    """'Show a user's login': the adherent's users whose name, e-mail or login contains query, from the read of its
    tree the delegate's pages make anyway (not a search of the realm's users, judged user by user)."""
    with ctx.audited("user.find_login", query, read=True):
        require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
        needle = query.casefold().strip()
        _, members = adherent_members(ctx.gw, ctx.adherent)
        clients = list(ctx.services.catalogue.ids)
        found = [m for m in members if m.user.attr("adherent") == ctx.adherent and m.user.attr("teleservice")
                 and any(needle in (v or "").casefold() for v in (
                     m.user.username, m.user.email, m.user.first_name, m.user.last_name,
                     f"{m.user.first_name} {m.user.last_name}"))]
        return [view(m.user, ctx.adherent, m.roles(clients), m.locked)
                for m in sorted(found, key=lambda m: m.user.username)]


def set_password(ctx: Context, login: str, password: str,
                 password_confirm: str | None = None) -> None:
    """A temporary password: the user must change it at next login. Policy checked first."""
    with ctx.audited("user.set_password", login):
        active_state(ctx, login)
        user = ctx.user(login)
        if password_confirm is None:
            problem = rules.check_password(ctx.services.password_policy, password, login)
            rules.raise_if({"password": problem} if problem else {})
        else:
            rules.raise_if(rules.check_password_pair(ctx.services.password_policy, password, password_confirm, login))
        try:
            ctx.gw.set_password(user.id, password, temporary=True)
        except KeycloakRejected as exc:
            raise password_refused(exc) from None


ONE_TELESERVICE = Message("Un identifiant ne sert qu'un seul téléservice : créez un autre identifiant pour ce "
                          "téléservice.", "One login serves exactly one teleservice: create another login for "
                          "that teleservice.")


def change_access(ctx: Context, login: str,
                  access: Access) -> TeleserviceUser:
    """New powers / type / provider / categories, same teleservice only (one login, one teleservice)."""
    with ctx.audited("user.change_access", login) as entry:
        state = active_state(ctx, login)
        user = ctx.user(login)
        if access.teleservice != user.attr("teleservice"):
            raise RuleViolation("teleservice", ONE_TELESERVICE)
        rules.raise_if(rules.check_access(access, state.categories, ctx.services.catalogue))
        new = access.normalised(state.categories, ctx.services.catalogue)
        old = powers_of(ctx.gw, ctx.adherent, user.id)
        before = view(user, ctx.adherent, old)
        entry.before, entry.after = asdict(before.access), asdict(new)
        if VALIDATEUR in old and VALIDATEUR not in new.powers and user.enabled:
            rules.check_validator_removal(state.confirmations, len(enabled_validators(ctx.gw, ctx.adherent)) - 1)
        _apply_access(ctx.gw, ctx.adherent, user, old, new)
        if (VALIDATEUR in old) != (VALIDATEUR in new.powers):
            validators_changed(ctx, (VALIDATEUR,))
        return view(ctx.gw.user(user.id), ctx.adherent, new.powers)


def _apply_access(gw: Gateway, adherent: str, user: User, old: tuple[str, ...], new: Access) -> None:
    """Attributes, then group changes; on failure, what was done is undone (compensation)."""
    undo: list[Callable[[], None]] = []
    try:
        rep = gw.user_rep(user.id)
        saved = dict(rep.get("attributes") or {})
        rep["attributes"] = {k: v for k, v in saved.items() if k not in ("user_type", "provider", "categories")}
        rep["attributes"] |= {k: v for k, v in user_attributes(adherent, UserDetails("", "", ""), new).items()
                              if k in ("user_type", "provider", "categories")}
        gw.update_user(user.id, rep)
        undo.append(lambda: gw.update_user(user.id, {**rep, "attributes": saved}))
        for role in set(new.powers) - set(old):
            gid = leaf_group(gw, adherent, new.teleservice, role).id
            gw.add_to_group(user.id, gid)
            undo.append(lambda gid=gid: gw.remove_from_group(user.id, gid))
        for role in set(old) - set(new.powers):
            gid = leaf_group(gw, adherent, new.teleservice, role).id
            gw.remove_from_group(user.id, gid)
            undo.append(lambda gid=gid: gw.add_to_group(user.id, gid))
    except Exception:
        for step in reversed(undo):
            step()
        raise


def _details_of(rep: dict) -> dict:
    attrs = rep.get("attributes") or {}
    first = lambda k: (attrs.get(k) or [""])[0]  # noqa: E731
    return {"nom": rep.get("lastName") or "", "prenom": rep.get("firstName") or "", "email": rep.get("email") or "",
            "civilite": first("civilite"), "fonction": first("fonction"), "telephone": first("telephone")}


def _with_details(rep: dict, details: UserDetails) -> dict:
    """The user's representation with new details (every other attribute kept)."""
    attrs = {k: v for k, v in (rep.get("attributes") or {}).items() if k not in ("civilite", "fonction",
                                                                                 "telephone")}
    attrs |= {k: [v] for k, v in (("civilite", details.civilite), ("fonction", details.fonction),
                                  ("telephone", details.telephone)) if v}
    return {**rep, "firstName": details.prenom, "lastName": details.nom, "email": details.email,
            "attributes": attrs}


def _put_details(gw: Gateway, user_id: str, rep: dict, details: UserDetails) -> None:
    try:
        gw.update_user(user_id, _with_details(rep, details))
    except KeycloakRejected as exc:  # Keycloak's user profile is the final judge
        raise RuleViolation("details", Message(f"Refusé par Keycloak : {exc}", f"Refused by Keycloak: {exc}")) \
            from None


def update_details(ctx: Context, login: str,
                   details: UserDetails) -> TeleserviceUser:
    """Name, e-mail, civilité, fonction, phone (one PUT)."""
    with ctx.audited("user.update_details", login) as entry:
        active_state(ctx, login)
        user = ctx.user(login)
        rules.raise_if(check_details(details))
        rep = ctx.gw.user_rep(user.id)
        entry.before, entry.after = _details_of(rep), asdict(details)
        _put_details(ctx.gw, user.id, rep, details)
        return view(ctx.gw.user(user.id), ctx.adherent, powers_of(ctx.gw, ctx.adherent, user.id))


@dataclass(frozen=True)
class QuestionChoice:
    """One secret question of a form: a suggested one or one's own (not both), and its answer."""

    suggested: str = ""
    own: str = ""
    answer: str = field(default="", repr=False)

    @property
    def question(self) -> str:
        return rules.question_of(self.suggested, self.own)


def check_edit(details: UserDetails, questions: tuple[QuestionChoice, ...] | None) -> dict[str, Message]:
    """Every field of the edit form (no I/O); ``questions`` None: the questions are kept."""
    errors = check_details(details)
    if questions is None:
        return errors
    choices = rules.collect({f"own_question{i}": rules.check_question_choice(q.suggested, q.own)
                             for i, q in enumerate(questions, 1)})
    return errors | (choices or rules.check_secret_questions([(q.question, q.answer) for q in questions]))


def edit_user(ctx: Context, login: str, details: UserDetails,
              questions: tuple[QuestionChoice, ...] | None = None) -> TeleserviceUser:
    """The delegate's edit page: the details and, when given, new secret questions replacing the old ones. Every
    field is checked before anything changes; then one PUT, then the hashed answers (the PUT undone if they cannot
    be stored). The trail gets the details and the questions, never the answers."""
    with ctx.audited("user.edit", login) as entry:
        active_state(ctx, login)
        user = ctx.user(login)
        rules.raise_if(check_edit(details, questions))
        answers = [SecretAnswer(q.question, q.answer) for q in questions or () if q.question or q.answer.strip()]
        hashes = [secret_questions.hash_answer(a.answer) for a in answers]
        rep = ctx.gw.user_rep(user.id)
        entry.before, entry.after = _details_of(rep), asdict(details)
        if questions is not None:
            entry.before["questions"] = secret_questions.questions_of(ctx.services.db, user.id)
            entry.after["questions"] = [a.question for a in answers]
        _put_details(ctx.gw, user.id, rep, details)
        if questions is not None:
            try:
                secret_questions.store(ctx.services.db, user.id, answers, hashes)
            except Exception:
                ctx.gw.update_user(user.id, rep)  # compensate: the previous details are back
                raise
        return view(ctx.gw.user(user.id), ctx.adherent, powers_of(ctx.gw, ctx.adherent, user.id))


def secret_questions_of(ctx: Context, login: str) -> list[str]:
    """The user's current secret questions (never the answers), after the tenant check (``get_user``: the read of
    the adherent's tree its page makes anyway)."""
    user = get_user(ctx, login)
    return secret_questions.questions_of(ctx.services.db, user.id)


def set_secret_questions(ctx: Context, login: str,
                         answers: tuple[SecretAnswer, ...]) -> None:
    """Replace the user's secret questions (answers hashed, never in Keycloak nor in the audit trail)."""
    with ctx.audited("user.set_secret_questions", login) as entry:
        user = ctx.user(login)
        rules.raise_if(rules.check_secret_questions([(a.question, a.answer) for a in answers]))
        entry.after = {"questions": [a.question for a in answers]}
        secret_questions.store(ctx.services.db, user.id, list(answers))




def enable_user(ctx: Context, login: str) -> None:
    with ctx.audited("user.enable", login) as entry:
        active_state(ctx, login)
        user = ctx.user(login)
        entry.before, entry.after = {"enabled": user.enabled}, {"enabled": True}
        set_enabled(ctx.gw, user.id, True)
        validators_changed(ctx, powers_of(ctx.gw, ctx.adherent, user.id))




def unlock_user(ctx: Context, login: str) -> bool:
    """Clear a brute-force lockout; returns whether the user was locked."""
    with ctx.audited("user.unlock", login) as entry:
        active_state(ctx, login)
        user = ctx.user(login)
        locked = bool(ctx.gw.brute_force_status(user.id).get("disabled"))
        ctx.gw.clear_brute_force(user.id)
        entry.before, entry.after = {"locked": locked}, {"locked": False}
        return locked
