"""Forgotten password by secret questions: the flow, the policy, the e-mails, the lockout, and no way to
tell an existing login from an unknown one."""

from __future__ import annotations

import itertools
import re

import pytest

from devstack.builders import make_user
from tests.oidc_flow import Browser
from tests.portal_support import csrf_token, text

_addresses = itertools.count(10)
NEW_PASSWORD = "Neuf2026"


class Visitor:
    """A browser at its own client address (the lockout counts per address too)."""

    def __init__(self, portal):
        self.client = portal.client()
        self.env = {"REMOTE_ADDR": f"10.9.{next(_addresses)}.1"}

    def get(self, path):
        return self.client.get(path, environ_base=self.env)

    def post(self, path, data):
        page = self.client.get(path, environ_base=self.env).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return self.client.post(path, data={"csrf_token": token, **data}, environ_base=self.env)


@pytest.fixture
def user(make_adherent, service_gw, services, agent):
    n = make_adherent()
    u = make_user(service_gw, services, agent, n, "compte-adherent")
    return n, u.login


def start(visitor, login):
    resp = visitor.post("/mot-de-passe-oublie/", {"login": login})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/mot-de-passe-oublie/questions")
    return visitor.get("/mot-de-passe-oublie/questions")


def test_reset_by_secret_questions_end_to_end(portal, user, smtp_server, settings, spec):
    n, login = user
    v = Visitor(portal)
    page = text(start(v, login))
    assert "Ville de naissance de votre père ?" in page and "premier animal" in page
    resp = v.post("/mot-de-passe-oublie/questions", {"answer1": " FES ", "answer2": "mimi"})  # normalised
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/mot-de-passe-oublie/nouveau")
    page = text(v.get("/mot-de-passe-oublie/nouveau"))
    assert "De 5 à 10 caractères" in page and "lettres et chiffres uniquement" in page  # the policy, shown
    resp = v.post("/mot-de-passe-oublie/nouveau", {"password": "Neuf-2026", "password_confirm": "Neuf-2026"})
    assert resp.status_code == 422 and "lettres et des chiffres" in text(resp)
    resp = v.post("/mot-de-passe-oublie/nouveau", {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/termine")
    assert "informés par e-mail" in text(v.get("/mot-de-passe-oublie/termine"))
    # the user and the delegate are told, without the password
    delegate_mail = [b for b in smtp_server.bodies(f"delegue.{n}@atlas-textile.ma") if login in b]
    assert delegate_mail and all(NEW_PASSWORD not in b for b in smtp_server.bodies())
    # the new password is permanent and works in the teleservice
    client = spec.client("compte-adherent")
    result = Browser(settings.keycloak_url, settings.realm).login(
        "compte-adherent", client.url + client.redirect_paths[0], login, NEW_PASSWORD)
    assert result.code, text_of(result.page)
    # the step cannot be replayed
    assert v.get("/mot-de-passe-oublie/nouveau").status_code == 302


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))[:400]


def test_unknown_login_looks_the_same_as_a_real_one(portal, user):
    _, login = user
    real, fake = Visitor(portal), Visitor(portal)
    real_page, fake_page = start(real, login), start(fake, "nobody.like.this")
    assert real_page.status_code == fake_page.status_code == 200
    assert len(re.findall(r'<input[^>]+name="answer\d"', fake_page.get_data(as_text=True))) == 2
    assert start(Visitor(portal), "nobody.like.this").get_data(as_text=True).count("?") \
        == fake_page.get_data(as_text=True).count("?")  # stable decoys
    r1 = real.post("/mot-de-passe-oublie/questions", {"answer1": "x", "answer2": "y"})
    r2 = fake.post("/mot-de-passe-oublie/questions", {"answer1": "x", "answer2": "y"})
    assert r1.status_code == r2.status_code == 422
    msg = "Les réponses ne correspondent pas"
    assert msg in text(r1) and msg in text(r2)


def test_wrong_answers_lock_the_login_even_from_another_address(portal, user):
    _, login = user
    v = Visitor(portal)
    start(v, login)
    for _ in range(3):
        assert v.post("/mot-de-passe-oublie/questions", {"answer1": "x", "answer2": "y"}).status_code == 422
    resp = v.post("/mot-de-passe-oublie/questions", {"answer1": "Fès", "answer2": "Mimi"})
    assert resp.status_code == 429 and "bloquée" in text(resp)
    other = Visitor(portal)
    resp = other.post("/mot-de-passe-oublie/", {"login": login})
    assert resp.status_code == 429  # the login is locked, whatever the address


def test_wrong_answers_lock_the_address_across_logins(portal):
    v = Visitor(portal)
    for i in range(10):
        start(v, f"ghost{i}.login")
        assert v.post("/mot-de-passe-oublie/questions", {"answer1": "x", "answer2": "y"}).status_code == 422
    resp = v.post("/mot-de-passe-oublie/", {"login": "another.one"})
    assert resp.status_code == 429
    assert Visitor(portal).post("/mot-de-passe-oublie/", {"login": "another.one"}).status_code == 302


@pytest.mark.parametrize("state, allowed", [
    ({"login": "x", "questions": ["?"]}, False),                       # questions not answered yet
    ({"login": "x", "user_id": "some-id", "at": -601}, False),         # answered more than 10 minutes ago
    ({"login": "x", "user_id": "some-id", "at": -5}, True),
])
def test_new_password_step_needs_fresh_correct_answers(portal, state, allowed):
    import time
    client = portal.client()
    with client.session_transaction() as sess:
        sess["reset"] = {**state, **({"at": time.time() + state["at"]} if "at" in state else {})}
    resp = client.get("/mot-de-passe-oublie/nouveau")
    assert (resp.status_code == 200) is allowed
