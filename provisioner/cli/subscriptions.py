"""`provisioner subscription`: the Abonnement — submit, list pending (48-hour promise), approve, reject."""

from __future__ import annotations

import sys

import click
from provisioner.cli.base import EXIT_FINDINGS, Run, cli, from_mapping, new_password, read_form, verb


@cli.group()
def subscription() -> None:
    """Abonnement: submit, receive (the signed paper), list pending (48-hour promise), approve, reject."""


@verb(subscription, "submit", actor=False)
@click.argument("form_file", type=click.Path(exists=True, dir_okay=False))
def subscription_submit(run: Run, form_file: str) -> None:
    """Submit the form in FORM_FILE (YAML/JSON: company, responsable, delegate, categories).
    The delegate's password is asked twice (never in the file)."""
    from provisioner.subscriptions import Company, Responsable, NewSubscription, submit_subscription
    from provisioner.delegates import NewDelegate

    data = read_form(form_file)
    unknown = sorted(set(data) - {"company", "responsable", "delegate", "categories"})
    if unknown:
        raise click.UsageError(f"{form_file}: unknown key '{unknown[0]}' (known keys: company, responsable, "
                               f"delegate, categories)")
    company = from_mapping(Company, data.get("company", {}), "company", form_file)
    responsable = from_mapping(Responsable, data.get("responsable", {}), "responsable", form_file)
    delegate = data.get("delegate", {})
    from_mapping(NewDelegate, delegate, "delegate", form_file, password="", password_confirm="")  # keys first
    password = new_password("Delegate password", "delegate.password")
    form = NewSubscription(company, responsable,
                           NewDelegate(**delegate, password=password, password_confirm=password),
                           tuple(data.get("categories") or ()))
    sub = submit_subscription(run.gw, run.services, form)
    run.emit(f"Subscription {sub.id} for adherent {sub.adherent}: pending", sub)


@verb(subscription, "list", actor=False)
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "all"]), default="pending")
def subscription_list(run: Run, status: str) -> None:
    """Subscriptions with their age since submission and since the signed paper arrived; exit 3 when a pending one
    is past the 48-hour promise (counted from the paper)."""
    from provisioner.subscriptions import list_subscriptions

    subs = list_subscriptions(run.services, None if status == "all" else status)
    lines = [f"{s.id:>5}  {s.adherent:<10}  {s.status:<8}  {s.age_hours:>7.1f} h  "
             f"{'paper ' + format(s.paper_age_hours, '.1f') + ' h' if s.paper_age_hours is not None else 'no paper':<14}  "
             f"{s.form['company']['raison_sociale']}{'  OVERDUE' if s.overdue else ''}" for s in subs]
    run.emit("\n".join(lines) or "No subscription.", subs)
    if any(s.overdue for s in subs):
        sys.exit(EXIT_FINDINGS)


@verb(subscription, "receive")
@click.argument("subscription_id", type=int)
@click.option("--date", "received_on", metavar="YYYY-MM-DD", help="the day the paper arrived (default: now)")
def subscription_receive(run: Run, subscription_id: int, received_on: str | None) -> None:
    """Record that the signed and stamped form arrived: the 48-hour promise counts from then; approval needs it."""
    from provisioner.subscriptions import receive_paper

    sub = receive_paper(run.services, run.actor, subscription_id, received_on)
    run.emit(f"Subscription {sub.id} (adherent {sub.adherent}): paper received "
             f"{sub.paper_received_at:%Y-%m-%d %H:%M} UTC, recorded by {sub.paper_recorded_by}", sub)


@verb(subscription, "approve")
@click.argument("subscription_id", type=int)
def subscription_approve(run: Run, subscription_id: int) -> None:
    """Approve (once the paper is recorded: `receive`): the adherent's groups, the delegate enabled and notified."""
    from provisioner.subscriptions import approve_subscription

    sub = approve_subscription(run.context(), subscription_id)
    run.emit(f"Subscription {sub.id} approved: adherent {sub.adherent} is active", sub)
    _warn_unsent(run, sub.adherent)


@verb(subscription, "reject")
@click.argument("subscription_id", type=int)
@click.option("--reason", required=True)
def subscription_reject(run: Run, subscription_id: int, reason: str) -> None:
    """Reject, with the reason mailed to the delegate."""
    from provisioner.subscriptions import reject_subscription

    sub = reject_subscription(run.context(), subscription_id, reason)
    run.emit(f"Subscription {sub.id} rejected", sub)
    _warn_unsent(run, sub.adherent)


def _warn_unsent(run: Run, adherent: str) -> None:
    """The decision holds even when its mail could not be sent: say so (stderr), and how it will go out."""
    from provisioner.outbox import unsent

    for m in unsent(run.services, adherent):
        click.echo(f"warning: mail {m.id} to {m.recipient} not sent ({m.last_error}); it waits in the outbox: "
                   "`provisioner mail flush` sends it", err=True)
