"""`provisioner trail`: our audit trail (our database), newest first."""

from __future__ import annotations

import click

from provisioner.cli.base import Run, cli, verb


@verb(cli, "trail", actor=False)
@click.option("--adherent")
@click.option("--action", "action_name", help="e.g. user.create, delegate.replace, subscription.approve")
@click.option("--actor")
@click.option("--target")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
def trail(run: Run, adherent: str | None, action_name: str | None, actor: str | None, target: str | None,
          limit: int) -> None:
    """The audit trail of our actions, newest first: who (the person), adherent, what, target, outcome."""
    from provisioner.trail import events

    found = events(run.services.db, adherent, action_name, actor, target, limit)
    run.emit("\n".join(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.outcome:<7} {e.actor} ({e.actor_role})  {e.action}  "
                       f"{e.adherent or '-'}  {e.target or '-'}" + (f"  [{e.detail}]" if e.detail else "")
                       for e in found) or "No event.", found)
