"""In headless Chromium: the brochure's order for E@syPaiement (2 confirmations, then the validators, with the
banner leading to "Nouveau validateur"), the confirmation page of a departing validator, and the edit page of a
user; screenshots under test-output/screenshots/ and axe checks on each page."""

from __future__ import annotations

import pytest

from devstack.builders import DELEGATE_PASSWORD
from tests.browser_support import Checks, browser, portal_login  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def fill_validator(page, login: str) -> None:
    page.fill("#login", login)
    page.fill("#nom", "Tazi")
    page.fill("#prenom", "Omar")
    page.fill("#email", f"{login}@atlas-textile.ma")
    page.fill("#password", "User2026")
    page.fill("#password_confirm", "User2026")
    page.select_option("#question1", "Ville de naissance de votre père ?")
    page.fill("#answer1", "Fès")
    page.select_option("#question2", "Nom de votre premier animal de compagnie ?")
    page.fill("#answer2", "Mimi")
    page.get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    assert f"Utilisateur « {login} » créé." in page.inner_text("main"), page.inner_text("main")[:600]


def test_two_confirmations_first_banner_confirmation_page_and_edit_page(browser, portal, make_adherent):  # noqa: F811
    checks = Checks()
    n = make_adherent()
    ctx = browser.new_context(locale="fr-FR")
    page = ctx.new_page()
    portal_login(page, portal, n, DELEGATE_PASSWORD)
    assert page.locator("#easypaiement-banner").count() == 0

    # 1. "Choisir le nombre de confirmation (1 ou 2)": 2, before any validator
    page.goto(f"{portal.url}/delegue/parametres")
    page.check("input[name=confirmations][value='2']")
    page.get_by_role("button", name="Valider").click()
    assert "Informations générales enregistrées" in page.inner_text("main")
    page.goto(f"{portal.url}/delegue/")
    banner = page.inner_text("#easypaiement-banner")
    assert "aucun validateur actif" in banner
    checks.page(page, "30-easypaiement-banner-no-validator")

    # 2. the banner leads to "Nouveau validateur", the power already ticked
    page.locator("#easypaiement-banner").get_by_role("link", name="Nouveau validateur").click()
    assert page.is_checked("input[name=powers][value=validateur]")
    fill_validator(page, f"val1.{n}")
    assert "n'a que 1 validateur actif" in page.inner_text("#easypaiement-banner")
    checks.page(page, "31-easypaiement-banner-one-validator")

    # 3. "refaites l'opération pour ajouter un deuxième validateur": the banner goes
    page.locator("#easypaiement-banner").get_by_role("link", name="Nouveau validateur").click()
    fill_validator(page, f"val2.{n}")
    assert page.locator("#easypaiement-banner").count() == 0

    # 4. a validator leaves: a confirmation page with the warning, then disabled; the banner is back
    page.goto(f"{portal.url}/delegue/utilisateurs/val2.{n}")
    page.get_by_role("button", name="Désactiver le compte").click()
    assert "n'aura plus que 1 validateur(s) actif(s)" in page.inner_text("#confirm-warning")
    checks.page(page, "32-disable-validator-confirmation")
    page.get_by_role("button", name="Désactiver quand même").click()
    assert "désactivé" in page.inner_text("main")
    assert "n'a que 1 validateur actif" in page.inner_text("#easypaiement-banner")

    # 5. the edit page: details, and a question of one's own
    page.goto(f"{portal.url}/delegue/utilisateurs/val1.{n}")
    page.get_by_role("link", name="Modifier les coordonnées et les questions secrètes").click()
    assert page.input_value("#nom") == "Tazi"
    checks.page(page, "33-edit-user")
    page.fill("#nom", "Tazi-Alaoui")
    page.fill("#email", "omar@")
    page.select_option("#question1", "Nom de votre école primaire ?")
    page.fill("#own_question1", "Nom de la rue de mon enfance ?")
    page.fill("#answer1", "Zerktouni")
    page.fill("#own_question2", "Plat préféré ?")
    page.fill("#answer2", "Tajine")
    page.get_by_role("button", name="Valider").click()
    assert "adresse e-mail valide" in page.inner_text("#email-error")
    assert "pas les deux" in page.inner_text("#own_question1-error")
    assert page.input_value("#nom") == "Tazi-Alaoui"  # what was typed stays
    checks.page(page, "34-edit-user-errors")
    page.fill("#email", "omar.tazi@atlas-textile.ma")
    page.select_option("#question1", "")
    page.get_by_role("button", name="Valider").click()
    assert f"Utilisateur « val1.{n} » mis à jour." in page.inner_text("main")
    assert "omar.tazi@atlas-textile.ma" in page.inner_text("main")
    checks.page(page, "35-edit-user-done")
    ctx.close()
    assert not checks.violations, "\n".join(f"{k}: {v}" for k, vs in checks.violations.items() for v in vs)


@pytest.mark.parametrize("width", [375, 1280])
def test_a_delegates_first_visit_says_where_to_start(browser, portal, make_adherent, width):  # noqa: F811
    checks = Checks()
    n = make_adherent()
    ctx = browser.new_context(locale="fr-FR", viewport={"width": width, "height": 900})
    page = ctx.new_page()
    portal_login(page, portal, n, DELEGATE_PASSWORD)
    main = page.inner_text("main")
    assert "Par où commencer ?" in main and "0 utilisateur(s) actif(s) sur 0" not in main
    steps = page.locator("#first-steps li").all_inner_texts()
    assert len(steps) == 4 and "nombre de confirmations" in steps[0] and "un login par personne" in steps[1]
    assert main.count("Aucun utilisateur pour l'instant.") == 5
    checks.page(page, f"36-first-visit-{width}")
    page.get_by_role("link", name="Créer un premier utilisateur (Télédéclaration interne)").click()
    assert page.url.endswith("/delegue/t/teledeclaration-interne/nouveau")
    ctx.close()
    assert not checks.violations, checks.violations
