"""`plan`, `apply` and `permissions`: the realm as code, and each adherent's Keycloak delegation."""

from __future__ import annotations

import sys
from dataclasses import replace

import click

from provisioner.cli.base import EXIT_FINDINGS, Invocation, cli
from provisioner.realm.schema import realm_spec


def _realm(ctx: Invocation):
    from provisioner.gateway import Gateway

    spec = realm_spec(ctx.settings)
    return spec, Gateway.as_master_admin(ctx.settings)


@cli.command()
@click.pass_obj
def plan(ctx: Invocation) -> None:
    """Show what apply would change (changes nothing), the adherents' Keycloak delegations it would repair included.
    Exit 3 when the live realm drifted or a delegation needs repair."""
    from provisioner.permissions import plan_repairs
    from provisioner.realm.plan import plan_realm

    spec, gw = _realm(ctx)
    result = plan_realm(gw, spec)
    # What apply repairs after the plan (needs the admin-permissions reads, as the master admin of `plan` may).
    result = replace(result, repairs=plan_repairs(gw, spec, realm_exists=not result.creates_realm))
    ctx.emit(result, result.to_json())
    sys.exit(EXIT_FINDINGS if not result.empty else 0)


@cli.command()
@click.option("--allow-delete", is_flag=True, help="Allow deleting objects realm/ no longer declares.")
@click.option("--force", is_flag=True, help="Allow an unusually large change set.")
@click.pass_obj
def apply(ctx: Invocation, allow_delete: bool, force: bool) -> None:
    """Make the live realm match realm/ (safe order; deletions only with --allow-delete)."""
    from provisioner.permissions import repair_all
    from provisioner.realm.apply import apply_plan
    from provisioner.realm.plan import plan_realm

    spec, gw = _realm(ctx)
    result = plan_realm(gw, spec)
    result.raise_if_unsafe(allow_delete=allow_delete, force=force)
    if not ctx.as_json:
        click.echo(str(result))
    apply_plan(gw, spec, result)
    # Adherents are data, but their Keycloak delegation is security configuration: a missing one is repaired.
    repaired = repair_all(gw, deep=False)
    if ctx.as_json:
        ctx.emit(None, {"applied": result.to_json(), "delegations_repaired": repaired})
    else:
        if not result.empty:
            click.echo("Applied.")
        if repaired:
            click.echo(f"Repaired Keycloak delegations: {', '.join(repaired)}")


@cli.command("permissions")
@click.option("--repair", is_flag=True, help="Create or fix what is missing or drifted.")
@click.option("--deep", is_flag=True, help="Also compare each adherent's permission with its groups (~10 reads each).")
@click.pass_obj
def permissions_(ctx: Invocation, repair: bool, deep: bool) -> None:
    """Check each adherent's Keycloak delegation (client `delegations`). Exit 3 when something is wrong."""
    from provisioner import permissions

    gw = permissions.writer(ctx.settings)
    if repair:
        permissions.repair_all(gw, deep=deep)
    found = permissions.check_all(gw, deep=deep)
    ctx.emit("\n".join(f"{f.code}: {f.detail}" for f in found) or "Every adherent has its Keycloak delegation.",
             [f.__dict__ for f in found])
    sys.exit(EXIT_FINDINGS if found else 0)
