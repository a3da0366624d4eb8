"""What every verb shares: the root group, the one error path, the run context, input helpers.

Output for people by default, ``--json`` for machines: then a verb's result AND its errors are JSON on stdout.
Exit codes: 0 ok, 1 error, 2 usage, 3 drift or findings.
"""

from __future__ import annotations

import functools
import json
from dataclasses import MISSING, asdict, fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import click
import yaml

from provisioner.realm.schema import realm_spec
from provisioner.db import UNREACHABLE
from provisioner.errors import DatabaseUnavailable, InputError, Message, ProvisionerError, ValidationError
from provisioner.settings import Settings

EXIT_USAGE = 2
EXIT_FINDINGS = 3  # drift, audit findings, refused rows, overdue subscriptions


def plain(value: Any) -> Any:
    """Dataclasses, messages (fr/en) and tuples as JSON-ready values."""
    if is_dataclass(value):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "fr") and hasattr(value, "en"):
        return {"fr": value.fr, "en": value.en}
    return value


def error_payload(exc: Exception) -> dict:
    """An error as machines read it: its kind, message and, for bad input, the fields with their messages."""
    if isinstance(exc, click.UsageError):
        return {"error": "UsageError", "message": exc.format_message()}
    payload: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, InputError):
        payload["fields"] = {k: plain(v) for k, v in exc.errors.items()}
    return payload


def report_error(as_json: bool, exc: ProvisionerError) -> None:
    """The one error path: JSON on stdout with --json; else one line per field (French / English) on stderr."""
    payload = error_payload(exc)
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    elif "fields" in payload:
        for field, msg in payload["fields"].items():
            click.echo(f"error: {field}: {msg['fr']} / {msg['en']}", err=True)
    else:
        click.echo(f"error: {exc}", err=True)


class RootGroup(click.Group):
    """The `provisioner` group: every verb's errors leave through ``report_error`` (and click's usage errors
    too, as JSON, under --json), whatever the verb."""

    def invoke(self, ctx: click.Context) -> Any:
        as_json = bool(ctx.params.get("as_json"))
        try:
            return super().invoke(ctx)
        except ProvisionerError as exc:
            report_error(as_json, exc)
            ctx.exit(exc.exit_code)
        except UNREACHABLE as exc:  # one line for cron, not a traceback; never the statement or its values
            cause = getattr(exc, "orig", None) or exc
            report_error(as_json, DatabaseUnavailable(
                f"database unreachable: {type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"))
            ctx.exit(DatabaseUnavailable.exit_code)
        except click.UsageError as exc:
            if not as_json:
                raise
            click.echo(json.dumps(error_payload(exc), ensure_ascii=False, indent=2))
            ctx.exit(EXIT_USAGE)


class Invocation:
    """One run of the command: its settings, read once at start, and its output format."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.settings = Settings.from_env()

    @cached_property
    def catalogue(self):
        """realm/'s teleservices (provisioner.catalogue)."""

        return realm_spec(self.settings).catalogue()

    def emit(self, human: Any, machine: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps(plain(machine if machine is not None else human), ensure_ascii=False, indent=2,
                                  default=str))
        else:
            click.echo(str(human))


@click.group(cls=RootGroup)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (errors too).")
@click.pass_context
def cli(ctx: click.Context, as_json: bool) -> None:
    """CIMR teleservices identity layer on Keycloak."""
    ctx.obj = Invocation(as_json)


class Run:
    """What a verb needs: settings, our services, the service-account gateway, the person acting."""

    def __init__(self, ctx: Invocation, as_user: str | None):
        self.ctx, self.settings, self.as_json = ctx, ctx.settings, ctx.as_json
        # The person acting is resolved first: an unknown --as fails before any prompt.
        self.actor = self._resolve(as_user) if as_user else None

    def _resolve(self, as_user: str):
        from provisioner.context import resolve_actor

        return resolve_actor(self.gw, as_user)

    @cached_property
    def services(self):
        from provisioner.core import Services

        return Services.from_settings(self.settings)

    @cached_property
    def gw(self):
        from provisioner.gateway import Gateway

        return Gateway.as_service_account(self.settings)

    def context(self, adherent: str | None = None):
        """The request the actions take (provisioner/context.py): the person acting, on ``adherent``."""
        from provisioner.context import Context

        return Context(self.gw, self.services, self.actor, adherent)

    def emit(self, human: Any, machine: Any = None) -> None:
        self.ctx.emit(human, machine)


as_option = click.option("--as", "as_user", envvar="PROVISIONER_AS", required=True, metavar="USERNAME",
                         help="The person acting (an agent's username, or a delegate's numéro); env PROVISIONER_AS.")


def verb(group: click.Group, name: str | None = None, *, actor: bool = True, **settings: Any) -> Callable:
    """Register ``fn(run, ...)`` as a command of ``group``: ``--as`` when a person acts (``actor``), and the
    ``Run`` built once for it. Errors need nothing here: the root group reports them."""
    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def command(*args: Any, as_user: str | None = None, **kwargs: Any) -> Any:
            ctx = click.get_current_context().find_object(Invocation)
            return fn(Run(ctx, as_user), *args, **kwargs)
        return group.command(name, **settings)(as_option(command) if actor else command)
    return deco


class TeleserviceType(click.ParamType):
    """A teleservice of realm/clients.yaml: the choices follow the catalogue, not a list in the code."""

    name = "teleservice"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        ids = ctx.find_object(Invocation).catalogue.ids if ctx and ctx.find_object(Invocation) else ()
        if value in ids:
            return value
        self.fail(f"{value!r} is not a teleservice of realm/ (one of: {', '.join(ids)})", param, ctx)


def options(*opts: Callable) -> Callable:
    """Several click options as one decorator."""
    def deco(fn: Callable) -> Callable:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return deco


def read_form(path: str) -> dict:
    """A YAML/JSON mapping from a file; a usage error naming the file otherwise."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise click.UsageError(f"{path} must hold a mapping (YAML or JSON)")
    return data


def new_password(label: str, field: str = "password") -> str:
    """Asked twice, hidden, on stderr (stdout stays the result); two different entries are refused with a
    message naming the field (not click's endless re-prompt and its bare "Aborted!")."""
    password = click.prompt(label, hide_input=True, err=True)
    if click.prompt(f"{label} (again)", hide_input=True, err=True) != password:
        raise ValidationError({f"{field}_confirm": Message("Les deux mots de passe ne sont pas identiques.",
                                                           "The two passwords are not the same.")})
    return password


def from_mapping(cls: type, data: Any, where: str, file: str, **fixed: Any) -> Any:
    """``cls(**data, **fixed)`` for a block of a form file; an unknown or missing key is a usage error naming it."""
    if not isinstance(data, dict):
        raise click.UsageError(f"{file}: {where} must be a mapping of field: value")
    names = [f.name for f in fields(cls) if f.name not in fixed]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise click.UsageError(f"{file}: unknown key '{where}.{unknown[0]}' (known keys: {', '.join(names)})")
    missing = [f.name for f in fields(cls) if f.name not in data and f.name not in fixed
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise click.UsageError(f"{file}: missing key '{where}.{missing[0]}'")
    return cls(**data, **fixed)
