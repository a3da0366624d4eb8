"""A delegate acts only inside their adherent: every action is tried against another adherent's user."""

from __future__ import annotations

import pytest

from devstack.builders import make_user, new_user
from provisioner import adherents, bulk, users
from provisioner import teleservice_users
from provisioner.context import Context
from provisioner.trail import events
from provisioner.errors import TenantViolation
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.context import resolve_actor
from provisioner.teleservice_users import UserDetails
from provisioner.tenancy import Actor


ANSWERS = (SecretAnswer("Couleur ?", "Bleu"), SecretAnswer("Plat ?", "Tajine"))
DETAILS = UserDetails("Nom", "Prenom", "x@y.ma")

# Every delegate action, as (name, call(gw, services, actor, adherent, login)).
ACTIONS = [
    ("create_user", lambda gw, s, a, n, login: users.create_user(Context(gw, s, a, n), new_user())),
    ("list_users", lambda gw, s, a, n, login: users.list_users(Context(gw, s, a, n))),
    ("get_user", lambda gw, s, a, n, login: users.get_user(Context(gw, s, a, n), login)),
    ("find_logins", lambda gw, s, a, n, login: users.find_logins(Context(gw, s, a, n), login)),
    ("set_password", lambda gw, s, a, n, login: users.set_password(Context(gw, s, a, n), login, "Pirate26", "Pirate26")),
    ("change_access", lambda gw, s, a, n, login: users.change_access(Context(gw, s, a, n), login, Access("compte-adherent"))),
    ("update_details", lambda gw, s, a, n, login: users.update_details(Context(gw, s, a, n), login, DETAILS)),
    ("set_secret_questions", lambda gw, s, a, n, login: users.set_secret_questions(Context(gw, s, a, n), login, ANSWERS)),
    ("disable_user", lambda gw, s, a, n, login: teleservice_users.disable_user(Context(gw, s, a, n), login)),
    ("enable_user", lambda gw, s, a, n, login: users.enable_user(Context(gw, s, a, n), login)),
    ("unlock_user", lambda gw, s, a, n, login: users.unlock_user(Context(gw, s, a, n), login)),
    ("confirmations", lambda gw, s, a, n, login: adherents.set_easypaiement_confirmations(Context(gw, s, a, n), 1)),
    ("get_adherent", lambda gw, s, a, n, login: adherents.get_adherent(Context(gw, s, a, n))),
    ("delegate_history", lambda gw, s, a, n, login: adherents.delegate_history(s, a, n)),
    ("bulk_import", lambda gw, s, a, n, login: bulk.import_users(Context(gw, s, a, n), "login,nom\n")),
]
PER_USER = {"get_user", "set_password", "change_access", "update_details", "set_secret_questions", "disable_user",
            "enable_user", "unlock_user"}


@pytest.fixture(scope="module")
def two_adherents(make_adherent, service_gw, services):
    """Adherent A (whose delegate acts) and B (the victim), B with a user."""
    a, b = make_adherent(), make_adherent()
    victim = make_user(service_gw, services, Actor.delegate(b), b, "compte-adherent")
    return a, b, victim.login


@pytest.mark.parametrize("name, action", ACTIONS, ids=[n for n, _ in ACTIONS])
def test_delegate_cannot_act_on_another_adherent(service_gw, services, two_adherents, name, action):
    a, b, victim = two_adherents
    before = service_gw.user_rep(service_gw.user_by_username(victim).id)
    with pytest.raises(TenantViolation):
        action(service_gw, services, Actor.delegate(a), b, victim)
    after = service_gw.user_rep(service_gw.user_by_username(victim).id)
    assert before == after
    assert events(services.db, actor=a)[0].outcome == "refused"


@pytest.mark.parametrize("name, action", [(n, f) for n, f in ACTIONS if n in PER_USER],
                         ids=[n for n, _ in ACTIONS if n in PER_USER])
def test_delegate_cannot_reach_another_adherents_user_through_their_own_adherent(service_gw, services, two_adherents,
                                                                                  name, action):
    a, b, victim = two_adherents
    with pytest.raises(TenantViolation):
        action(service_gw, services, Actor.delegate(a), a, victim)
    with pytest.raises(TenantViolation):  # nor the other adherent's delegate account, nor their own
        action(service_gw, services, Actor.delegate(a), a, b)
    with pytest.raises(TenantViolation):
        action(service_gw, services, Actor.delegate(a), a, a)
    assert events(services.db, actor=a)[0].outcome == "refused"


def test_auditor_changes_nothing(service_gw, services, two_adherents):
    a, b, victim = two_adherents
    with pytest.raises(TenantViolation):
        teleservice_users.disable_user(Context(service_gw, services, Actor("secu.idrissi", "auditor"), b), victim)


def test_actor_is_resolved_from_keycloak(service_gw, admin_gw, two_adherents):
    a, _, victim = two_adherents
    assert resolve_actor(service_gw, a) == Actor(a, "delegate", a)
    agents = admin_gw.group_by_path("/agents")
    agent_id = admin_gw.create_user({"username": "agent.resolve", "enabled": True, "groups": ["/agents"]})
    try:
        assert agents is not None and resolve_actor(service_gw, "agent.resolve") == Actor.agent("agent.resolve")
    finally:
        admin_gw.delete_user(agent_id)
    with pytest.raises(Exception):
        resolve_actor(service_gw, victim)  # a teleservice user is neither agent nor delegate
