"""The adherent's groups in Keycloak: /adherents/<n>/<client>/<role> (leaves carry the client role),
/delegates/<n>; group attributes hold the adherent's status, confirmations and categories. And its accounts:
every user whose `adherent` attribute is its numéro (its teleservice users and its delegate)."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.errors import Message, NotFound, RuleViolation
from provisioner.gateway import Gateway, Group, User
from provisioner.catalogue import Catalogue
from provisioner.rules import EASYPAIEMENT, VALIDATEUR

ADHERENTS, DELEGATES = "adherents", "delegates"
ACTIVE, SUSPENDED, TERMINATED = "active", "suspended", "terminated"  # terminated: résiliation (termination.py)
TERMINATED_AT = "terminated_at"  # the adherent group's attribute: when it was terminated (ISO date-time)


def adherent_path(adherent: str) -> str:
    return f"/{ADHERENTS}/{adherent}"


def leaf_path(adherent: str, client: str, role: str) -> str:
    return f"/{ADHERENTS}/{adherent}/{client}/{role}"


def delegate_group_path(adherent: str) -> str:
    return f"/{DELEGATES}/{adherent}"


@dataclass(frozen=True)
class AdherentState:
    numero: str
    group: Group
    raison_sociale: str
    status: str
    confirmations: int
    categories: tuple[str, ...]

    @property
    def suspended(self) -> bool:
        """No change is possible: suspended, or terminated (résiliation) and awaiting its purge."""
        return self.status in (SUSPENDED, TERMINATED)


def ensure_tree(gw: Gateway, adherent: str, attributes: dict[str, list[str]], catalogue: Catalogue) -> Group:
    """Create what is missing of the adherent's group tree, a branch per teleservice of the catalogue
    (re-runnable), and return /adherents/<n>."""
    top = gw.ensure_group(None, ADHERENTS)
    group = gw.ensure_group(top, adherent, attributes)
    for client, roles in catalogue.powers().items():
        client_uuid = gw.client_uuid(client)
        middle = gw.ensure_group(group, client)
        for role in roles:
            leaf = gw.ensure_group(middle, role)
            if role not in gw.group_client_roles(leaf.id, client_uuid):
                gw.map_client_roles_to_group(leaf.id, client_uuid, [gw.client_role(client_uuid, role)])
    gw.ensure_group(gw.ensure_group(None, DELEGATES), adherent)
    return group


NOT_SUBSCRIBED = Message("Cet adhérent n'a pas d'abonnement validé aux téléservices.",
                         "This member has no approved teleservices subscription.")


def adherent_state(gw: Gateway, adherent: str) -> AdherentState:
    """The approved adherent's group and attributes; RuleViolation('adherent') when there is none."""
    group = gw.group_by_path(adherent_path(adherent))
    if group is None:
        raise RuleViolation("adherent", NOT_SUBSCRIBED)
    return _state(adherent, group)


def _state(adherent: str, group: Group) -> AdherentState:
    return AdherentState(adherent, group, group.attr("raison_sociale") or "", group.attr("status") or ACTIVE,
                         int(group.attr("easypaiement_confirmations") or 1),
                         tuple(group.attributes.get("categories") or ()))


@dataclass(frozen=True)
class Member:
    user: User
    groups: tuple[str, ...]  # its groups under the adherent: "" (the adherent's own), "easypaiement/validateur", ...
    locked: bool = False     # held by brute-force detection (what GET /attack-detection/brute-force/users/<id> says)

    def roles(self, clients: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The roles it holds by membership of a leaf /adherents/<n>/<client>/<role> of one of ``clients``."""
        return tuple(sorted(p.split("/")[1] for p in self.groups if p.count("/") == 1 and p.split("/")[0] in clients))


def adherent_members(gw: Gateway, adherent: str) -> tuple[AdherentState, list[Member]]:
    """The approved adherent and every member of its tree, in one request (our Keycloak extension); Keycloak
    refuses a delegate another adherent's (Forbidden). RuleViolation('adherent') when there is no such adherent."""
    try:
        found = gw.adherent_members(adherent)
    except NotFound:
        raise RuleViolation("adherent", NOT_SUBSCRIBED) from None
    group = Group.from_rep({**found["adherent"], "path": adherent_path(adherent)})
    return _state(adherent, group), [Member(User.from_rep(u), tuple(u.get("groups") or ()), bool(u.get("locked")))
                                   for u in found["users"]]


def require_active(state: AdherentState) -> None:
    if state.suspended:
        raise RuleViolation("adherent", Message(
            "L'adhérent est suspendu par la CIMR : aucune modification n'est possible.",
            "The member is suspended by CIMR: no change is possible."))


def leaf_group(gw: Gateway, adherent: str, client: str, role: str) -> Group:
    group = gw.group_by_path(leaf_path(adherent, client, role))
    if group is None:
        raise RuleViolation("adherent", NOT_SUBSCRIBED)
    return group


def enabled_validators(gw: Gateway, adherent: str) -> list[User]:
    """The adherent's enabled E@syPaiement validators."""
    return [u for u in gw.group_members(leaf_group(gw, adherent, EASYPAIEMENT, VALIDATEUR).id) if u.enabled]


def powers_of(gw: Gateway, adherent: str, user_id: str) -> tuple[str, ...]:
    """The leaf groups (roles) of the adherent the user is a member of."""
    prefix = adherent_path(adherent) + "/"
    return tuple(sorted(g.path.rsplit("/", 1)[-1] for g in gw.user_groups(user_id)
                        if g.path.startswith(prefix) and g.path.count("/") == 4))


def adherent_accounts(gw: Gateway, adherent: str) -> list[User]:
    """Every account of the adherent: its teleservice users and its delegate."""
    return [u for u in gw.users_by_attribute("adherent", adherent) if u.attr("adherent") == adherent]


def set_enabled(gw: Gateway, user_id: str, enabled: bool, suspended: bool | None = None) -> None:
    """Enable or disable an account in one PUT. Enabling lifts the dormant mark (provisioner/dormant.py);
    ``suspended`` True tags the accounts a suspension or termination disabled (so that the reverse enables exactly
    those), False removes the tag, None leaves it."""
    rep = gw.user_rep(user_id)
    attrs = dict(rep.get("attributes") or {})
    if enabled:
        attrs.pop("disabled_as_dormant", None)
    if suspended is not None:
        attrs.pop("suspended_by_cimr", None)
        if suspended:
            attrs["suspended_by_cimr"] = ["true"]
    rep.update(enabled=enabled, attributes=attrs)
    gw.update_user(user_id, rep)
