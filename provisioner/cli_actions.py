"""CLI verbs for subscriptions, adherents, users and bulk import (registered on `cli`).

Each command parses, calls one provisioner action, renders. The person acting is given by
``--as USERNAME`` (or PROVISIONER_AS) and resolved in Keycloak (agent, or delegate of an adherent); the
audit trail records that person. Exit codes: 0 ok, 1 error, 2 usage, 3 findings (bad rows, overdue).
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable

import click
import yaml

from provisioner.cli import EXIT_DRIFT, Context, cli
from provisioner.errors import ProvisionerError, RuleViolation, ValidationError

EXIT_FINDINGS = EXIT_DRIFT


# --- plumbing ------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "fr") and hasattr(value, "en"):
        return {"fr": value.fr, "en": value.en}
    return value


def _error_payload(exc: ProvisionerError) -> dict:
    payload: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, ValidationError):
        payload["fields"] = {k: _plain(v) for k, v in exc.errors.items()}
    if isinstance(exc, RuleViolation):
        payload["fields"] = {exc.field: _plain(exc.message)}
    return payload


def _report_error(ctx: Context | None, exc: ProvisionerError) -> None:
    payload = _error_payload(exc)
    if ctx is not None and ctx.as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    elif "fields" in payload:
        for field, msg in payload["fields"].items():
            click.echo(f"error: {field}: {msg['fr']} / {msg['en']}", err=True)
    else:
        click.echo(f"error: {exc}", err=True)


def action(fn: Callable) -> Callable:
    """Our errors -> message naming the field and the rule, and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(Context)
        try:
            return fn(*args, **kwargs)
        except ProvisionerError as exc:
            _report_error(ctx, exc)
            sys.exit(exc.exit_code)
    return wrapper


as_option = click.option("--as", "as_user", envvar="PROVISIONER_AS", required=True, metavar="USERNAME",
                         help="The person acting (an agent's username, or a delegate's numéro); env PROVISIONER_AS.")


class Run:
    """What a command needs: settings, services, the service-account gateway, the resolved actor."""

    def __init__(self, ctx: Context, as_user: str | None):
        from provisioner.core import Services
        from provisioner.gateway import Gateway
        from provisioner.tenancy import resolve_actor

        self.ctx = ctx
        self.services = Services.from_settings(ctx.settings)
        self.gw = Gateway.as_service_account(ctx.settings)
        self.actor = resolve_actor(self.gw, as_user) if as_user else None

    def emit(self, human: str, machine: Any) -> None:
        self.ctx.emit(human, _plain(machine))


def _read_form(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise click.UsageError(f"{path} must hold a mapping (YAML or JSON)")
    return data


def _new_password(label: str) -> str:
    return click.prompt(label, hide_input=True, confirmation_prompt=True, err=True)  # prompts off stdout


# --- subscriptions -----------------------------------------------------------------------------------------
@cli.group()
def subscription() -> None:
    """Abonnement: submit, list pending (48-hour promise), approve, reject."""


@subscription.command("submit")
@click.argument("form_file", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
@action
def subscription_submit(ctx: Context, form_file: str) -> None:
    """Submit the form in FORM_FILE (YAML/JSON: company, responsable, delegate, categories).
    The delegate's password is asked twice (never in the file)."""
    from provisioner.subscriptions import (Company, DelegateForm, Responsable, SubscriptionForm,
                                           submit_subscription)

    data = _read_form(form_file)
    password = _new_password("Delegate password")
    try:
        form = SubscriptionForm(Company(**data.get("company", {})), Responsable(**data.get("responsable", {})),
                                DelegateForm(**data.get("delegate", {}), password=password,
                                             password_confirm=password),
                                tuple(data.get("categories") or ()))
    except TypeError as exc:
        raise click.UsageError(f"{form_file}: {exc}") from None
    run = Run(ctx, None)
    sub = submit_subscription(run.gw, run.services, form)
    run.emit(f"Subscription {sub.id} for adherent {sub.adherent}: pending", sub)


@subscription.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "all"]), default="pending")
@click.pass_obj
@action
def subscription_list(ctx: Context, status: str) -> None:
    """Subscriptions with their age; exit 3 when a pending one is past the 48-hour promise."""
    from provisioner.subscriptions import list_subscriptions

    run = Run(ctx, None)
    subs = list_subscriptions(run.services, None if status == "all" else status)
    lines = [f"{s.id:>5}  {s.adherent:<10}  {s.status:<8}  {s.age_hours:>7.1f} h  {s.form['company']['raison_sociale']}"
             f"{'  OVERDUE' if s.overdue else ''}" for s in subs]
    run.emit("\n".join(lines) or "No subscription.", subs)
    if any(s.overdue for s in subs):
        sys.exit(EXIT_FINDINGS)


@subscription.command("approve")
@click.argument("subscription_id", type=int)
@as_option
@click.pass_obj
@action
def subscription_approve(ctx: Context, subscription_id: int, as_user: str) -> None:
    """Approve: the adherent's groups, the delegate enabled and notified."""
    from provisioner.subscriptions import approve_subscription

    run = Run(ctx, as_user)
    sub = approve_subscription(run.gw, run.services, run.actor, subscription_id)
    run.emit(f"Subscription {sub.id} approved: adherent {sub.adherent} is active", sub)


@subscription.command("reject")
@click.argument("subscription_id", type=int)
@click.option("--reason", required=True)
@as_option
@click.pass_obj
@action
def subscription_reject(ctx: Context, subscription_id: int, reason: str, as_user: str) -> None:
    """Reject, with the reason mailed to the delegate."""
    from provisioner.subscriptions import reject_subscription

    run = Run(ctx, as_user)
    sub = reject_subscription(run.gw, run.services, run.actor, subscription_id, reason)
    run.emit(f"Subscription {sub.id} rejected", sub)


# --- adherents (agent, on signed letters) ------------------------------------------------------------------
@cli.group()
def adherent() -> None:
    """An adherent: show, delegate password/e-mail/replacement, suspension, E@syPaiement confirmations."""


@adherent.command("show")
@click.argument("numero")
@as_option
@click.pass_obj
@action
def adherent_show(ctx: Context, numero: str, as_user: str) -> None:
    from provisioner.adherents import get_adherent

    run = Run(ctx, as_user)
    a = get_adherent(run.gw, run.services, run.actor, numero)
    run.emit(f"{a.numero}  {a.raison_sociale}  status={a.status}  confirmations={a.easypaiement_confirmations}  "
             f"categories={','.join(a.categories)}  delegate={a.delegate_email} "
             f"({'enabled' if a.delegate_enabled else 'disabled'})", a)


@adherent.command("reset-delegate-password")
@click.argument("numero")
@as_option
@click.pass_obj
@action
def adherent_reset_password(ctx: Context, numero: str, as_user: str) -> None:
    """A temporary password for the delegate (asked twice; changed at next login)."""
    from provisioner.adherents import reset_delegate_password

    run = Run(ctx, as_user)
    password = _new_password("New temporary password")
    reset_delegate_password(run.gw, run.services, run.actor, numero, password, password)
    run.emit(f"Delegate password of {numero} reset (temporary)", {"adherent": numero, "reset": True})


@adherent.command("change-delegate-email")
@click.argument("numero")
@click.argument("email")
@as_option
@click.pass_obj
@action
def adherent_change_email(ctx: Context, numero: str, email: str, as_user: str) -> None:
    from provisioner.adherents import change_delegate_email

    run = Run(ctx, as_user)
    change_delegate_email(run.gw, run.services, run.actor, numero, email)
    run.emit(f"Delegate e-mail of {numero} is now {email}", {"adherent": numero, "email": email})


@adherent.command("replace-delegate")
@click.argument("numero")
@click.argument("delegate_file", type=click.Path(exists=True, dir_okay=False))
@as_option
@click.pass_obj
@action
def adherent_replace_delegate(ctx: Context, numero: str, delegate_file: str, as_user: str) -> None:
    """Réabonnement: the delegate block in DELEGATE_FILE (YAML/JSON); the new password is asked twice."""
    from provisioner.adherents import replace_delegate
    from provisioner.subscriptions import DelegateForm

    data = _read_form(delegate_file)
    run = Run(ctx, as_user)
    password = _new_password("New delegate's password")
    try:
        form = DelegateForm(**data.get("delegate", data), password=password, password_confirm=password)
    except TypeError as exc:
        raise click.UsageError(f"{delegate_file}: {exc}") from None
    replace_delegate(run.gw, run.services, run.actor, numero, form)
    run.emit(f"Delegate of {numero} replaced by {form.prenom} {form.nom}", {"adherent": numero,
                                                                             "delegate": form.public()})


@adherent.command("history")
@click.argument("numero")
@as_option
@click.pass_obj
@action
def adherent_history(ctx: Context, numero: str, as_user: str) -> None:
    """Who was the delegate, from when to when."""
    from provisioner.adherents import delegate_history

    run = Run(ctx, as_user)
    terms = delegate_history(run.services, run.actor, numero)
    run.emit("\n".join(f"{t.since:%Y-%m-%d %H:%M} → {f'{t.until:%Y-%m-%d %H:%M}' if t.until else 'now':<16}  "
                       f"{t.prenom} {t.nom} <{t.email}>" for t in terms) or "No delegate yet.", terms)


@adherent.command("suspend")
@click.argument("numero")
@click.option("--reason", default="")
@as_option
@click.pass_obj
@action
def adherent_suspend(ctx: Context, numero: str, reason: str, as_user: str) -> None:
    from provisioner.adherents import suspend_adherent

    run = Run(ctx, as_user)
    count = suspend_adherent(run.gw, run.services, run.actor, numero, reason)
    run.emit(f"Adherent {numero} suspended: {count} account(s) disabled", {"adherent": numero, "disabled": count})


@adherent.command("reactivate")
@click.argument("numero")
@as_option
@click.pass_obj
@action
def adherent_reactivate(ctx: Context, numero: str, as_user: str) -> None:
    from provisioner.adherents import reactivate_adherent

    run = Run(ctx, as_user)
    count = reactivate_adherent(run.gw, run.services, run.actor, numero)
    run.emit(f"Adherent {numero} reactivated: {count} account(s) re-enabled", {"adherent": numero, "enabled": count})


@adherent.command("confirmations")
@click.argument("numero")
@click.argument("count", type=int)
@as_option
@click.pass_obj
@action
def adherent_confirmations(ctx: Context, numero: str, count: int, as_user: str) -> None:
    """E@syPaiement: 1 or 2 confirmations (2 needs two validators)."""
    from provisioner.adherents import set_easypaiement_confirmations

    run = Run(ctx, as_user)
    set_easypaiement_confirmations(run.gw, run.services, run.actor, numero, count)
    run.emit(f"E@syPaiement confirmations of {numero}: {count}", {"adherent": numero, "confirmations": count})


# --- teleservice users -------------------------------------------------------------------------------------
@cli.group()
def user() -> None:
    """An adherent's teleservice users: create, list, show, find, password, access, details, disable..."""


def _user_line(u) -> str:
    extra = f" type={u.access.user_type}" if u.access.user_type else ""
    extra += f" provider={u.access.provider}" if u.access.provider else ""
    extra += f" categories={','.join(u.access.categories)}" if u.access.categories else ""
    return (f"{u.login:<24} {u.access.teleservice:<16} {','.join(u.access.powers) or '-':<36} "
            f"{'enabled' if u.enabled else 'DISABLED'}{' LOCKED' if u.locked else ''}  "
            f"{u.details.prenom} {u.details.nom} <{u.details.email}>{extra}")


access_options = [
    click.option("--teleservice", required=True,
                 type=click.Choice(["teledeclaration", "compte-adherent", "easypaiement", "eliquidation"])),
    click.option("--power", "powers", multiple=True,
                 help="Télédéclaration: fichier-preetabli / formulaire-saisie; E@syPaiement: ordonnateur / validateur."),
    click.option("--user-type", type=click.Choice(["interne", "externe"])),
    click.option("--provider", help="Télédéclaration externe: the provider (fiduciaire)."),
    click.option("--category", "categories", multiple=True, help="Télédéclaration; default: all active ones."),
]


def with_options(options: list) -> Callable:
    def deco(fn: Callable) -> Callable:
        for opt in reversed(options):
            fn = opt(fn)
        return fn
    return deco


def _access(teleservice, powers, user_type, provider, categories):
    from provisioner.rules import Access

    return Access(teleservice, tuple(powers), user_type, provider, tuple(categories))


@user.command("create")
@click.argument("numero")
@click.option("--login", required=True)
@click.option("--nom", required=True)
@click.option("--prenom", required=True)
@click.option("--email", required=True)
@click.option("--civilite", default="")
@click.option("--fonction", default="")
@click.option("--telephone", default="")
@with_options(access_options)
@click.option("--question", "questions", multiple=True, help="A secret question (give at least two); the answers "
              "are asked, hidden.")
@as_option
@click.pass_obj
@action
def user_create(ctx: Context, numero: str, login: str, nom: str, prenom: str, email: str, civilite: str,
                fonction: str, telephone: str, teleservice: str, powers, user_type, provider, categories, questions,
                as_user: str) -> None:
    """Create a teleservice user of adherent NUMERO (password asked twice; temporary)."""
    from provisioner.secret_questions import SecretAnswer
    from provisioner.users import NewUser, UserDetails, create_user

    run = Run(ctx, as_user)
    password = _new_password("Password")
    answers = tuple(SecretAnswer(q, click.prompt(f"Answer to '{q}'", hide_input=True, err=True)) for q in questions)
    new = NewUser(login, UserDetails(nom, prenom, email, civilite, fonction, telephone),
                  _access(teleservice, powers, user_type, provider, categories), password, password, answers)
    created = create_user(run.gw, run.services, run.actor, numero, new)
    run.emit(f"Created {_user_line(created)}", created)


@user.command("list")
@click.argument("numero")
@click.option("--teleservice", type=click.Choice(["teledeclaration", "compte-adherent", "easypaiement",
                                                  "eliquidation"]))
@as_option
@click.pass_obj
@action
def user_list(ctx: Context, numero: str, teleservice: str | None, as_user: str) -> None:
    """The adherent's users, per teleservice."""
    from provisioner.users import list_users

    run = Run(ctx, as_user)
    listed = list_users(run.gw, run.services, run.actor, numero, teleservice)
    human = "\n".join(f"{t} ({len(us)})\n" + "".join(f"  {_user_line(u)}\n" for u in us) for t, us in listed.items())
    run.emit(human.rstrip(), listed)


@user.command("show")
@click.argument("numero")
@click.argument("login")
@as_option
@click.pass_obj
@action
def user_show(ctx: Context, numero: str, login: str, as_user: str) -> None:
    from provisioner.users import get_user

    run = Run(ctx, as_user)
    run.emit(_user_line(u := get_user(run.gw, run.services, run.actor, numero, login)), u)


@user.command("find")
@click.argument("numero")
@click.argument("query")
@as_option
@click.pass_obj
@action
def user_find(ctx: Context, numero: str, query: str, as_user: str) -> None:
    """Show the login(s) of users whose name, e-mail or login contains QUERY."""
    from provisioner.users import find_logins

    run = Run(ctx, as_user)
    found = find_logins(run.gw, run.services, run.actor, numero, query)
    run.emit("\n".join(_user_line(u) for u in found) or "No user found.", found)


@user.command("set-password")
@click.argument("numero")
@click.argument("login")
@as_option
@click.pass_obj
@action
def user_set_password(ctx: Context, numero: str, login: str, as_user: str) -> None:
    """A new temporary password (asked twice); the user changes it at next login."""
    from provisioner.users import set_password

    run = Run(ctx, as_user)
    password = _new_password("New temporary password")
    set_password(run.gw, run.services, run.actor, numero, login, password, password)
    run.emit(f"Temporary password set for {login}", {"login": login, "temporary": True})


@user.command("access")
@click.argument("numero")
@click.argument("login")
@with_options(access_options)
@as_option
@click.pass_obj
@action
def user_access(ctx: Context, numero: str, login: str, teleservice: str, powers, user_type, provider, categories,
                as_user: str) -> None:
    """Change powers / type / provider / categories (same teleservice only)."""
    from provisioner.users import change_access

    run = Run(ctx, as_user)
    done = change_access(run.gw, run.services, run.actor, numero, login,
                         _access(teleservice, powers, user_type, provider, categories))
    run.emit(_user_line(done), done)


@user.command("update")
@click.argument("numero")
@click.argument("login")
@click.option("--nom", required=True)
@click.option("--prenom", required=True)
@click.option("--email", required=True)
@click.option("--civilite", default="")
@click.option("--fonction", default="")
@click.option("--telephone", default="")
@as_option
@click.pass_obj
@action
def user_update(ctx: Context, numero: str, login: str, nom: str, prenom: str, email: str, civilite: str,
                fonction: str, telephone: str, as_user: str) -> None:
    from provisioner.users import UserDetails, update_details

    run = Run(ctx, as_user)
    done = update_details(run.gw, run.services, run.actor, numero, login,
                          UserDetails(nom, prenom, email, civilite, fonction, telephone))
    run.emit(_user_line(done), done)


def _simple_user_command(name: str, fn_name: str, verb: str, doc: str) -> None:
    @user.command(name, help=doc)
    @click.argument("numero")
    @click.argument("login")
    @as_option
    @click.pass_obj
    @action
    def command(ctx: Context, numero: str, login: str, as_user: str) -> None:
        from provisioner import users

        run = Run(ctx, as_user)
        result = getattr(users, fn_name)(run.gw, run.services, run.actor, numero, login)
        run.emit(f"{login} {verb}" + (" (was locked)" if result is True else ""), {"login": login, "done": verb,
                                                                                  "result": result})


_simple_user_command("disable", "disable_user", "disabled", "Disable a departing user (sessions ended at once).")
_simple_user_command("enable", "enable_user", "enabled", "Re-enable a user.")
_simple_user_command("unlock", "unlock_user", "unlocked", "Clear a brute-force lockout.")


@user.command("set-questions")
@click.argument("numero")
@click.argument("login")
@click.option("--question", "questions", multiple=True, required=True, help="At least two; answers asked, hidden.")
@as_option
@click.pass_obj
@action
def user_set_questions(ctx: Context, numero: str, login: str, questions, as_user: str) -> None:
    """Replace the user's secret questions (answers hashed in our database, never in Keycloak)."""
    from provisioner.secret_questions import SecretAnswer
    from provisioner.users import set_secret_questions

    run = Run(ctx, as_user)
    answers = tuple(SecretAnswer(q, click.prompt(f"Answer to '{q}'", hide_input=True, err=True)) for q in questions)
    set_secret_questions(run.gw, run.services, run.actor, numero, login, answers)
    run.emit(f"Secret questions of {login} replaced", {"login": login, "questions": list(questions)})


# --- the audit trail (our database) ---------------------------------------------------------------------------
@cli.command("trail")
@click.option("--adherent")
@click.option("--action", "action_name", help="e.g. user.create, delegate.replace, subscription.approve")
@click.option("--actor")
@click.option("--target")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.pass_obj
@action
def trail(ctx: Context, adherent: str | None, action_name: str | None, actor: str | None, target: str | None,
          limit: int) -> None:
    """The audit trail of our actions, newest first: who (the person), adherent, what, target, outcome."""
    from provisioner.audit_trail import events

    run = Run(ctx, None)
    found = events(run.services.db, adherent, action_name, actor, target, limit)
    run.emit("\n".join(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.outcome:<7} {e.actor} ({e.actor_role})  {e.action}  "
                       f"{e.adherent or '-'}  {e.target or '-'}" + (f"  [{e.detail}]" if e.detail else "")
                       for e in found) or "No event.", found)


# --- bulk --------------------------------------------------------------------------------------------------
@cli.group()
def bulk() -> None:
    """Bulk onboarding from a CSV (columns in docs/provisioner-api.md; sample docs/sample-users.csv)."""


@bulk.command("import")
@click.argument("numero")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--concurrency", type=click.IntRange(1, 32), default=8, show_default=True)
@as_option
@click.pass_obj
@action
def bulk_import(ctx: Context, numero: str, csv_file: str, concurrency: int, as_user: str) -> None:
    """Create the users of CSV_FILE for adherent NUMERO; re-run after a crash or a fix creates only what is
    missing. Exit 3 when some rows were refused (each reported with its line)."""
    from provisioner.bulk import import_users

    run = Run(ctx, as_user)
    text = Path(csv_file).read_text(encoding="utf-8-sig")
    bar = _progress(ctx)
    report = import_users(run.gw, run.services, run.actor, numero, text, bar, concurrency)
    lines = [f"created: {len(report.created)}, already present: {len(report.already_present)}, "
             f"refused: {len(report.errors)}"]
    lines += [f"line {e.line}: {e.login or '-'}: {e.field}: {e.message.fr} / {e.message.en}" for e in report.errors]
    run.emit("\n".join(lines), {"created": report.created, "already_present": report.already_present,
                                "errors": report.errors})
    if report.errors:
        sys.exit(EXIT_FINDINGS)


def _progress(ctx: Context) -> Callable[[int, int], None]:
    """A progress bar on stderr (people), or one 'progress N/M' line per user with --json (machines)."""
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if ctx.as_json:
            click.echo(f"progress {done}/{total}", err=True)
            return
        if "bar" not in state:
            state["bar"] = click.progressbar(length=total, label="Creating users", file=sys.stderr)
            state["bar"].__enter__()
        state["bar"].update(1)
        if done == total:
            state["bar"].__exit__(None, None, None)
    return progress
