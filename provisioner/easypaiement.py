"""E@syPaiement's confirmations and validators: is the adherent complete, and since when is it not.

The brochure lets a delegate choose 2 confirmations before its second validator exists. Until two validators are
enabled the adherent is *incomplete*: the delegate's pages say so, E@syPaiement's tokens say so (our Keycloak
extension computes ``easypaiement_enough_validators``), and the security audit reports it when it lasts. For that
last one the adherent group keeps ``easypaiement_incomplete_since`` (ISO 8601, UTC), which only CIMR's service
account writes: every action that can change the state calls ``record``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from provisioner import clock
from provisioner import rules
from provisioner.errors import Message, ProvisionerError
from provisioner.gateway import Gateway
from provisioner.rules import EASYPAIEMENT, VALIDATEUR
from provisioner.tree import AdherentState, adherent_members, enabled_validators

SINCE = "easypaiement_incomplete_since"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completeness:
    """The adherent's E@syPaiement state: confirmations chosen, enabled validators, what is missing."""

    confirmations: int
    validators: int
    since: datetime | None = None   # when it became incomplete, as recorded (None: complete, or not recorded)

    @property
    def missing(self) -> int:
        return rules.validators_missing(self.confirmations, self.validators)

    @property
    def message(self) -> Message | None:
        return rules.incomplete_message(self.validators) if self.missing else None


def parse_since(value: str | None) -> datetime | None:
    """The recorded start of an incomplete period; None when absent or unreadable."""
    try:
        since = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return since.replace(tzinfo=timezone.utc) if since and since.tzinfo is None else since


def read(gw: Gateway, adherent: str) -> tuple[AdherentState, Completeness]:
    """The adherent and its completeness from one read of its tree (our extension): the same read as its
    delegate's listing; its enabled validators count only when 2 confirmations are chosen."""
    state, members = adherent_members(gw, adherent)
    validators = sum(1 for m in members if m.user.enabled and f"{EASYPAIEMENT}/{VALIDATEUR}" in m.groups) \
        if state.confirmations == 2 else 0
    return state, Completeness(state.confirmations, validators, parse_since(state.group.attr(SINCE)))


def since_attribute(now: datetime, current: Completeness) -> dict[str, list[str]] | None:
    """The group attribute change ``record`` makes (pure): start the period, end it, or nothing to do."""
    if current.missing and current.since is None:
        return {SINCE: [now.astimezone(timezone.utc).isoformat(timespec="seconds")]}
    if not current.missing and current.since is not None:
        return {SINCE: []}  # an empty list removes the attribute
    return None


def with_confirmations(gw: Gateway, state: AdherentState, confirmations: int) -> tuple[Completeness, dict]:
    """The adherent's completeness once it requires ``confirmations``, and the group attributes to write for it
    (the setting and ``SINCE`` in one update)."""
    validators = len(enabled_validators(gw, state.numero)) if confirmations == 2 else 0
    after = Completeness(confirmations, validators, parse_since(state.group.attr(SINCE)))
    change = since_attribute(clock.now(), after) or {}
    return after, {"easypaiement_confirmations": [str(confirmations)], **change}


def record(gw: Gateway, adherent: str, writer: Callable[[], Gateway]) -> Completeness | None:
    """Re-read the adherent after a change of its validators or confirmations and keep ``SINCE`` up to date, written
    through ``writer`` when it changes (the request's ``Context.automation``: a delegate's token may not write its
    adherent group).

    Bookkeeping after an action that is already done: a failure here is logged, not raised (None), so that the
    action is not reported as failed. The audit then finds no record and reports an incomplete adherent at once."""
    try:
        state, current = read(gw, adherent)
        change = since_attribute(clock.now(), current)
        if change is not None:
            writer().set_group_attributes(state.group, change)
        return current
    except ProvisionerError as exc:
        log.warning("E@syPaiement completeness of adherent %s not recorded: %s: %s", adherent, type(exc).__name__, exc)
        return None
