"""Every page a person sees, as each of them would see it (devstack/portal_pages.py): the public, a delegate whose
company has long names, a pending access review and the E@syPaiement banner, a CIMR agent, an auditor; each form
also sent empty, to show its errors. In Chromium at a phone's width (375 px) and a desktop's (1280 px):

- no page is wider than its window, whatever it shows;
- axe finds no WCAG 2.2 AA violation, nor any of its best practices, of any impact;
- no page shows a code instead of words: an action code, a raw key, a teleservice's slug, an exception's name,
  Python's ``None``, English on a French page.

Screenshots: test-output/screenshots/page-<width>-<page>.png."""

from __future__ import annotations

import re

import pytest

from devstack.builders import ANSWERS, STAFF_PASSWORD, numero
from devstack.portal_pages import (LONG_EMAIL, LONG_NAME, agent_pages, auditor_pages, build_world, delegate_pages,
                                   public_pages)
from tests.browser_support import AXE_TAGS, Checks, browser, page_width, portal_login  # noqa: F401 (browser: a fixture)
from tests.page_words import codes_in
from tests.portal_support import auditor_secret, subscription_data

pytestmark = pytest.mark.browser

# What sticks out of the window, outside the tables' own scrolling regions (to say which element to fix).
OVERFLOWING = """() => { const w = document.documentElement.clientWidth;
  const clipped = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
  return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1
    && !clipped(e)).slice(0, 3).map(e => e.tagName + '.' + e.className + ' '
    + Math.round(e.getBoundingClientRect().right)); }"""

WORDS = """() => { const shown = [...document.querySelectorAll('code')].map(c => [c, c.style.display]);
  shown.forEach(([c]) => c.style.display = 'none'); const text = document.body.innerText;
  shown.forEach(([c, d]) => c.style.display = d); return text; }"""

@pytest.fixture(scope="module")
def world(portal, service_gw, services, agent, staff):
    with auditor_secret(portal):
        yield build_world(service_gw, services, agent, staff["auditor"])


# Forms sent empty (or wrong), to see their errors: (path, button).
def delegate_states(w) -> list[tuple[str, str]]:
    return [("/delegue/t/compte-adherent/nouveau", "Valider"),
            (f"/delegue/utilisateurs/{w.users['interne'].login}", "Définir le mot de passe"),
            (f"/delegue/utilisateurs/{w.users['validateur'].login}", "Désactiver le compte"),
            ("/delegue/import", "Importer")]


def agent_states(w) -> list[tuple[str, str]]:
    return [(f"/agent/abonnements/{w.pending_subscription}", "Refuser l'abonnement"),
            (f"/agent/adherents/{w.numero}", "Réinitialiser"),
            (f"/agent/adherents/{w.numero}/remplacer", "Remplacer")]


def public_states() -> list[tuple[str, str]]:
    return [("/abonnement", "Valider l'abonnement"), ("/mot-de-passe-oublie/", "Continuer")]


def auditor_states(w) -> list[tuple[str, str]]:
    return [("/auditeur/revues/nouvelle", "Ouvrir la campagne"), (f"/auditeur/revues/{w.campaign.id}",
                                                                   "Clôturer maintenant")]


# Pages reached through a journey (a form filled in, another language): name -> steps on the page, then look.
def public_journeys(w) -> dict[str, object]:
    def summary(page, url):
        page.goto(url + "/abonnement")
        for field_id, value in subscription_data(numero(), **{"company-raison_sociale": LONG_NAME,
                                                              "delegate-email": LONG_EMAIL}).items():
            (page.select_option if field_id.endswith("-civilite") else page.fill)(f"#{field_id}", value)
        page.get_by_role("button", name="Valider l'abonnement").click()

    def questions(page, url):
        page.goto(url + "/mot-de-passe-oublie/")
        page.fill("#login", w.users["externe"].login)
        page.get_by_role("button", name="Continuer").click()

    def new_password(page, url):
        questions(page, url)
        page.get_by_label(ANSWERS[0].question).fill(ANSWERS[0].answer)
        page.get_by_label(ANSWERS[1].question).fill(ANSWERS[1].answer)
        page.get_by_role("button", name="Vérifier mes réponses").click()

    def new_password_sent(page, url):
        new_password(page, url)
        page.fill("#password", "court")
        page.get_by_role("button", name="Enregistrer le mot de passe").click()

    def delegate_numero(page, url):
        page.goto(url + "/mot-de-passe-oublie/")
        page.fill("#login", w.numero)
        page.get_by_role("button", name="Continuer").click()

    def english(page, url):
        page.goto(url + "/langue/en?next=/")

    return {"summary": summary, "reset-questions": questions, "reset-new-password": new_password,
            "reset-new-password-sent": new_password_sent, "reset-delegate-numero": delegate_numero,
            "home-english": english}


def delegate_journeys(w) -> dict[str, object]:
    def english(page, url):
        page.goto(url + "/langue/en?next=/delegue/journal")

    def french(page, url):
        page.goto(url + "/langue/fr?next=/delegue/")
    return {"journal-english": english, "home-back-in-french": french}


SURVEYS: dict[int, dict[str, dict]] = {}


def survey(browser, portal, staff, world, width: int) -> dict[str, dict]:
    """Every page at this width, once per module: how wide it is drawn, what axe says, its visible text."""
    if width in SURVEYS:
        return SURVEYS[width]
    checks = Checks(tags=[*AXE_TAGS, "best-practice"])  # WCAG 2.2 AA, and axe's best practices (landmarks...)
    seen: dict[str, dict] = {}

    def look(page, name: str) -> None:
        page.wait_for_load_state()
        checks.page(page, f"page-{width}-{name}")
        seen[name] = {"width": page_width(page), "overflowing": page.evaluate(OVERFLOWING),
                      "text": page.evaluate(WORDS), "axe": checks.violations.pop(f"page-{width}-{name}", [])}

    def name_of(person: str, path: str, suffix: str = "") -> str:
        return f"{person}-" + (re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home") + suffix

    people = [("public", None, None, public_pages(), public_states(), public_journeys(world)),
              ("delegate", world.numero, world.password, delegate_pages(world), delegate_states(world),
               delegate_journeys(world)),
              ("agent", staff["agent"], STAFF_PASSWORD, agent_pages(world), agent_states(world), {}),
              ("auditor", staff["auditor"], STAFF_PASSWORD, auditor_pages(world), auditor_states(world), {})]
    for person, who, password, paths, states, journeys in people:
        context = browser.new_context(locale="fr-FR", viewport={"width": width, "height": 800})
        page = context.new_page()
        if who:
            portal_login(page, portal, who, password)
        for path in paths:
            page.goto(portal.url + path)
            look(page, name_of(person, path))
        for path, button in states:
            page.goto(portal.url + path)
            page.locator("main").get_by_role("button", name=button, exact=True).first.click()
            look(page, name_of(person, path, "-sent"))
        for name, steps in journeys.items():
            steps(page, portal.url)
            look(page, f"{person}-{name}")
        context.close()
    SURVEYS[width] = seen
    return seen


def test_no_page_is_wider_than_a_phone(browser, portal, staff, world):  # noqa: F811
    pages = survey(browser, portal, staff, world, 375)
    wide = {name: (p["width"], p["overflowing"]) for name, p in pages.items() if p["width"] > 375}
    assert len(pages) > 50
    assert not wide, f"pages wider than 375 px: {wide}"


@pytest.mark.parametrize("width", [375, 1280])
def test_no_page_has_an_accessibility_violation(browser, portal, staff, world, width):  # noqa: F811
    pages = survey(browser, portal, staff, world, width)
    found = {name: p["axe"] for name, p in pages.items() if p["axe"]}
    assert not found, "\n".join(f"{name}: {v}" for name, vs in found.items() for v in vs)


def test_no_page_shows_a_code_where_words_belong(browser, portal, staff, world):  # noqa: F811
    pages = {name: p for name, p in survey(browser, portal, staff, world, 1280).items() if "english" not in name}
    found = {name: codes_in(p["text"]) for name, p in pages.items() if codes_in(p["text"])}
    assert not found, "\n".join(f"{name}: {c}" for name, cs in found.items() for c in cs)


@pytest.mark.parametrize("text, found", [
    ("Utilisateur créé (delegate) subscriber:12345678", ["role code", "trail key"]),
    ("holds easypaiement:validateur; credentials: password", ["English", "teleservice slug"]),
    ("ValidationError: email: ... None", ["Python None", "exception"]),
    ("Revue des accès ouverte — Adhérent 12345678 — jean.dupont@atlas.ma — ok.pwd1234", []),
    ("Résultat : ok", ["ok"]),
])
def test_the_code_finder_tells_codes_from_words(text, found):
    assert sorted({c.split(":")[0] for c in codes_in(text)}) == found


def test_the_delegates_journal_says_what_happened_in_words(browser, portal, staff, world):  # noqa: F811
    journal = survey(browser, portal, staff, world, 1280)["delegate-delegue-journal"]["text"]
    for said in ("Création d'un utilisateur", "refusée", "E-mail : ",                   # a form to correct, and why
                 "Désactivation d'un utilisateur", "confirmation demandée",             # not a refusal
                 "Réponses aux questions secrètes (mot de passe oublié)", "réponses erronées",
                 "Décision de revue des accès", "révoqué : compte désactivé, sessions fermées",
                 "personne déléguée", "agent CIMR", "abonnement n° "):
        assert said in journal, said


def test_the_security_report_is_in_words(browser, portal, staff, world):  # noqa: F811
    report = survey(browser, portal, staff, world, 1280)["auditor-auditeur-rapport"]["text"]
    assert "Constats" in report and "Qui détient quoi" in report
    assert "élevée" in report and "E@syPaiement" in report and "Validateur" in report
    assert "pouvoirs : E@syPaiement (Validateur) ; moyens de connexion : mot de passe" in report
    journal = survey(browser, portal, staff, world, 1280)["auditor-auditeur"]["text"]
    assert "Ouverture d'une revue des accès" in journal and "revue des accès n° " in journal
