"""The auditor space's security report (portal/views/auditor.py): auditors only, report page and downloads."""

from __future__ import annotations

import pytest

from devstack.builders import STAFF_PASSWORD
from tests.portal_support import auditor_secret, login_client, text


@pytest.fixture
def with_auditor_secret(portal):
    with auditor_secret(portal):
        yield


def test_auditors_get_the_report_and_its_downloads(portal, staff, with_auditor_secret):
    auditor = login_client(portal, staff["auditor"], STAFF_PASSWORD)
    page = auditor.get("/auditeur/rapport?inactivite=30")
    assert page.status_code == 200 and "Constats" in text(page) and "Qui détient quoi" in text(page)
    csv = auditor.get("/auditeur/rapport?format=csv&section=holdings")
    assert csv.mimetype == "text/csv" and csv.data.decode().startswith("adherent,raison_sociale,")
    assert auditor.get("/auditeur/rapport?format=json").get_json()["realm"] == portal.settings.realm
    assert b"<html" in auditor.get("/auditeur/rapport?format=html").data


def test_other_spaces_may_not_read_the_report(portal, staff, with_auditor_secret):
    assert login_client(portal, staff["agent"], STAFF_PASSWORD).get("/auditeur/rapport").status_code == 403
