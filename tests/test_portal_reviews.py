"""Access reviews in the portal (portal/views/review.py): the delegate's « Revue des accès » keeps or revokes its own
users only — another adherent's item by id in the URL, or named in a forged form field, is never touched — and the
security team sees each campaign's completion per adherent and exports it (CSV, HTML)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD
from provisioner import reviews, access_reviews
from provisioner.context import resolve_actor, Context
from tests.people import adherent_of, create_user
from tests.portal_support import csrf_token, login_client, text


@pytest.fixture(scope="module")
def world(portal, make_adherent, admin_gw, service_gw, services, staff):
    a, b = make_adherent(), make_adherent()
    logins = {key: create_user(admin_gw, adherent_of(admin_gw, n), "compte-adherent", ("utilisateur",))[1]
              for key, n in (("a1", a), ("a2", a), ("a3", a), ("b1", b))}
    auditor = resolve_actor(service_gw, staff["auditor"])
    c = reviews.open_campaign(Context(service_gw, services, auditor), "Revue portail", datetime.now(timezone.utc)
                              + timedelta(days=14), "disable", "7,1", adherents=[a, b])
    items = {i.login: i.id for i in access_reviews.items(services, c.id)}
    client = login_client(portal, a, DELEGATE_PASSWORD)
    return {"a": a, "b": b, "logins": logins, "items": {k: items[v] for k, v in logins.items()}, "campaign": c,
            "client": client, "token": csrf_token(client, "/delegue/revues/")}


def item(services, world, key: str) -> access_reviews.Item:
    return next(i for i in access_reviews.items(services, world["campaign"].id) if i.id == world["items"][key])


def b1_untouched(services, service_gw, world) -> None:
    assert item(services, world, "b1").pending
    assert service_gw.user_by_username(world["logins"]["b1"]).enabled


def test_the_delegate_sees_its_own_users_to_review_from_its_space(world):
    page = world["client"].get("/delegue/")
    assert "Revue des accès" in text(page) and 'href="/delegue/revues/"' in page.get_data(as_text=True)
    resp = world["client"].get("/delegue/revues/")
    assert resp.status_code == 200
    shown = text(resp)
    assert "Revue portail" in shown and "Compte Adhérent" in shown
    assert all(world["logins"][k] in shown for k in ("a1", "a2", "a3")) and world["logins"]["b1"] not in shown


def test_the_delegate_keeps_one_user_and_revokes_another(world, services, service_gw):
    client, token = world["client"], world["token"]
    resp = client.post(f"/delegue/revues/{world['items']['a1']}", data={"csrf_token": token, "decision": "keep"})
    assert resp.status_code == 302
    assert item(services, world, "a1").decision == "keep"
    resp = client.post(f"/delegue/revues/{world['items']['a2']}", data={"csrf_token": token, "decision": "revoke"},
                       follow_redirects=True)
    assert resp.status_code == 200 and "révoqué : compte désactivé" in text(resp)
    assert item(services, world, "a2").decision == "revoke"
    assert not service_gw.user_by_username(world["logins"]["a2"]).enabled
    again = client.post(f"/delegue/revues/{world['items']['a1']}", data={"csrf_token": token, "decision": "revoke"},
                        follow_redirects=True)
    assert again.status_code == 200 and "déjà été prise" in text(again) and service_gw.user_by_username(world["logins"]["a1"]).enabled
    odd = client.post(f"/delegue/revues/{world['items']['a3']}", data={"csrf_token": token, "decision": "oui"},
                      follow_redirects=True)
    assert odd.status_code == 200 and "Choisissez « Conserver »" in text(odd) and item(services, world, "a3").pending


def test_another_adherent_item_by_id_in_the_url_is_forbidden(world, services, service_gw):
    resp = world["client"].post(f"/delegue/revues/{world['items']['b1']}",
                                data={"csrf_token": world["token"], "decision": "revoke"})
    assert resp.status_code == 403 and world["logins"]["b1"] not in text(resp)
    b1_untouched(services, service_gw, world)


def test_a_forged_form_field_decides_only_the_item_of_the_url(world, services, service_gw):
    """The form has no item, adherent or login field: ones added by hand are ignored."""
    resp = world["client"].post(f"/delegue/revues/{world['items']['a3']}", data={
        "csrf_token": world["token"], "decision": "keep", "item_id": world["items"]["b1"], "adherent": world["b"],
        "login": world["logins"]["b1"]})
    assert resp.status_code == 302
    assert item(services, world, "a3").decision == "keep"
    b1_untouched(services, service_gw, world)


def test_decisions_need_csrf(world, services):
    resp = world["client"].post(f"/delegue/revues/{world['items']['b1']}", data={"decision": "revoke"})
    assert resp.status_code == 400 and item(services, world, "b1").pending


def test_the_security_team_sees_completion_per_adherent_and_exports_it(world, portal, staff):
    c = world["campaign"]
    auditor = login_client(portal, staff["auditor"], STAFF_PASSWORD)
    assert "Revue portail" in text(auditor.get("/auditeur/revues/"))
    page = text(auditor.get(f"/auditeur/revues/{c.id}"))
    assert world["a"] in page and world["b"] in page
    resp = auditor.get(f"/auditeur/revues/{c.id}.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = {r["adherent"]: r for r in csv.DictReader(io.StringIO(resp.get_data(as_text=True)))}
    assert set(rows) == {world["a"], world["b"]}
    assert (rows[world["a"]]["users"], rows[world["a"]]["kept"], rows[world["a"]]["revoked"],
            rows[world["a"]]["pending"]) == ("3", "2", "1", "0")
    assert (rows[world["b"]]["users"], rows[world["b"]]["pending"], rows[world["b"]]["completion_percent"]) == \
        ("1", "1", "0")
    decisions = auditor.get(f"/auditeur/revues/{c.id}.csv?section=decisions").get_data(as_text=True)
    assert {r["login"]: r["decision"] for r in csv.DictReader(io.StringIO(decisions))}[world["logins"]["a2"]] == \
        "revoke"
    html = auditor.get(f"/auditeur/revues/{c.id}.html")
    assert html.status_code == 200 and world["logins"]["a2"] in html.get_data(as_text=True)
    assert auditor.get("/auditeur/revues/999999.csv").status_code == 404
    # Auditors read; deciding is the delegate's.
    token = csrf_token(auditor, "/auditeur/")
    assert auditor.post(f"/delegue/revues/{world['items']['b1']}", data={"csrf_token": token,
                                                                          "decision": "keep"}).status_code == 403


def test_a_delegate_cannot_open_the_auditors_pages(world):
    assert world["client"].get("/auditeur/revues/").status_code == 403
    assert world["client"].get(f"/auditeur/revues/{world['campaign'].id}.csv").status_code == 403
