"""`provisioner bulk import`: CSV onboarding (columns in docs/provisioner-api.md; sample docs/sample-users.csv)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click
from provisioner.cli.base import EXIT_FINDINGS, Run, cli, verb


@cli.group()
def bulk() -> None:
    """Bulk onboarding from a CSV (columns in docs/provisioner-api.md; sample docs/sample-users.csv)."""


@verb(bulk, "import")
@click.argument("numero")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--concurrency", type=click.IntRange(1, 32), default=8, show_default=True)
def bulk_import(run: Run, numero: str, csv_file: str, concurrency: int) -> None:
    """Create the users of CSV_FILE for adherent NUMERO; re-run after a crash or a fix creates only what is
    missing. Exit 3 when some rows were refused (each reported with its line)."""
    from provisioner.bulk import import_users

    text = Path(csv_file).read_text(encoding="utf-8-sig")
    report = import_users(run.context(numero), text, _progress(run.as_json), concurrency)
    lines = [f"created: {len(report.created)}, already present: {len(report.already_present)}, "
             f"refused: {len(report.errors)}"]
    lines += [f"line {e.line}: {e.login or '-'}: {e.field}: {e.message.fr} / {e.message.en}" for e in report.errors]
    run.emit("\n".join(lines), {"created": report.created, "already_present": report.already_present,
                                "errors": report.errors})
    if report.errors:
        sys.exit(EXIT_FINDINGS)


def _progress(as_json: bool) -> Callable[[int, int], None]:
    """A progress bar on stderr (people), or one 'progress N/M' line per user with --json (machines)."""
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if as_json:
            click.echo(f"progress {done}/{total}", err=True)
            return
        if "bar" not in state:
            state["bar"] = click.progressbar(length=total, label="Creating users", file=sys.stderr)
            state["bar"].__enter__()
        state["bar"].update(1)
        if done == total:
            state["bar"].__exit__(None, None, None)
    return progress
