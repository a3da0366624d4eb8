"""CIMR staff accounts: agents (Agence virtuelle) and auditors (security team).

A staff account is a realm user in the top-level group that carries its realm role (/agents, /auditors;
realm/realm.yaml). Created by an operator (demo, scripts); audited like every other action.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.trail import audited
from provisioner.core import Services
from provisioner.errors import RuleViolation
from provisioner.gateway import Gateway
from provisioner.rules import M, check_email, check_name, check_password_pair, collect, raise_if
from provisioner.tenancy import AGENT, AUDITOR, Actor

GROUP = {AGENT: "/agents", AUDITOR: "/auditors"}


@dataclass(frozen=True)
class StaffMember:
    username: str
    role: str                 # agent / auditor
    prenom: str
    nom: str
    email: str
    password: str = field(repr=False, default="")


def create_staff(gw: Gateway, services: Services, operator: Actor, member: StaffMember) -> str:
    """Create an agent or auditor (group membership carries the role); returns the Keycloak id.

    Raises ValidationError (fields), RuleViolation('role' / 'username' taken)."""
    if member.role not in GROUP:
        raise RuleViolation("role", M("Rôle : agent ou auditor.", "Role: agent or auditor."))
    raise_if(collect({"prenom": check_name(member.prenom), "nom": check_name(member.nom),
                      "email": check_email(member.email)})
             | check_password_pair(services.password_policy, member.password, member.password, member.username))
    with audited(services.db, operator, f"staff.create.{member.role}", None, member.username) as entry:
        if gw.user_by_username(member.username) is not None:
            raise RuleViolation("username", M(f"L'identifiant « {member.username} » est déjà utilisé.",
                                              f"The username '{member.username}' is already taken."))
        user_id = gw.create_user({
            "username": member.username, "enabled": True, "email": member.email, "emailVerified": True,
            "firstName": member.prenom, "lastName": member.nom, "groups": [GROUP[member.role]],
            "credentials": [{"type": "password", "value": member.password, "temporary": False}]})
        entry.after = {"role": member.role, "email": member.email}
    return user_id
