"""What `apply` repairs besides the plan: the adherents' Keycloak delegations (fine-grained admin permissions,
provisioner/permissions.py). Adherents are data, but their delegation is security configuration: `apply` runs
``permissions.repair_all(gw, deep=False)`` after the plan, and `plan` shows what it would do with ``plan_repairs``,
its dry-run (reads only)."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.gateway import Gateway
from provisioner.permissions import DRIFTED, MISSING, ROOT_PATH, ROOT_PERMISSION, check_all
from provisioner.realm.spec import RealmSpec
from provisioner.tenancy import DELEGATE
from provisioner.tree import ADHERENTS, adherent_path, delegate_group_path

KIND = "delegation"  # how plan names them, beside the realm's kinds (realm.plan.KINDS)


@dataclass(frozen=True)
class Repair:
    """A delegation ``repair_all`` would create (missing) or fix (drifted): ``key`` names its permission
    (``adherent-<n>``, or ``adherents-root`` for the one every delegate needs); ``detail`` is what the check found."""

    action: str  # "create" | "update"
    key: str
    adherent: str | None
    detail: str

    def __str__(self) -> str:
        return f"{'+' if self.action == 'create' else '~'} {KIND} {self.key}\n    {self.detail}"

    def to_json(self) -> dict:
        return {"action": self.action, "kind": KIND, "key": self.key, "adherent": self.adherent,
                "detail": self.detail}


def plan_repairs(gw: Gateway, spec: RealmSpec, realm_exists: bool = True) -> tuple[Repair, ...]:
    """What ``permissions.repair_all(gw, deep=False)`` would do now, without writing: the findings of its check
    (``check_all``) that it repairs, but those it skips (no /adherents group or no `delegate` role for the root
    permission; an adherent without /delegates/<n>, whose delegation ``ensure_delegation`` cannot make).

    In a realm not created yet (``realm_exists`` false: the plan creates it) nothing can be read: `apply` then makes
    the root permission once the plan has made /adherents and the `delegate` role, if realm/ declares them."""
    if not realm_exists:
        declared = (any(g.name == ADHERENTS for g in spec.groups) and any(r.name == DELEGATE for r in spec.realm_roles))
        return (Repair("create", ROOT_PERMISSION, None, f"new realm: every delegate's view of {ROOT_PATH}"),) \
            if declared else ()
    out = []
    for finding in check_all(gw, deep=False):
        if finding.code not in (MISSING, DRIFTED):
            continue  # foreign or type-wide permissions: reported by `provisioner permissions`, never repaired
        if finding.target == ROOT_PERMISSION:
            repairable = gw.group_by_path(ROOT_PATH) is not None and gw.realm_role(DELEGATE) is not None
        elif finding.adherent:
            repairable = all(gw.group_by_path(p) is not None
                             for p in (adherent_path(finding.adherent), delegate_group_path(finding.adherent)))
        else:
            repairable = False
        if repairable:
            out.append(Repair("create" if finding.code == MISSING else "update", finding.target, finding.adherent,
                              finding.detail))
    return tuple(out)
