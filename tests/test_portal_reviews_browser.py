"""The security team opens and closes access review campaigns from its space, in Chromium: what to call it, whose
users, the deadline and what it does, reminders; a wrong field is said next to it in French and nothing typed is
lost; closing before the deadline asks to be confirmed. Screenshots: test-output/screenshots/review-*.png."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from devstack.builders import STAFF_PASSWORD, make_user
from provisioner import access_reviews
from provisioner.tenancy import Actor
from tests.browser_support import Checks, browser, portal_login  # noqa: F401 (browser: a fixture)
from tests.portal_support import csrf_token, login_client

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def security_team(browser, portal, staff):  # noqa: F811
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    portal_login(page, portal, staff["auditor"], STAFF_PASSWORD)
    yield page
    context.close()


def test_the_security_team_opens_a_campaign_and_closes_it_early(security_team, portal, make_adherent, service_gw,
                                                                 services):
    page, checks = security_team, Checks()
    n = make_adherent()
    user = make_user(service_gw, services, Actor.delegate(n), n, "compte-adherent")
    page.goto(portal.url + "/auditeur/revues/")
    page.get_by_role("link", name="Ouvrir une campagne").click()
    checks.page(page, "review-open-form-1280")

    # A first try: no deadline, a numéro mistyped. Each error next to its field; what was typed stays.
    page.get_by_label("Nom de la campagne").fill("Revue de fin d'année")
    page.get_by_label("Seulement les adhérents ci-dessous").check()
    page.get_by_label("Numéros d'adhérent").fill(f"{n}\n12ab")
    page.get_by_label("désactivés (la personne déléguée pourra en réactiver un)").check()
    page.get_by_role("button", name="Ouvrir la campagne").click()
    assert "obligatoire" in page.inner_text("#deadline-error")
    assert "Numéro d'adhérent invalide : 12ab" in page.inner_text("#adherents-error")
    assert page.input_value("#name") == "Revue de fin d'année" and page.input_value("#adherents") == f"{n}\n12ab"
    assert page.get_by_label("désactivés (la personne déléguée pourra en réactiver un)").is_checked()
    checks.page(page, "review-open-errors-1280")

    page.get_by_label("Numéros d'adhérent").fill(n)
    page.fill("#deadline", (date.today() + timedelta(days=30)).isoformat())
    page.get_by_label("Rappels aux personnes déléguées (jours avant l'échéance)").fill("14,2")
    page.get_by_role("button", name="Ouvrir la campagne").click()
    assert "Campagne « Revue de fin d'année » ouverte : 1 utilisateur(s) à revoir." in page.inner_text("main")
    assert "Rappels : 14, 2 jour(s) avant l'échéance." in page.inner_text("main")
    campaign = next(c for c in access_reviews.campaigns(services) if c.name == "Revue de fin d'année")
    assert (campaign.on_deadline, campaign.reminder_days, campaign.scope) == ("disable", (14, 2), (n,))
    checks.page(page, "review-campaign-open-1280")

    # Closing before the deadline: confirmed by the box, else said next to it and nothing happens.
    page.get_by_role("button", name="Clôturer maintenant").click()
    assert "clôture anticipée" in page.inner_text("#force-error")
    assert access_reviews.get_campaign(services, campaign.id).open and service_gw.user_by_username(user.login).enabled
    checks.page(page, "review-close-unconfirmed-1280")
    page.get_by_label("Je confirme la clôture avant l'échéance").check()
    page.get_by_role("button", name="Clôturer maintenant").click()
    closed = "Campagne clôturée : 1 utilisateur(s) désactivé(s), 0 signalé(s), 0 déjà parti(s)."
    assert closed in page.inner_text("main")
    assert not access_reviews.get_campaign(services, campaign.id).open
    assert not service_gw.user_by_username(user.login).enabled
    assert page.get_by_role("button", name="Clôturer maintenant").count() == 0
    checks.page(page, "review-campaign-closed-1280")
    assert not checks.violations, checks.violations


def test_opening_and_closing_need_the_forms_token(portal, staff):
    auditor = login_client(portal, staff["auditor"], STAFF_PASSWORD)
    assert auditor.post("/auditeur/revues/nouvelle", data={"name": "Sans jeton"}).status_code == 400
    assert auditor.post("/auditeur/revues/1/cloture", data={"force": "y"}).status_code == 400
    token = csrf_token(auditor, "/auditeur/revues/nouvelle")
    assert auditor.post("/auditeur/revues/nouvelle", data={"csrf_token": token, "name": ""}).status_code == 422


def test_only_the_security_team_opens_campaigns_in_the_portal(portal, staff):
    agent = login_client(portal, staff["agent"], STAFF_PASSWORD)
    assert agent.get("/auditeur/revues/nouvelle").status_code == 403
