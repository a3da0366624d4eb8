"""`provisioner` command line: realm plan/apply, and the verbs of delegates, agents and auditors.

Output for people by default, ``--json`` for machines. Exit codes: 0 ok, 1 error, 2 usage,
3 drift or audit findings.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from provisioner.errors import ProvisionerError
from provisioner.settings import Settings

EXIT_DRIFT = 3


class Context:
    """Settings read once at start; gateways built on demand."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.settings = Settings.from_env()

    def emit(self, human: Any, machine: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps(machine if machine is not None else human, ensure_ascii=False, indent=2,
                                  default=str))
        else:
            click.echo(str(human))


def fail_cleanly(fn: Callable) -> Callable:
    """Turn our errors into a one-line message on stderr and the error's exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ProvisionerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
    return wrapper


@click.group()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@fail_cleanly
def cli(ctx: click.Context, as_json: bool) -> None:
    """CIMR teleservices identity layer on Keycloak."""
    ctx.obj = Context(as_json)


def _realm(ctx: Context):
    from provisioner.gateway import Gateway
    from provisioner.realm_spec import load_realm_spec

    spec = load_realm_spec(ctx.settings.realm_dir, ctx.settings.realm, ctx.settings.realm_vars)
    return spec, Gateway.as_master_admin(ctx.settings)


@cli.command()
@click.pass_obj
@fail_cleanly
def plan(ctx: Context) -> None:
    """Show what apply would change (changes nothing). Exit 3 when the live realm drifted."""
    from provisioner.realm_apply import plan_realm

    spec, gw = _realm(ctx)
    result = plan_realm(gw, spec)
    ctx.emit(result, result.to_json())
    sys.exit(EXIT_DRIFT if not result.empty else 0)


@cli.command()
@click.option("--allow-delete", is_flag=True, help="Allow deleting objects realm/ no longer declares.")
@click.option("--force", is_flag=True, help="Allow an unusually large change set.")
@click.pass_obj
@fail_cleanly
def apply(ctx: Context, allow_delete: bool, force: bool) -> None:
    """Make the live realm match realm/ (safe order; deletions only with --allow-delete)."""
    from provisioner.realm_apply import apply_plan, plan_realm

    spec, gw = _realm(ctx)
    result = plan_realm(gw, spec)
    result.raise_if_unsafe(allow_delete=allow_delete, force=force)
    if not ctx.as_json:
        click.echo(str(result))
    apply_plan(gw, spec, result)
    # Adherents are data, but their Keycloak delegation is security configuration: a missing one is repaired.
    from provisioner.permissions import repair_all
    repaired = repair_all(gw, deep=False)
    if ctx.as_json:
        ctx.emit(None, {"applied": result.to_json(), "delegations_repaired": repaired})
    else:
        if not result.empty:
            click.echo("Applied.")
        if repaired:
            click.echo(f"Repaired the Keycloak delegation of adherent(s): {', '.join(repaired)}")


@cli.command("permissions")
@click.option("--repair", is_flag=True, help="Create or fix what is missing or drifted.")
@click.option("--deep", is_flag=True, help="Also compare each adherent's permission with its groups (~10 reads each).")
@click.pass_obj
@fail_cleanly
def permissions_(ctx: Context, repair: bool, deep: bool) -> None:
    """Check each adherent's Keycloak delegation (client `delegations`). Exit 3 when something is wrong."""
    from provisioner import permissions

    gw = permissions.writer(ctx.settings)
    if repair:
        permissions.repair_all(gw, deep=deep)
    found = permissions.check_all(gw, deep=deep)
    ctx.emit("\n".join(f"{f.code}: {f.detail}" for f in found) or "Every adherent has its Keycloak delegation.",
             [f.__dict__ for f in found])
    sys.exit(EXIT_DRIFT if found else 0)


def main() -> None:
    from provisioner import cli_actions  # noqa: F401  (registers the action verbs)
    from provisioner import cli_audit  # noqa: F401  (registers `audit`)

    cli(prog_name="provisioner")
