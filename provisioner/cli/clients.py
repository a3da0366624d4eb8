"""`provisioner client`: the realm's confidential clients — rotating a client secret."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provisioner.realm.schema import realm_spec
from provisioner.cli.base import Run, cli, verb


@cli.group()
def client() -> None:
    """Confidential clients of the realm (teleservices, portal, service accounts)."""


def _check_output(path: str) -> None:
    """--output must name a new file in an existing, writable directory (checked before the rotation)."""
    target = Path(path)
    if target.exists():
        raise click.UsageError(f"--output {path}: the file exists; give a new file (a secret is never overwritten)")
    if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
        raise click.UsageError(f"--output {path}: {target.parent} is not a directory you can write to")


def _write_secret(path: str, secret: str) -> None:
    """A new file only this user can read (0600), created with the secret in it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")


@verb(client, "rotate-secret", actor=False)
@click.argument("client_id")
@click.option("--output", "output", metavar="FILE",
              help="Write the new secret to this new file (mode 0600) instead of printing it.")
def client_rotate_secret(run: Run, client_id: str, output: str | None) -> None:
    """Give CLIENT_ID a new secret in Keycloak (the old one is refused at once). Prints it once (or writes it to
    --output), names the variable to update; the trail records the rotation, never the secret. Needs the
    master-realm admin (KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD), like plan/apply."""
    from provisioner.client_secrets import rotate_client_secret
    from provisioner.gateway import Gateway
    from provisioner.tenancy import Actor

    admin_user, _ = run.settings.require_admin()
    if output:
        _check_output(output)
    spec = realm_spec(run.settings)
    rotated = rotate_client_secret(Gateway.as_master_admin(run.settings), run.services, spec,
                                   Actor(admin_user, "admin"), client_id)
    machine = {"client_id": client_id, "variable": rotated.variable, "instructions": rotated.instructions()}
    if output:
        try:
            _write_secret(output, rotated.secret)
        except OSError as exc:  # the old secret is already refused: the new one must not be lost
            click.echo(f"warning: could not write {output} ({exc.strerror}); the secret is printed instead", err=True)
        else:
            run.emit(f"New secret of client '{client_id}' written to {output} (mode 0600).\n"
                     f"{rotated.instructions()}", machine | {"secret_file": output})
            return
    run.emit(f"New secret of client '{client_id}' (shown once): {rotated.secret}\n{rotated.instructions()}",
             machine | {"secret": rotated.secret})
