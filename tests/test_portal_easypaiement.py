"""The brochure's order in the portal: 2 confirmations first, a banner on every delegate page until two validators
are enabled, leading to "Nouveau validateur"; a departing validator is disabled after a confirmation page."""

from __future__ import annotations

import re

import pytest

from devstack.builders import DELEGATE_PASSWORD, make_user
from provisioner.context import Context
from provisioner.tenancy import Actor
from tests.portal_support import csrf_token, login_client, text

PAGES = ("/delegue/", "/delegue/t/easypaiement", "/delegue/t/compte-adherent",
         "/delegue/journal", "/delegue/import", "/delegue/logins", "/delegue/t/easypaiement/nouveau")


@pytest.fixture(scope="module")
def delegate(portal, make_adherent):
    n = make_adherent()
    return n, login_client(portal, n, DELEGATE_PASSWORD)


def banner(resp) -> str | None:
    page = text(resp)
    return page[page.index("Adhérent incomplet"):][:400] if "Adhérent incomplet" in page else None


def test_two_confirmations_first_then_a_banner_on_every_page_until_two_validators(delegate, service_gw, services):
    n, client = delegate
    assert all(banner(client.get(p)) is None for p in PAGES)  # 1 confirmation: nothing missing
    token = csrf_token(client, "/delegue/")
    resp = client.post("/delegue/parametres", data={"csrf_token": token, "confirmations": "2"})
    assert resp.status_code == 302, text(resp)[:500]
    for path in PAGES:
        said = banner(client.get(path))
        assert said and "aucun validateur actif" in said and "Nouveau validateur" in said, path
    page = client.get("/delegue/").get_data(as_text=True)
    assert 'href="/delegue/t/easypaiement/nouveau?pouvoir=validateur"' in page
    form = client.get("/delegue/t/easypaiement/nouveau?pouvoir=validateur").get_data(as_text=True)
    checked = re.findall(r'<input[^>]*\bchecked\b[^>]*>', form)
    assert len(checked) == 1 and 'value="validateur"' in checked[0]  # the power comes ticked

    me = Actor.delegate(n)
    make_user(service_gw, services, me, n, "easypaiement", ("validateur",))
    assert "n'a que 1 validateur actif" in banner(client.get("/delegue/"))
    make_user(service_gw, services, me, n, "easypaiement", ("ordonnateur", "validateur"))
    assert all(banner(client.get(p)) is None for p in PAGES)


def test_disabling_a_validator_still_needed_asks_for_a_confirmation_first(delegate, service_gw, services):
    n, client = delegate
    me = Actor.delegate(n)
    v1 = make_user(service_gw, services, me, n, "easypaiement", ("validateur",))
    v2 = make_user(service_gw, services, me, n, "easypaiement", ("validateur",))
    token = csrf_token(client, "/delegue/")
    assert client.post("/delegue/parametres", data={"csrf_token": token, "confirmations": "2"}).status_code == 302
    # others may remain from the previous test: leave exactly v1 and v2 enabled
    from provisioner.users import list_users
    for u in list_users(Context(service_gw, services, me, n), "easypaiement")["easypaiement"]:
        if u.login not in (v1.login, v2.login) and u.enabled:
            from provisioner.teleservice_users import disable_user
            disable_user(Context(service_gw, services, me, n), u.login, confirmed=True)

    resp = client.post("/delegue/utilisateurs/etat", data={"csrf_token": token, "login": v2.login,
                                                           "action": "disable"})
    assert resp.status_code == 200 and "Confirmer la désactivation" in text(resp)
    assert "n'aura plus que 1 validateur(s) actif(s)" in text(resp)
    assert 'name="confirmed" value="1"' in resp.get_data(as_text=True)
    assert service_gw.user_by_username(v2.login).enabled  # nothing done yet
    resp = client.post("/delegue/utilisateurs/etat", data={"csrf_token": token, "login": v2.login,
                                                           "action": "disable", "confirmed": "1"})
    assert resp.status_code == 302
    assert not service_gw.user_by_username(v2.login).enabled
    assert "n'a que 1 validateur actif" in banner(client.get("/delegue/"))
