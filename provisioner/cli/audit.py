"""`provisioner audit`: the security team's read-only audit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provisioner.audit.findings import SEVERITIES
from provisioner.audit.render import render_csv, render_html, render_json, render_table
from provisioner.audit.report import SECTIONS
from provisioner.cli.base import EXIT_FINDINGS, Invocation, cli


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "html"]), default="table",
              show_default=True, help="Output format (the global --json means --format json).")
@click.option("--section", type=click.Choice(list(SECTIONS)), default="findings", show_default=True,
              help="CSV only: which table to write.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.option("--fail-on", type=click.Choice([*SEVERITIES, "none"]), default="low", show_default=True,
              help="Exit 3 when findings of this severity or worse exist.")
@click.option("--inactive-days", type=click.IntRange(1, 3650), default=90, show_default=True,
              help="Report enabled users with no login for this many days.")
@click.option("--activity-days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Admin activity of the last this many days.")
@click.option("--incomplete-days", type=click.IntRange(0, 3650), default=None,
              help="Report 2-confirmation adherents lacking their second validator for more than this many days "
                   "[default: EASYPAIEMENT_INCOMPLETE_DAYS, 7].")
@click.option("--no-drift", is_flag=True, help="Skip the comparison of the live realm with realm/.")
@click.pass_obj
def audit(ctx: Invocation, fmt: str, section: str, output: Path | None, fail_on: str, inactive_days: int,
          activity_days: int, incomplete_days: int | None, no_drift: bool) -> None:
    """Who holds what, findings and admin activity, read with the read-only `auditor` account."""
    from provisioner.audit.collect import audit_realm

    report = audit_realm(ctx.settings, inactive_days=inactive_days, activity_days=activity_days,
                         with_drift=not no_drift, incomplete_days=incomplete_days)
    fmt = "json" if ctx.as_json else fmt
    text = {"table": render_table, "json": render_json, "html": render_html,
            "csv": lambda r: render_csv(r, section)}[fmt](report)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{len(report.findings)} finding(s); report written to {output}", err=True)
    else:
        click.echo(text)
    sys.exit(EXIT_FINDINGS if fail_on != "none" and report.at_or_above(fail_on) else 0)
