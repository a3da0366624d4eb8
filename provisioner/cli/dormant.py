"""`provisioner dormant`: teleservice users without a login for DORMANT_DAYS, disabled with --apply (cron)."""

from __future__ import annotations

import sys

import click

from provisioner.realm.schema import realm_spec
from provisioner.cli.base import EXIT_FINDINGS, Run, cli, verb


def _line(d) -> str:
    since = f"last login {d.last_login:%Y-%m-%d}" if d.last_login else f"never logged in, created {d.created:%Y-%m-%d}"
    return f"{d.adherent:<10}  {d.teleservice:<16}  {d.login:<24}  {since}"


@verb(cli, "dormant", actor=False)
@click.option("--days", type=click.IntRange(7, 3650), default=None,
              help="No login for more than this many days (default: the DORMANT_DAYS setting, 180).")
@click.option("--apply", "apply_", is_flag=True,
              help="Disable them and tell their delegates (without it: a dry run that changes nothing).")
def dormant(run: Run, days: int | None, apply_: bool) -> None:
    """Teleservice users who have not logged in for DAYS. A dry run by default (exit 3 when some are found);
    with --apply they are disabled, their sessions ended, and each delegate told by mail (exit 1 if some could not
    be). Delegates, agents and auditors are never disabled by this (the audit reports them)."""
    from provisioner import dormant as rule

    days = days or run.settings.dormant_days
    spec = realm_spec(run.settings)
    found = rule.find(run.gw, run.services, spec.events.retention_days, days)
    lines = "\n".join(_line(d) for d in found)
    if not apply_:
        run.emit(f"{len(found)} teleservice user(s) without a login for more than {days} days (dry run: nothing "
                 f"changed; --apply disables them)" + (f":\n{lines}" if found else "."),
                 {"days": days, "applied": False, "dormant": found})
        sys.exit(EXIT_FINDINGS if found else 0)
    outcome = rule.disable(run.gw, run.services, found, days)
    failed = "\n".join(f"FAILED {d.login}: {why}" for d, why in outcome.failed)
    run.emit(f"Disabled {len(outcome.disabled)} teleservice user(s) without a login for more than {days} days"
             + (f":\n{lines}" if found else ".") + (f"\n{failed}" if failed else ""),
             {"days": days, "applied": True, "disabled": outcome.disabled,
              "failed": [{"login": d.login, "error": why} for d, why in outcome.failed]})
    if outcome.failed:
        sys.exit(1)
