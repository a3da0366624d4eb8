"""`provisioner adherent`: an agent's actions on signed letters, suspension, E@syPaiement confirmations."""

from __future__ import annotations

import click

from provisioner.cli.base import Run, cli, from_mapping, new_password, read_form, verb


@cli.group()
def adherent() -> None:
    """An adherent: show, delegate password/e-mail/second factor/replacement, suspension, E@syPaiement confirmations."""


@verb(adherent, "show")
@click.argument("numero")
def adherent_show(run: Run, numero: str) -> None:
    from provisioner.adherents import get_adherent

    a = get_adherent(run.gw, run.services, run.actor, numero)
    run.emit(f"{a.numero}  {a.raison_sociale}  status={a.status}  confirmations={a.easypaiement_confirmations}  "
             f"categories={','.join(a.categories)}  delegate={a.delegate_email} "
             f"({'enabled' if a.delegate_enabled else 'disabled'})", a)


@verb(adherent, "reset-delegate-password")
@click.argument("numero")
def adherent_reset_password(run: Run, numero: str) -> None:
    """A temporary password for the delegate (asked twice; changed at next login)."""
    from provisioner.adherents import reset_delegate_password

    password = new_password("New temporary password")
    reset_delegate_password(run.gw, run.services, run.actor, numero, password, password)
    run.emit(f"Delegate password of {numero} reset (temporary)", {"adherent": numero, "reset": True})


@verb(adherent, "reset-delegate-second-factor")
@click.argument("numero")
def adherent_reset_second_factor(run: Run, numero: str) -> None:
    """Signed letter (lost phone): remove the delegate's second factor and end its sessions; it enrols again at its
    next portal login."""
    from provisioner.second_factor import reset_delegate_second_factor

    removed = reset_delegate_second_factor(run.gw, run.services, run.actor, numero)
    run.emit(f"Second factor of the delegate of {numero} removed ({', '.join(removed) or 'none was enrolled'})",
             {"adherent": numero, "removed": removed})


@verb(adherent, "change-delegate-email")
@click.argument("numero")
@click.argument("email")
def adherent_change_email(run: Run, numero: str, email: str) -> None:
    from provisioner.adherents import change_delegate_email

    change_delegate_email(run.gw, run.services, run.actor, numero, email)
    run.emit(f"Delegate e-mail of {numero} is now {email}", {"adherent": numero, "email": email})


@verb(adherent, "replace-delegate")
@click.argument("numero")
@click.argument("delegate_file", type=click.Path(exists=True, dir_okay=False))
def adherent_replace_delegate(run: Run, numero: str, delegate_file: str) -> None:
    """Réabonnement: the delegate block in DELEGATE_FILE (YAML/JSON); the new password is asked twice."""
    from provisioner.adherents import replace_delegate
    from provisioner.subscriptions import NewDelegate

    data = read_form(delegate_file)
    block = data.get("delegate", data)
    from_mapping(NewDelegate, block, "delegate", delegate_file, password="", password_confirm="")  # keys first
    password = new_password("New delegate's password", "delegate.password")
    form = NewDelegate(**block, password=password, password_confirm=password)
    replace_delegate(run.gw, run.services, run.actor, numero, form)
    run.emit(f"Delegate of {numero} replaced by {form.prenom} {form.nom}", {"adherent": numero,
                                                                             "delegate": form.public()})


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

    count = suspend_adherent(run.gw, run.services, run.actor, numero, reason)
    run.emit(f"Adherent {numero} suspended: {count} account(s) disabled", {"adherent": numero, "disabled": count})


@verb(adherent, "reactivate")
@click.argument("numero")
def adherent_reactivate(run: Run, numero: str) -> None:
    from provisioner.adherents import reactivate_adherent

    count = reactivate_adherent(run.gw, run.services, run.actor, numero)
    run.emit(f"Adherent {numero} reactivated: {count} account(s) re-enabled", {"adherent": numero, "enabled": count})


@verb(adherent, "confirmations")
@click.argument("numero")
@click.argument("count", type=int)
def adherent_confirmations(run: Run, numero: str, count: int) -> None:
    """E@syPaiement: 1 or 2 confirmations (2 needs two validators)."""
    from provisioner.adherents import set_easypaiement_confirmations

    set_easypaiement_confirmations(run.gw, run.services, run.actor, numero, count)
    run.emit(f"E@syPaiement confirmations of {numero}: {count}", {"adherent": numero, "confirmations": count})
