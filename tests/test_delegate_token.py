"""The same actions run under the delegate's OWN access token (Gateway.with_token), as the portal does:
Keycloak's fine-grained permissions and our rules agree."""

from __future__ import annotations

import pytest

from devstack.builders import DELEGATE_PASSWORD, make_user, new_user
from provisioner import users
from provisioner import teleservice_users
from provisioner.adherents import set_easypaiement_confirmations
from provisioner.bulk import import_users
from provisioner.context import Context
from provisioner.errors import NotFound, RuleViolation, TenantViolation
from provisioner.gateway import Gateway
from provisioner.rules import Access
from provisioner.tenancy import Actor
from provisioner.teleservice_users import UserDetails
from tests.oidc_flow import password_login

pytestmark = pytest.mark.usefixtures("password_grant_client")


def delegate_gateway(settings, numero: str) -> Gateway:
    resp = password_login(settings, numero, DELEGATE_PASSWORD)
    assert resp.status_code == 200, resp.text
    return Gateway.with_token(settings, resp.json()["access_token"])


def test_delegate_actions_under_the_delegates_own_token(settings, services, make_adherent, service_gw):
    n = make_adherent()
    gw, me = delegate_gateway(settings, n), Actor.delegate(n)
    first = users.create_user(Context(gw, services, me, n), new_user("easypaiement", ("ordonnateur", "validateur")))
    second = make_user(gw, services, me, n, "easypaiement", ("validateur",))
    td = make_user(gw, services, me, n, access=Access("teledeclaration", ("fichier-preetabli",), "interne"))
    listed = users.list_users(Context(gw, services, me, n))
    assert sorted(u.login for u in listed["easypaiement"]) == sorted([first.login, second.login])
    assert users.get_user(Context(gw, services, me, n), td.login).access.categories == ("cadres", "employes", "ouvriers")
    assert [u.login for u in users.find_logins(Context(gw, services, me, n), td.login)] == [td.login]
    users.set_password(Context(gw, services, me, n), td.login, "Neuf2026", "Neuf2026")
    users.change_access(Context(gw, services, me, n), td.login, Access("teledeclaration", ("formulaire-saisie",), "externe",
                                                              "Fiduciaire Amal", ("cadres",)))
    users.update_details(Context(gw, services, me, n), td.login, UserDetails("Tazi", "Nadia", "nadia@atlas.ma"))
    set_easypaiement_confirmations(Context(gw, services, me, n), 2)
    with pytest.raises(RuleViolation):
        teleservice_users.disable_user(Context(gw, services, me, n), second.login)
    set_easypaiement_confirmations(Context(gw, services, me, n), 1)
    teleservice_users.disable_user(Context(gw, services, me, n), second.login)
    users.enable_user(Context(gw, services, me, n), second.login)
    assert users.unlock_user(Context(gw, services, me, n), second.login) is False
    report = import_users(Context(gw, services, me, n), "login,nom,prenom,email,password,teleservice\n"
                                                f"bk.{n},Alami,Rim,rim@atlas.ma,Bulk2026,eliquidation\n")
    assert report.created == [f"bk.{n}"] and not report.errors
    kc = service_gw.user_by_username(td.login)
    assert kc.attr("provider") == "Fiduciaire Amal" and kc.last_name == "Tazi"


def test_a_login_taken_in_another_adherent_is_a_clear_message_even_when_the_delegate_cannot_see_it(
        settings, services, make_adherent, service_gw):
    a, b = make_adherent(), make_adherent()
    taken = make_user(service_gw, services, Actor.delegate(b), b)
    gw = delegate_gateway(settings, a)
    assert gw.user_by_username(taken.login) is None  # Keycloak hides B's users from A's delegate
    with pytest.raises(RuleViolation) as exc:        # the POST's 409 becomes the same clear message
        make_user(gw, services, Actor.delegate(a), a, login=taken.login)
    assert exc.value.message.fr == f"L'identifiant « {taken.login} » est déjà utilisé : choisissez-en un autre."
    with pytest.raises((TenantViolation, NotFound)):  # invisible to A's token, refused by our check anyway
        teleservice_users.disable_user(Context(gw, services, Actor.delegate(a), a), taken.login)
    with pytest.raises(TenantViolation):
        teleservice_users.disable_user(Context(gw, services, Actor.delegate(a), b), taken.login)
