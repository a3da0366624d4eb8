"""The plan: what turns the live realm into realm/'s, as Create / Update / Delete values.

The comparison is pure: ``realm.desired.desired_state(spec)`` and the live state read by ``realm.live.read_live``
have the same shape, ``{(kind, key): object}``. Only what we declare is compared (Keycloak's defaults are never
drift); deletions are planned only for kinds this project owns. ``plan_realm`` reads the live realm and plans,
and `provisioner plan` adds the adherents' delegations `apply` would repair (permissions.plan_repairs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from provisioner.errors import UnsafePlan
from provisioner.gateway import Gateway
from provisioner.realm.desired import desired_state
from provisioner.realm.live import read_live
from provisioner.realm.spec import RealmSpec

# Apply order; deletions run in reverse.
KINDS = ("realm", "realm-role", "user-profile-attribute", "flow", "flow-binding", "client", "builtin-client",
         "client-role", "mapper", "service-account-roles", "group", "client-profile", "client-policy",
         "client-scope")


@dataclass(frozen=True)
class Change:
    """One planned change. ``diff`` lists (field, live, desired) for updates."""

    action: str  # "create" | "update" | "delete"
    kind: str
    key: str
    desired: Any = None
    live: Any = None
    diff: tuple[tuple[str, Any, Any], ...] = ()

    @property
    def order(self) -> tuple[int, int]:
        index = KINDS.index(self.kind)
        return (1, -index) if self.action == "delete" else (0, index)

    def __str__(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        line = f"{sign} {self.kind} {self.key}"
        for name, old, new in self.diff:
            line += f"\n    {name}: {_short(_masked(name, old))} -> {_short(_masked(name, new))}"
        return line

    def to_json(self) -> dict:
        out: dict[str, Any] = {"action": self.action, "kind": self.kind, "key": self.key}
        if self.diff:
            out["diff"] = [{"field": f, "live": _masked(f, o), "desired": _masked(f, n)} for f, o, n in self.diff]
        return out


def _masked(name: str, value: Any) -> Any:
    """Client secrets are compared, never shown (plans end up in CI logs and the audit)."""
    return "********" if name == "secret" and value is not None else value


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class Plan:
    """The changes to the realm, and, when `provisioner plan` adds them, the delegations `apply` repairs after them
    (``permissions.plan_repairs``: ``permissions.Repair`` values; None: not checked). ``empty``: `apply` would do
    nothing."""

    changes: tuple[Change, ...] = field(default_factory=tuple)
    repairs: tuple | None = None

    @property
    def creates_realm(self) -> bool:
        """The realm does not exist yet: the plan creates it."""
        return any(c.action == "create" and c.kind == "realm" for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.repairs

    @property
    def deletes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == "delete")

    def raise_if_unsafe(self, allow_delete: bool, force: bool, max_changes: int = 200) -> None:
        """Refuse deletions unless allowed, and unusually large change sets unless forced."""
        if self.deletes and not allow_delete:
            names = ", ".join(f"{c.kind} {c.key}" for c in self.deletes)
            raise UnsafePlan(f"the plan deletes {names}; re-run with --allow-delete to do it")
        if len(self.changes) > max_changes and not force:
            raise UnsafePlan(f"the plan has {len(self.changes)} changes (> {max_changes}); re-run with --force")

    def __str__(self) -> str:
        if not self.changes:
            lines = ["No changes: the live realm matches realm/."]
        else:
            counts = {a: sum(c.action == a for c in self.changes) for a in ("create", "update", "delete")}
            lines = [str(c) for c in self.changes]
            lines.append(f"Plan: {counts['create']} to create, {counts['update']} to update, "
                         f"{counts['delete']} to delete.")
        if self.repairs is not None:
            lines += [str(r) for r in self.repairs]
            created = sum(r.action == "create" for r in self.repairs)
            lines.append(f"Repair: {created} Keycloak delegation(s) to create, {len(self.repairs) - created} to fix."
                         if self.repairs else "Nothing to repair: every adherent has its Keycloak delegation.")
        return "\n".join(lines)

    def to_json(self) -> dict:
        out = {"changes": [c.to_json() for c in self.changes], "empty": self.empty}
        if self.repairs is not None:
            out["repairs"] = [r.to_json() for r in self.repairs]
        return out

# --- comparison ------------------------------------------------------------------------------------

def included(desired: Any, live: Any) -> bool:
    """True when every value declared in ``desired`` is present and equal in ``live``."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(included(v, live.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(included(d, l) for d, l in zip(desired, live))
    return desired == live


def field_diff(desired: Any, live: Any, path: str = "") -> tuple[tuple[str, Any, Any], ...]:
    """The declared leaves whose live value differs, as (dotted path, live, desired)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return tuple(d for k, v in desired.items()
                     for d in field_diff(v, live.get(k), f"{path}.{k}" if path else str(k)))
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live) \
            and any(isinstance(x, dict) for x in desired):
        return tuple(d for i, (v, l) in enumerate(zip(desired, live)) for d in field_diff(v, l, f"{path}[{i}]"))
    return () if included(desired, live) else ((path or "value", live, desired),)


def compute_plan(desired: dict[tuple[str, str], Any], live: dict[tuple[str, str], Any],
                 owned_live_keys: set[tuple[str, str]] | None = None) -> Plan:
    """Pure: the changes that turn ``live`` into ``desired``.

    ``owned_live_keys`` are live objects this project owns (so undeclared ones are deleted); by
    default every live key is owned.
    """
    changes: list[Change] = []
    for key, want in desired.items():
        have = live.get(key)
        if have is None:
            changes.append(Change("create", key[0], key[1], desired=want))
        elif not included(want, have):
            diff = field_diff(want, have)
            changes.append(Change("update", key[0], key[1], desired=want, live=have, diff=diff))
    owned = set(live) if owned_live_keys is None else owned_live_keys
    for key in sorted(owned - set(desired)):
        changes.append(Change("delete", key[0], key[1], live=live[key]))
    return Plan(tuple(sorted(changes, key=lambda c: (c.order, c.key))))


def plan_realm(gw: Gateway, spec: RealmSpec) -> Plan:
    """Read the live realm and compare it with realm/ (no change made)."""
    live, owned = read_live(gw, spec)
    return compute_plan(desired_state(spec), live, owned)
