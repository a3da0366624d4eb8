"""`python -m devstack.demo` seeds through the provisioner, twice without harm; the printed logins work."""

from __future__ import annotations

from devstack.demo import ADHERENT, seed
from tests.portal_support import login_client, text


def test_demo_seed_is_idempotent_and_its_logins_work(portal, smtp_server):
    first = seed(portal.settings, "Demo2026")
    assert seed(portal.settings, "Demo2026") == first
    delegate = login_client(portal, first["delegate"], "Demo2026")
    page = text(delegate.get("/delegue/"))
    assert ADHERENT in page and "Atlas Textile SARL" in page
    assert "compta.atlas" in text(delegate.get("/delegue/t/compte-adherent"))
    assert login_client(portal, first["agent"], "Demo2026").get("/agent/").status_code == 200
    assert login_client(portal, first["auditor"], "Demo2026").get("/auditeur/").status_code == 200
