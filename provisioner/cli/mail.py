"""`provisioner mail`: the mail outbox — what waits to be sent, and the retry (cron-friendly)."""

from __future__ import annotations

import sys

import click

from provisioner.cli.base import EXIT_FINDINGS, Run, cli, verb


@cli.group()
def mail() -> None:
    """The mail outbox: mails the SMTP server did not take, and their retry."""


def _line(m) -> str:
    line = (f"{m.id:>6}  {m.created_at:%Y-%m-%d %H:%M}  {m.adherent or '-':<10}  {m.recipient}  "
            f"({m.attempts} attempt(s))  {m.subject}")
    return line + (f"\n        last error: {m.last_error}" if m.last_error else "")


@verb(mail, "list", actor=False)
@click.option("--adherent", help="Only the mails of this adherent (numéro).")
def mail_list(run: Run, adherent: str | None) -> None:
    """The mails not sent yet, oldest first, with their last error. Exit 3 when there is any."""
    from provisioner.outbox import unsent

    waiting = unsent(run.services, adherent)
    run.emit("\n".join(_line(m) for m in waiting) or "No mail waiting.", waiting)
    if waiting:
        sys.exit(EXIT_FINDINGS)


@verb(mail, "flush", actor=False)
@click.option("--limit", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="At most this many mails in one run.")
def mail_flush(run: Run, limit: int) -> None:
    """Send the mails still waiting, oldest first (stops early when the SMTP server is unreachable).
    For cron: exit 0 when nothing is left, 3 when mails still wait (run it again later)."""
    from provisioner.outbox import flush

    result = flush(run.services, limit)
    run.emit(f"Sent {len(result.sent)} mail(s); {len(result.failed)} failed again; {result.unsent} still waiting.",
             result)
    if result.unsent:
        sys.exit(EXIT_FINDINGS)
