"""`provisioner adherent`: an agent's actions on signed letters, suspension, E@syPaiement confirmations."""

from __future__ import annotations

import sys

import click
from provisioner.cli.base import EXIT_FINDINGS, Run, cli, from_mapping, new_password, read_form, verb


@cli.group()
def adherent() -> None:
    """An adherent: show, delegate password/e-mail/second factor/replacement, suspension, E@syPaiement confirmations."""


@verb(adherent, "show")
@click.argument("numero")
def adherent_show(run: Run, numero: str) -> None:
    from provisioner.adherents import get_adherent

    a = get_adherent(run.context(numero))
    run.emit(f"{a.numero}  {a.raison_sociale}  status={a.status}  confirmations={a.easypaiement_confirmations}  "
             f"categories={','.join(a.categories)}  delegate={a.delegate_email} "
             f"({'enabled' if a.delegate_enabled else 'disabled'})", a)


@verb(adherent, "reset-delegate-password")
@click.argument("numero")
def adherent_reset_password(run: Run, numero: str) -> None:
    """A temporary password for the delegate (asked twice; changed at next login)."""
    from provisioner.adherents import reset_delegate_password

    password = new_password("New temporary password")
    reset_delegate_password(run.context(numero), password, password)
    run.emit(f"Delegate password of {numero} reset (temporary)", {"adherent": numero, "reset": True})


@verb(adherent, "reset-delegate-second-factor")
@click.argument("numero")
def adherent_reset_second_factor(run: Run, numero: str) -> None:
    """Signed letter (lost phone): remove the delegate's second factor and end its sessions; it enrols again at its
    next portal login."""
    from provisioner.second_factor import reset_delegate_second_factor

    removed = reset_delegate_second_factor(run.context(numero))
    run.emit(f"Second factor of the delegate of {numero} removed ({', '.join(removed) or 'none was enrolled'})",
             {"adherent": numero, "removed": removed})


@verb(adherent, "change-delegate-email")
@click.argument("numero")
@click.argument("email")
def adherent_change_email(run: Run, numero: str, email: str) -> None:
    from provisioner.adherents import change_delegate_email

    change_delegate_email(run.context(numero), email)
    run.emit(f"Delegate e-mail of {numero} is now {email}", {"adherent": numero, "email": email})


@verb(adherent, "replace-delegate")
@click.argument("numero")
@click.argument("delegate_file", type=click.Path(exists=True, dir_okay=False))
def adherent_replace_delegate(run: Run, numero: str, delegate_file: str) -> None:
    """Réabonnement: the new delegate in DELEGATE_FILE (YAML/JSON: nom, prenom, fonction, email, ...). The new
    delegate chooses its password through a link mailed to it (valid 72 h). The same person (same name and
    e-mail) again: its details only, no new password."""
    from provisioner.adherents import replace_delegate
    from provisioner.delegates import NewDelegate

    data = read_form(delegate_file)
    block = data.get("delegate", data)
    form = from_mapping(NewDelegate, block, "delegate", delegate_file, password="", password_confirm="")
    mailed = replace_delegate(run.context(numero), form)
    who = f"{form.prenom} {form.nom}"
    if mailed is None:
        human = f"Delegate of {numero}: details of {who} updated (same person: password unchanged)"
    elif mailed.sent:
        human = (f"Delegate of {numero} replaced by {who}; a link to choose the password was mailed to {form.email} "
                 f"(valid until {mailed.expires_at:%Y-%m-%d %H:%M} UTC)")
    else:
        human = (f"Delegate of {numero} replaced by {who}; the password link could NOT be mailed ({mailed.error}): "
                 f"run `provisioner adherent send-password-link {numero}` once the mail server answers")
    run.emit(human, {"adherent": numero, "delegate": form.public(), "replaced": mailed is not None,
                     "link_mailed": None if mailed is None else mailed.sent})
    if mailed is not None and not mailed.sent:
        sys.exit(EXIT_FINDINGS)


@verb(adherent, "send-password-link")
@click.argument("numero")
def adherent_send_password_link(run: Run, numero: str) -> None:
    """A new link for the delegate to choose its password (the earlier ones stop working). Exit 3 when the mail
    server did not take it."""
    from provisioner.adherents import send_delegate_link

    mailed = send_delegate_link(run.context(numero))
    if not mailed.sent:
        run.emit(f"The link could not be mailed: {mailed.error}", {"adherent": numero, "link_mailed": False})
        sys.exit(EXIT_FINDINGS)
    run.emit(f"A new password link was mailed to the delegate of {numero} (valid until "
             f"{mailed.expires_at:%Y-%m-%d %H:%M} UTC)", {"adherent": numero, "link_mailed": True,
                                                          "expires_at": mailed.expires_at.isoformat()})


@verb(adherent, "categories")
@click.argument("numero")
@click.option("--add", "added", multiple=True, metavar="CATEGORY", help="A category to activate (repeatable).")
@click.option("--retire", "retired", multiple=True, metavar="CATEGORY", help="A category to retire (repeatable).")
def adherent_categories(run: Run, numero: str, added: tuple[str, ...], retired: tuple[str, ...]) -> None:
    """The adherent's active staff categories (Télédéclaration): add or retire some; the users who still declare a
    retired one are listed (exit 3). Without options: show them."""
    from provisioner.adherents import get_adherent, set_categories

    current = get_adherent(run.context(numero)).categories
    unknown = [c for c in retired if c not in current]
    if unknown:
        raise click.BadParameter(f"'{unknown[0]}' is not an active category of {numero} (active: "
                                 f"{', '.join(current)})", param_hint="--retire")
    wanted = tuple(c for c in (*current, *added) if c not in retired)
    change = set_categories(run.context(numero), wanted)
    human = f"Active categories of {numero}: {', '.join(change.categories)}"
    if change.flagged:
        human += (f"\n{len(change.flagged)} Télédéclaration user(s) still declare a retired category (their delegate "
                  f"should change it): {', '.join(change.flagged)}")
    run.emit(human, {"adherent": numero, "categories": list(change.categories), "added": list(change.added),
                     "retired": list(change.retired), "flagged": list(change.flagged)})
    if change.flagged:
        sys.exit(EXIT_FINDINGS)


@verb(adherent, "history")
@click.argument("numero")
def adherent_history(run: Run, numero: str) -> None:
    """Who was the delegate, from when to when."""
    from provisioner.adherents import delegate_history

    terms = delegate_history(run.services, run.actor, numero)
    run.emit("\n".join(f"{t.since:%Y-%m-%d %H:%M} → {f'{t.until:%Y-%m-%d %H:%M}' if t.until else 'now':<16}  "
                       f"{t.prenom} {t.nom} <{t.email}>" for t in terms) or "No delegate yet.", terms)


@verb(adherent, "suspend")
@click.argument("numero")
@click.option("--reason", default="")
def adherent_suspend(run: Run, numero: str, reason: str) -> None:
    from provisioner.adherents import suspend_adherent

    count = suspend_adherent(run.context(numero), reason)
    run.emit(f"Adherent {numero} suspended: {count} account(s) disabled", {"adherent": numero, "disabled": count})


@verb(adherent, "terminate")
@click.argument("numero")
@click.option("--reason", required=True, help="The signed letter it follows (date, reference).")
def adherent_terminate(run: Run, numero: str, reason: str) -> None:
    """Résiliation on a signed letter: every account disabled (the delegate's too), the delegation removed, the
    history kept. Reversible with `reinstate` for TERMINATION_GRACE_DAYS; then `purge`."""
    from provisioner.termination import terminate_adherent

    if not reason.strip():
        raise click.BadParameter("say which signed letter this follows", param_hint="--reason")
    count = terminate_adherent(run.context(numero), reason.strip())
    run.emit(f"Adherent {numero} terminated: {count} account(s) disabled, delegation removed "
             f"(reversible for {run.settings.termination_grace_days} days)", {"adherent": numero, "disabled": count})


@verb(adherent, "reinstate")
@click.argument("numero")
def adherent_reinstate(run: Run, numero: str) -> None:
    """Undo a termination within its grace period: the accounts it disabled enabled, the delegation restored."""
    from provisioner.termination import reinstate_adherent

    count = reinstate_adherent(run.context(numero))
    run.emit(f"Adherent {numero} reinstated: {count} account(s) enabled", {"adherent": numero, "enabled": count})


@verb(adherent, "purge")
@click.argument("numero", required=False)
@click.option("--due", is_flag=True, help="Every terminated adherent whose grace period is over (for cron).")
def adherent_purge(run: Run, numero: str | None, due: bool) -> None:
    """After the grace period: delete a terminated adherent's accounts and groups and anonymise our records of its
    people; the trail is kept (docs/retention.md). NUMERO, or --due for all that are due."""
    from provisioner.termination import due_for_purge, purge_adherent

    if bool(numero) == due:
        raise click.UsageError("give either NUMERO or --due")
    numeros = due_for_purge(run.gw, run.services) if due else [numero]
    purged = [purge_adherent(run.context(n)) for n in numeros]
    run.emit("\n".join(f"Adherent {p.numero} purged: {p.users} account(s), {p.groups} group(s) deleted"
                       for p in purged) or "No terminated adherent is due for purge.", purged)


@verb(adherent, "reactivate")
@click.argument("numero")
def adherent_reactivate(run: Run, numero: str) -> None:
    from provisioner.adherents import reactivate_adherent

    count = reactivate_adherent(run.context(numero))
    run.emit(f"Adherent {numero} reactivated: {count} account(s) re-enabled", {"adherent": numero, "enabled": count})


@verb(adherent, "confirmations")
@click.argument("numero")
@click.argument("count", type=int)
def adherent_confirmations(run: Run, numero: str, count: int) -> None:
    """E@syPaiement: 1 or 2 confirmations (2 may come first; the adherent is incomplete until two validators are
    enabled)."""
    from provisioner.adherents import set_easypaiement_confirmations

    after = set_easypaiement_confirmations(run.context(numero), count)
    missing = f"\nIncomplete: {after.message.en}" if after.missing else ""
    run.emit(f"E@syPaiement confirmations of {numero}: {count}{missing}",
             {"adherent": numero, "confirmations": count, "validators_missing": after.missing})
