"""The agent's desk in Chromium at 1280 px: the subscription page read against the signed paper (each value on a line
of its own, the labels of the form the company signed, a date picker without a typed-date hint), the active
categories ticked in words, the suspension apart from the adherent's summary. Screenshots:
test-output/screenshots/agent-*.png."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devstack.builders import STAFF_PASSWORD, subscription_form
from devstack.portal_pages import LONG_EMAIL, LONG_NAME
from provisioner.subscriptions import Responsable, submit_subscription
from tests.browser_support import Checks, browser, portal_login  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def desk(browser, portal, staff):  # noqa: F811
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    portal_login(page, portal, staff["agent"], STAFF_PASSWORD)
    yield page
    context.close()


def test_the_subscription_page_reads_like_the_signed_form(desk, portal, service_gw, services):
    form = subscription_form()
    form = replace(form, company=replace(form.company, raison_sociale=LONG_NAME, telephone="+212 522 11 22 33"),
                   responsable=Responsable("Alaoui", "Karim", "Directeur général", "M", "+212 522 11 22 34", "",
                                           "", "+212 661 00 00 00", LONG_EMAIL),
                   delegate=replace(form.delegate, telephone="+212 522 99 88 77", email=LONG_EMAIL))
    sub = submit_subscription(service_gw, services, form)
    checks = Checks()
    desk.goto(f"{portal.url}/agent/abonnements/{sub.id}")
    checks.page(desk, "agent-subscription-1280")
    # Each value has room: names, numbers and e-mails on one line, never a letter per line.
    widths = desk.locator(".form-parts dd").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert widths and min(widths) >= 400, widths
    email = desk.locator(".form-parts dd", has_text=LONG_EMAIL).first
    assert email.evaluate("e => e.getClientRects().length") == 1 and email.bounding_box()["height"] < 30
    # The labels of each part are that part's, as on the form: the company's phone is « Téléphone ».
    labels = {part: dict(zip(desk.locator(f"#part-{part} ~ dl dt").all_inner_texts(),
                             desk.locator(f"#part-{part} ~ dl dd").all_inner_texts()))
              for part in ("company", "responsable", "delegate")}
    assert labels["company"]["Téléphone"] == "+212 522 11 22 33" and "Téléphone direct" not in labels["company"]
    assert labels["responsable"]["Téléphone fixe 1"] == "+212 522 11 22 34"
    assert labels["delegate"]["Téléphone direct"] == "+212 522 99 88 77"
    # The date of the signed paper: a date picker, and no « AAAA-MM-JJ » to type.
    assert desk.locator("#received_on").get_attribute("type") == "date"
    assert "AAAA" not in desk.inner_text("#h-paper ~ form")
    assert not checks.violations, checks.violations


def test_categories_are_ticked_in_words_and_the_suspension_stands_apart(desk, portal, make_adherent):
    n = make_adherent()
    desk.goto(f"{portal.url}/agent/adherents/{n}")
    checks = Checks()
    checks.page(desk, "agent-adherent-1280")
    summary = desk.locator("section[aria-labelledby=h-state]")
    assert summary.get_by_role("button").count() == 0  # the summary card only says where the adherent stands
    assert desk.get_by_role("button", name="Suspendre l'adhérent").count() == 1
    boxes = desk.get_by_role("group", name="Catégories actives")
    assert [boxes.get_by_label(w).is_checked() for w in ("Cadres", "Employés", "Ouvriers")] == [True, True, True]
    assert desk.locator("input[name=categories][type=text]").count() == 0  # no codes to type again
    boxes.get_by_label("Ouvriers").uncheck()
    desk.get_by_label("Nouvelle catégorie").fill("apprentis")
    desk.get_by_role("button", name="Enregistrer les catégories").click()
    assert "Catégories actives : Cadres, Employés, Apprentis." in desk.inner_text("main")
    boxes = desk.get_by_role("group", name="Catégories actives")
    assert [boxes.get_by_label(w).is_checked() for w in ("Cadres", "Employés", "Ouvriers", "Apprentis")] == [
        True, True, False, True]
    checks.page(desk, "agent-adherent-categories-saved-1280")
    assert not checks.violations, checks.violations
