"""`provisioner user`: an adherent's teleservice users — a delegate's verbs (and an agent's)."""

from __future__ import annotations

import click
from provisioner.cli.base import Run, TeleserviceType, cli, new_password, options, plain, verb


@cli.group()
def user() -> None:
    """An adherent's teleservice users: create, list, show, find, password, access, details, disable..."""


def _user_line(u, enrolled: dict[str, bool] | None = None) -> str:
    """One user; ``enrolled`` (login -> has a second factor) adds "2FA: ..." for the users who must have one."""
    extra = f" type={u.access.user_type}" if u.access.user_type else ""
    extra += f" provider={u.access.provider}" if u.access.provider else ""
    extra += f" categories={','.join(u.access.categories)}" if u.access.categories else ""
    return (f"{u.login:<24} {u.access.teleservice:<16} {','.join(u.access.powers) or '-':<36} "
            f"{'enabled' if u.enabled else 'DISABLED'}{' LOCKED' if u.locked else ''}  "
            f"{u.details.prenom} {u.details.nom} <{u.details.email}>{extra}{_second_factor(u, enrolled)}")


def _second_factor(u, enrolled: dict[str, bool] | None) -> str:
    if not enrolled or u.login not in enrolled:
        return ""
    return "  2FA: enrolled" if enrolled[u.login] else "  2FA: not enrolled"


def _with_second_factor(u, enrolled: dict[str, bool]) -> dict:
    """The user as JSON, with ``second_factor``: true/false for the users who must have one, else null."""
    return {**plain(u), "second_factor": enrolled.get(u.login)}


def _enrolment(run: Run, numero: str, listed) -> dict[str, bool]:
    from provisioner.second_factor import enrolment

    return enrolment(run.context(numero), listed)


TELESERVICES = TeleserviceType()  # realm/'s teleservices
access_options = options(
    click.option("--teleservice", required=True, type=TELESERVICES),
    click.option("--power", "powers", multiple=True,
                 help="Télédéclaration: fichier-preetabli / formulaire-saisie; E@syPaiement: ordonnateur / validateur."),
    click.option("--user-type", type=click.Choice(["interne", "externe"])),
    click.option("--provider", help="Télédéclaration externe: the provider (fiduciaire)."),
    click.option("--category", "categories", multiple=True, help="Télédéclaration; default: all active ones."),
)
detail_options = options(
    click.option("--nom", required=True),
    click.option("--prenom", required=True),
    click.option("--email", required=True),
    click.option("--civilite", default=""),
    click.option("--fonction", default=""),
    click.option("--telephone", default=""),
)


def _access(teleservice, powers, user_type, provider, categories):
    from provisioner.rules import Access

    return Access(teleservice, tuple(powers), user_type, provider, tuple(categories))


def _answers(questions) -> tuple:
    from provisioner.secret_questions import SecretAnswer

    return tuple(SecretAnswer(q, click.prompt(f"Answer to '{q}'", hide_input=True, err=True)) for q in questions)


@verb(user, "create")
@click.argument("numero")
@click.option("--login", required=True)
@detail_options
@access_options
@click.option("--question", "questions", multiple=True, help="A secret question (give at least two); the answers "
              "are asked, hidden.")
def user_create(run: Run, numero: str, login: str, nom: str, prenom: str, email: str, civilite: str,
                fonction: str, telephone: str, teleservice: str, powers, user_type, provider, categories,
                questions) -> None:
    """Create a teleservice user of adherent NUMERO (password asked twice; temporary)."""
    from provisioner import rules
    from provisioner.users import create_user
    from provisioner.teleservice_users import NewUser, UserDetails

    password = new_password("Password")
    # The password against the realm's policy before the secret answers are asked (not after typing them).
    rules.raise_if(rules.check_password_pair(run.services.password_policy, password, password, login))
    new = NewUser(login, UserDetails(nom, prenom, email, civilite, fonction, telephone),
                  _access(teleservice, powers, user_type, provider, categories), password, password,
                  _answers(questions))
    created = create_user(run.context(numero), new)
    run.emit(f"Created {_user_line(created)}", created)


@verb(user, "list")
@click.argument("numero")
@click.option("--teleservice", type=TELESERVICES)
def user_list(run: Run, numero: str, teleservice: str | None) -> None:
    """The adherent's users, per teleservice."""
    from provisioner.users import list_users

    listed = list_users(run.context(numero), teleservice)
    enrolled = _enrolment(run, numero, [u for us in listed.values() for u in us])
    human = "\n".join(f"{t} ({len(us)})\n" + "".join(f"  {_user_line(u, enrolled)}\n" for u in us)
                      for t, us in listed.items())
    run.emit(human.rstrip(), {t: [_with_second_factor(u, enrolled) for u in us] for t, us in listed.items()})


@verb(user, "show")
@click.argument("numero")
@click.argument("login")
def user_show(run: Run, numero: str, login: str) -> None:
    from provisioner.users import get_user

    u = get_user(run.context(numero), login)
    enrolled = _enrolment(run, numero, [u])
    run.emit(_user_line(u, enrolled), _with_second_factor(u, enrolled))


@verb(user, "find")
@click.argument("numero")
@click.argument("query")
def user_find(run: Run, numero: str, query: str) -> None:
    """Show the login(s) of users whose name, e-mail or login contains QUERY."""
    from provisioner.users import find_logins

    found = find_logins(run.context(numero), query)
    run.emit("\n".join(_user_line(u) for u in found) or "No user found.", found)


@verb(user, "set-password")
@click.argument("numero")
@click.argument("login")
def user_set_password(run: Run, numero: str, login: str) -> None:
    """A new temporary password (asked twice); the user changes it at next login."""
    from provisioner.users import set_password

    password = new_password("New temporary password")
    set_password(run.context(numero), login, password, password)
    run.emit(f"Temporary password set for {login}", {"login": login, "temporary": True})


@verb(user, "access")
@click.argument("numero")
@click.argument("login")
@access_options
def user_access(run: Run, numero: str, login: str, teleservice: str, powers, user_type, provider,
                categories) -> None:
    """Change powers / type / provider / categories (same teleservice only)."""
    from provisioner.users import change_access

    done = change_access(run.context(numero), login,
                         _access(teleservice, powers, user_type, provider, categories))
    run.emit(_user_line(done), done)


@verb(user, "update")
@click.argument("numero")
@click.argument("login")
@detail_options
def user_update(run: Run, numero: str, login: str, nom: str, prenom: str, email: str, civilite: str,
                fonction: str, telephone: str) -> None:
    from provisioner.users import update_details
    from provisioner.teleservice_users import UserDetails

    done = update_details(run.context(numero), login,
                          UserDetails(nom, prenom, email, civilite, fonction, telephone))
    run.emit(_user_line(done), done)


def _simple_user_command(name: str, fn_name: str, done: str, doc: str) -> None:
    @verb(user, name, help=doc)
    @click.argument("numero")
    @click.argument("login")
    def command(run: Run, numero: str, login: str) -> None:
        from provisioner import users

        result = getattr(users, fn_name)(run.context(numero), login)
        run.emit(f"{login} {done}" + (" (was locked)" if result is True else ""), {"login": login, "done": done,
                                                                                  "result": result})


@verb(user, "disable")
@click.argument("numero")
@click.argument("login")
@click.option("--confirm", is_flag=True, help="Disable a validator even when it leaves a 2-confirmation adherent "
              "with fewer than two enabled validators (refused with the warning otherwise).")
def user_disable(run: Run, numero: str, login: str, confirm: bool) -> None:
    """Disable a departing user (sessions ended at once)."""
    from provisioner.errors import Message, NeedsConfirmation
    from provisioner.teleservice_users import disable_user

    try:
        disable_user(run.context(numero), login, confirmed=confirm)
    except NeedsConfirmation as exc:  # the warning, and how to go ahead
        raise NeedsConfirmation(exc.field, Message(exc.message.fr + " Relancez avec --confirm pour désactiver "
                                                   "quand même.", exc.message.en + " Run again with --confirm to "
                                                   "disable anyway.")) from None
    run.emit(f"{login} disabled", {"login": login, "done": "disabled", "result": None})


_simple_user_command("enable", "enable_user", "enabled", "Re-enable a user.")
_simple_user_command("unlock", "unlock_user", "unlocked", "Clear a brute-force lockout.")


@verb(user, "set-questions")
@click.argument("numero")
@click.argument("login")
@click.option("--question", "questions", multiple=True, required=True, help="At least two; answers asked, hidden.")
def user_set_questions(run: Run, numero: str, login: str, questions) -> None:
    """Replace the user's secret questions (answers hashed in our database, never in Keycloak)."""
    from provisioner.users import set_secret_questions

    set_secret_questions(run.context(numero), login, _answers(questions))
    run.emit(f"Secret questions of {login} replaced", {"login": login, "questions": list(questions)})


@verb(user, "reset-second-factor")
@click.argument("numero")
@click.argument("login")
def user_reset_second_factor(run: Run, numero: str, login: str) -> None:
    """A lost phone: remove the user's second factor (e.g. a validator's TOTP) and end its sessions; it enrols
    again at its next login."""
    from provisioner.second_factor import reset_user_second_factor

    removed = reset_user_second_factor(run.context(numero), login)
    run.emit(f"Second factor of {login} removed ({', '.join(removed) or 'none was enrolled'}); enrolled again at "
             "next login", {"login": login, "removed": removed})
