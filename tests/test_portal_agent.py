"""The agents' back office on signed letters: each action, and the delegate's portal session ended when the
delegate is replaced, suspended or given a new password. The delegate's CSV import with its per-row report."""

from __future__ import annotations

import io

import pytest

from tests.portal_support import STAFF_PASSWORD, csrf_token, login_client, text
from tests.provisioning import DELEGATE_PASSWORD



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


def test_replacing_the_delegate_ends_their_portal_session(portal, agent_client, make_adherent):
    n = make_adherent()
    old = login_client(portal, n, DELEGATE_PASSWORD)
    assert old.get("/delegue/").status_code == 200
    page = f"/agent/adherents/{n}/remplacer"
    bad = post(agent_client, page, page, {"delegate-nom": "Ziani", "delegate-email": "pas-un-email"})
    assert bad.status_code == 422 and "adresse e-mail valide" in text(bad)
    resp = post(agent_client, page, page, {
        "delegate-civilite": "M", "delegate-nom": "Ziani", "delegate-prenom": "Hamza",
        "delegate-fonction": "DAF", "delegate-email": f"h.ziani.{n}@atlas.ma",
        "delegate-password": "Nouv2026", "delegate-password_confirm": "Nouv2026"})
    assert resp.status_code == 302, text(resp)[:500]
    assert old.get("/delegue/").status_code == 302  # the old delegate's session is over
    history = text(agent_client.get(f"/agent/adherents/{n}"))
    assert "Ziani" in history and "Bennani" in history
    new = login_client(portal, n, "Nouv2026")
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
