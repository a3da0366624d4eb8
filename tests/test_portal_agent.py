"""The agents' back office on signed letters: each action, and the delegate's portal session ended when the
delegate is replaced, suspended or given a new password. The delegate's CSV import with its per-row report."""

from __future__ import annotations

import io

import pytest

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD
from provisioner.context import Context
from tests.portal_support import csrf_token, login_client, text
from tests.provisioning import mailed_link



@pytest.fixture(scope="module")
def agent_client(portal, staff):
    return login_client(portal, staff["agent"], STAFF_PASSWORD)


def post(client, page: str, action: str, data: dict):
    return client.post(action, data={"csrf_token": csrf_token(client, page), **data})


def test_find_adherent(agent_client, make_adherent):
    n = make_adherent()
    resp = agent_client.get("/agent/adherents", query_string={"numero": n})
    assert resp.headers["Location"].endswith(f"/agent/adherents/{n}")
    assert "Atlas Textile SARL" in text(agent_client.get(f"/agent/adherents/{n}"))
    assert agent_client.get("/agent/adherents/99999999").status_code == 404


def test_replacing_the_delegate_ends_their_portal_session(portal, agent_client, make_adherent, smtp_server):
    n = make_adherent()
    old = login_client(portal, n, DELEGATE_PASSWORD)
    assert old.get("/delegue/").status_code == 200
    page = f"/agent/adherents/{n}/remplacer"
    bad = post(agent_client, page, page, {"delegate-nom": "Ziani", "delegate-email": "pas-un-email"})
    assert bad.status_code == 422 and "adresse e-mail valide" in text(bad)
    assert "delegate-password" not in text(agent_client.get(page))  # the agent never types the new password
    email = f"h.ziani.{n}@atlas.ma"
    resp = post(agent_client, page, page, {
        "delegate-civilite": "M", "delegate-nom": "Ziani", "delegate-prenom": "Hamza",
        "delegate-fonction": "DAF", "delegate-email": email})
    assert resp.status_code == 302, text(resp)[:500]
    assert old.get("/delegue/").status_code == 302  # the old delegate's session is over
    history = text(agent_client.get(f"/agent/adherents/{n}"))
    assert "Ziani" in history and "Bennani" in history and "Un lien pour choisir son mot de passe" in history

    # The new delegate follows the mailed link (anonymous) and chooses its password on the portal.
    link = f"/mot-de-passe/choisir/{mailed_link(smtp_server, email)}"
    visitor = portal.client()
    assert f"Identifiant : {n}" in text(visitor.get(link))
    weak = post(visitor, link, link, {"password": "ab", "password_confirm": "ab"})
    assert weak.status_code == 422 and "5 à 10 caractères" in text(weak)
    done = post(visitor, link, link, {"password": "Nouv2026", "password_confirm": "Nouv2026"})
    assert done.status_code == 200 and "Mot de passe enregistré" in text(done)
    assert visitor.get(link).status_code == 410 and "n'est plus valable" in text(visitor.get(link))  # once only
    assert portal.client().get("/mot-de-passe/choisir/inventé").status_code == 410
    new = login_client(portal, n, "Nouv2026")
    assert new.get("/delegue/").status_code == 200

    # The same person again, a new phone number: details only, the password stays.
    same = post(agent_client, page, page, {
        "delegate-civilite": "M", "delegate-nom": "Ziani", "delegate-prenom": "Hamza", "delegate-fonction": "DAF",
        "delegate-email": email, "delegate-telephone": "+212 522 00 11 22"})
    assert same.status_code == 302 and "son mot de passe ne change pas" in text(agent_client.get(same.headers["Location"]))
    assert new.get("/delegue/").status_code == 200


def test_suspend_and_reactivate(portal, agent_client, make_adherent):
    n = make_adherent()
    delegate = login_client(portal, n, DELEGATE_PASSWORD)
    page = f"/agent/adherents/{n}"
    resp = post(agent_client, page, f"{page}/suspendre", {"reason": "Courrier du 12/11"})
    assert resp.status_code == 302 and "suspendu" in text(agent_client.get(page))
    assert delegate.get("/delegue/").status_code == 302
    resp = post(agent_client, page, f"{page}/reactiver", {})
    assert resp.status_code == 302
    assert "réactivé" in text(agent_client.get(page))
    assert login_client(portal, n, DELEGATE_PASSWORD).get("/delegue/").status_code == 200


def test_delegate_email_and_password_on_signed_letters(portal, agent_client, make_adherent):
    n = make_adherent()
    page = f"/agent/adherents/{n}"
    bad = post(agent_client, page, f"{page}/email", {"email": "faux"})
    assert bad.status_code == 422 and "adresse e-mail valide" in text(bad)
    assert post(agent_client, page, f"{page}/email", {"email": f"nouveau.{n}@atlas.ma"}).status_code == 302
    assert f"nouveau.{n}@atlas.ma" in text(agent_client.get(page))
    bad = post(agent_client, page, f"{page}/mot-de-passe", {"password": "x", "password_confirm": "x"})
    assert bad.status_code == 422 and "5 à 10 caractères" in text(bad)
    delegate = login_client(portal, n, DELEGATE_PASSWORD)
    ok = post(agent_client, page, f"{page}/mot-de-passe", {"password": "Tempo2026", "password_confirm": "Tempo2026"})
    assert ok.status_code == 302
    assert delegate.get("/delegue/").status_code == 302  # sessions ended with the old password


def test_bulk_import_reports_per_row(portal, make_adherent):
    n = make_adherent()
    client = login_client(portal, n, DELEGATE_PASSWORD)
    csv = ("login,nom,prenom,email,password,teleservice,powers,question1,answer1,question2,answer2\n"
           f"imp1.{n},Tazi,Yasmine,imp1@atlas.ma,User2026,compte-adherent,,"
           "Ville de naissance de votre père ?,Fès,Nom de votre premier animal de compagnie ?,Mimi\n"
           f"imp2.{n},Tazi,Yasmine,pas-un-email,User2026,compte-adherent,,"
           "Ville de naissance de votre père ?,Fès,Nom de votre premier animal de compagnie ?,Mimi\n")
    resp = client.post("/delegue/import", data={"csrf_token": csrf_token(client, "/delegue/import"),
                                                "file": (io.BytesIO(csv.encode()), "users.csv")},
                       content_type="multipart/form-data")
    body = text(resp)
    assert resp.status_code == 200 and "1 créé(s)" in body and "1 ligne(s) en erreur" in body, body[:800]
    assert f"imp2.{n}" in body and "adresse e-mail valide" in body
    empty = client.post("/delegue/import", data={"csrf_token": csrf_token(client, "/delegue/import"),
                                                 "file": (io.BytesIO(b""), "empty.csv")},
                        content_type="multipart/form-data")
    assert empty.status_code == 422 and "non vide" in text(empty)


def test_the_delegates_lost_phone_on_a_signed_letter(portal, agent_client, make_adherent, admin_gw):
    n = make_adherent()
    delegate = login_client(portal, n, DELEGATE_PASSWORD)  # enrols its second factor at this first login
    delegate_id = admin_gw.user_by_username(n).id
    has_otp = lambda: any(c["type"] == "otp" for c in admin_gw.credentials(delegate_id))  # noqa: E731
    assert has_otp()
    page = f"/agent/adherents/{n}"
    assert agent_client.post(f"{page}/second-facteur", data={}).status_code == 400 and has_otp()  # no CSRF token
    as_delegate = delegate.post(f"{page}/second-facteur", data={"csrf_token": csrf_token(delegate, "/delegue/")})
    assert as_delegate.status_code == 403 and has_otp()  # not an agent, even with a valid form
    resp = post(agent_client, page, f"{page}/second-facteur", {})
    assert resp.status_code == 302 and not has_otp()
    assert "Second facteur de la personne déléguée supprimé" in text(agent_client.get(page))
    assert delegate.get("/delegue/").status_code == 302  # the session opened with the lost phone is over
    again = post(agent_client, page, f"{page}/second-facteur", {})
    assert "n'avait pas de second facteur" in text(agent_client.get(again.headers["Location"]))


def test_the_agent_keeps_the_active_categories_as_choices(agent_client, make_adherent, service_gw, services):
    """Categories are ticked in words (a typo can no longer retire one); a new one is typed apart."""
    import re

    from provisioner.adherents import get_adherent
    from provisioner.rules import Access
    from provisioner.tenancy import Actor
    from devstack.builders import make_user

    n = make_adherent()
    ouvrier = make_user(service_gw, services, Actor.delegate(n), n, "teledeclaration", access=Access(
        "teledeclaration", ("formulaire-saisie",), user_type="interne", categories=("ouvriers",)))
    page = f"/agent/adherents/{n}"
    shown = agent_client.get(page).get_data(as_text=True)
    ticked = re.findall(r'<input checked id="categories-\d" name="categories"[^>]* type="checkbox" value="(\w+)"> '
                        r'<label for="categories-\d">([^<]+)</label>', shown)
    assert ticked == [("cadres", "Cadres"), ("employes", "Employés"), ("ouvriers", "Ouvriers")], ticked
    bad = post(agent_client, page, f"{page}/categories", {})
    assert bad.status_code == 422 and "Au moins une catégorie" in text(bad)
    typo = post(agent_client, page, f"{page}/categories", {"categories": ["cadres", "employes", "ouvriers"],
                                                            "added": "Apprentis !"})
    assert typo.status_code == 422 and "apprentis !" in text(typo)
    assert get_adherent(Context(service_gw, services, Actor.agent("x"), n)).categories == ("cadres", "employes", "ouvriers")
    resp = post(agent_client, page, f"{page}/categories", {"categories": ["cadres", "employes"], "added": "apprentis"})
    shown = text(agent_client.get(resp.headers["Location"]))
    assert "Catégories actives : Cadres, Employés, Apprentis." in shown
    assert f"déclarent encore une catégorie retirée : {ouvrier.login}" in shown


def test_the_agent_terminates_and_reinstates_an_adherent(portal, agent_client, make_adherent):
    n = make_adherent()
    delegate = login_client(portal, n, DELEGATE_PASSWORD)
    page = f"/agent/adherents/{n}"
    blank = post(agent_client, page, f"{page}/resilier", {"resiliation-reason": "  "})
    assert blank.status_code == 422 and "Indiquez la lettre signée" in text(blank)
    resp = post(agent_client, page, f"{page}/resilier", {"resiliation-reason": "Lettre du 04/12, réf. 2026-118"})
    shown = text(agent_client.get(resp.headers["Location"]))
    assert "Adhérent résilié : 1 compte(s) désactivé(s)" in shown and "purge possible à partir du" in shown
    assert delegate.get("/delegue/").status_code == 302  # its session is over
    refused = post(agent_client, page, f"{page}/purger", {})  # not before the grace period
    assert "peut encore être annulée" in text(agent_client.get(refused.headers["Location"]))
    back = post(agent_client, page, f"{page}/annuler-resiliation", {})
    assert "Résiliation annulée : 1 compte(s) réactivé(s)" in text(agent_client.get(back.headers["Location"]))
    assert login_client(portal, n, DELEGATE_PASSWORD).get("/delegue/").status_code == 200


def test_the_subscription_page_speaks_words_not_keys(agent_client, service_gw, services):
    from provisioner.subscriptions import submit_subscription
    from devstack.builders import subscription_form

    sub = submit_subscription(service_gw, services, subscription_form())
    page = text(agent_client.get(f"/agent/abonnements/{sub.id}"))
    assert "Raison sociale" in page and "raison_sociale" not in page and "site_web" not in page
    assert "statut : en attente" in page and "pending" not in page
    assert "il y a moins d'1 h" in page and "il y a 0 heures" not in page
