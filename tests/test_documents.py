"""The brochure's documents as PDF (the subscription summary, the three letters) and the company's signed,
time-limited link to print its summary again. Each PDF is read back with pypdf: the key content is there, in
proper French, and no password ever is."""

from __future__ import annotations

import io
import time
from datetime import datetime, timezone

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pypdf import PdfReader
from sqlalchemy import insert

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD, numero, subscription_form
from portal import create_app, documents, summary_links
from provisioner.db import subscriptions
from provisioner.settings import Settings
from tests.portal_support import csrf_token, login_client, subscription_data, text

LETTER_TITLES = {
    "reinitialisation-mot-de-passe": "Objet : Réinitialisation du mot de passe de la personne déléguée",
    "reabonnement": "Objet : Réabonnement aux Téléservices CIMR",
    "mise-a-jour-email": "Objet : Mise à jour de l'e-mail de la personne déléguée",
}


def pdf_text(resp) -> str:
    """The text of a PDF response, as a reader extracts it."""
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype == "application/pdf" and resp.headers["Content-Disposition"].startswith("attachment")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(resp.data)).pages)


# --- pure: the portal on a database of its own (no Keycloak) -----------------------------------------------------

@pytest.fixture
def app(tmp_path):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'cimr.db'}",
                                  "PORTAL_SECRET_KEY": "documents-tests-secret-key"})
    return create_app({"SETTINGS": settings, "CONFIGURE_LOGGING": False})


@pytest.fixture
def submitted(app) -> tuple[int, str]:
    """A pending subscription as the form leaves it (the stored form has no password)."""
    form = subscription_form()
    from portal.services import core_services

    with app.app_context(), core_services().db.begin() as conn:
        sub_id = conn.execute(insert(subscriptions).values(
            adherent=form.company.numero, status="pending", form=form.public(),
            submitted_at=datetime.now(timezone.utc))).inserted_primary_key[0]
    return sub_id, form.company.numero


def test_the_signature_and_the_stamp_stay_on_the_page_of_what_they_sign(app):
    """Every field filled, long names and e-mails: the boxes for the date, name and signature and for the stamp are
    on the same page as the form's last part (never alone on a page of their own)."""
    from dataclasses import replace

    from portal.services import core_services
    from provisioner.subscriptions import Responsable, get_subscription

    form = subscription_form()
    long_mail = "responsable.administration.ressources.humaines@atlas-textile-et-confection.ma"
    form = replace(form, company=replace(form.company, raison_sociale="Société Marocaine Interprofessionnelle de "
                                         "Confection et de Distribution Textile SARL", fax="+212 522 11 22 35"),
                   responsable=Responsable("Alaoui El Idrissi", "Karim", "Directeur général", "M", "+212 522 11 22 34",
                                           "+212 522 11 22 36", "+212 522 11 22 37", "+212 661 00 00 00", long_mail),
                   delegate=replace(form.delegate, telephone="+212 522 11 22 38", gsm="+212 661 00 00 01",
                                    fax="+212 522 11 22 39", email=long_mail))
    with app.test_request_context():  # the document speaks the request's language
        with core_services().db.begin() as conn:
            sub_id = conn.execute(insert(subscriptions).values(
                adherent=form.company.numero, status="pending", form=form.public(),
                submitted_at=datetime.now(timezone.utc))).inserted_primary_key[0]
        pages = [p.extract_text() for p in PdfReader(io.BytesIO(documents.summary_pdf(
            get_subscription(core_services(), sub_id)))).pages]
    (signed,) = [t for t in pages if "Date, nom et signature" in t]
    assert "Cachet de l'entreprise" in signed
    assert "Personne déléguée" in signed and "Responsable RH" in signed, signed  # the last part, signed there


def token_for(app, sub_id: int, adherent: str, age_days: float = 0) -> str:
    with app.test_request_context():
        if not age_days:
            return summary_links.make_token(sub_id, adherent)

        class Past(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time() - age_days * 86400)

        return URLSafeTimedSerializer(app.secret_key, salt=summary_links._SALT, signer=Past).dumps(
            {"s": sub_id, "a": adherent})


def test_the_link_shows_that_summary_and_its_pdf_without_any_password(app, submitted):
    sub_id, n = submitted
    client = app.test_client()
    token = token_for(app, sub_id, n)
    page = client.get(f"/abonnement/recapitulatif/{token}")
    body = text(page)
    assert page.status_code == 200 and n in body and "Atlas Textile SARL" in body and "Bennani" in body
    assert "Formulaire d'abonnement aux téléservices CIMR" in body and "Cachet de l'entreprise" in body
    assert DELEGATE_PASSWORD not in page.get_data(as_text=True)
    pdf = pdf_text(client.get(f"/abonnement/recapitulatif/{token}/pdf"))
    for expected in (f"Numéro d'adhérent : {n}", "Raison sociale : Atlas Textile SARL", "Nom : Bennani",
                     "Prénom : Salma", "Formulaire d'abonnement aux téléservices CIMR", f"Référence de la demande : {sub_id}",
                     "Cachet de l'entreprise", "(il n'est pas imprimé)"):
        assert expected in pdf, (expected, pdf)
    assert DELEGATE_PASSWORD not in pdf


def test_an_expired_link_is_gone_and_a_forged_one_unknown(app, submitted):
    sub_id, n = submitted
    client = app.test_client()
    expired = client.get(f"/abonnement/recapitulatif/{token_for(app, sub_id, n, summary_links.VALID_DAYS + 1)}")
    assert expired.status_code == 410 and "Ce lien a expiré" in text(expired)
    assert client.get(f"/abonnement/recapitulatif/{token_for(app, sub_id, n, 1)}").status_code == 200  # a day old
    good = token_for(app, sub_id, n)
    forged = {
        "altered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "made up": "eyJzIjoxLCJhIjoiMTIzNCJ9.invented.signature",
        "another key": URLSafeTimedSerializer("another-secret-key", salt=summary_links._SALT).dumps(
            {"s": sub_id, "a": n}),
        "another adherent": token_for(app, sub_id, numero()),
        "no such subscription": token_for(app, sub_id + 1000, n),
    }
    for what, token in forged.items():
        for suffix in ("", "/pdf"):
            resp = client.get(f"/abonnement/recapitulatif/{token}{suffix}")
            assert resp.status_code == 404, (what, suffix, resp.status_code)
            assert "Atlas Textile SARL" not in text(resp), what
    assert "Ce lien n'est pas valable" in text(client.get(f"/abonnement/recapitulatif/{forged['altered']}"))


@pytest.mark.parametrize("slug, title", LETTER_TITLES.items())
def test_each_letter_as_pdf_left_blank_for_an_anonymous_visitor(app, slug, title):
    client = app.test_client()
    page = client.get(f"/telechargements/{slug}")
    assert page.status_code == 200 and title in text(page)
    assert f'href="/telechargements/{slug}/pdf"' in page.get_data(as_text=True)
    pdf = pdf_text(client.get(f"/telechargements/{slug}/pdf"))
    assert title in pdf and "Raison sociale : ………" in pdf and "Madame, Monsieur," in pdf
    assert "À l'attention du Responsable de l'Agence virtuelle" in pdf and "Cachet de l'entreprise" in pdf


def test_an_unknown_letter_is_not_found(app):
    client = app.test_client()
    assert client.get("/telechargements/inconnue").status_code == 404
    assert client.get("/telechargements/inconnue/pdf").status_code == 404


def test_the_pdf_font_is_debians_dejavu():
    # DejaVu Sans (fonts-dejavu-core) covers every French character; CI installs it (.ci/run, scripts/test).
    assert all((documents.FONT_DIR / name).is_file() for name in documents.FONTS.values())


# --- the real Keycloak: the company after submitting, the agent, the delegate -------------------------------------

def test_after_submitting_the_company_gets_a_link_to_print_its_summary_again(portal):
    company = portal.client()
    n = numero()
    resp = company.post("/abonnement", data=subscription_data(n) | {"csrf_token": csrf_token(company, "/abonnement")})
    assert resp.status_code == 302, text(resp)[:500]
    page = company.get(resp.headers["Location"])
    assert "conservez ce lien (valable 7 jours)" in text(page)
    link = page.get_data(as_text=True).split('id="summary-link">')[1].split("<")[0]
    assert link.startswith(portal.url + "/abonnement/recapitulatif/")
    later = portal.client()  # another browser, days later: no session, only the link
    path = link[len(portal.url):]
    assert n in text(later.get(path)) and "Atlas Textile SARL" in text(later.get(path))
    pdf = pdf_text(later.get(path + "/pdf"))
    assert f"Numéro d'adhérent : {n}" in pdf and "Raison sociale : Atlas Textile SARL" in pdf and "Bennani" in pdf
    assert DELEGATE_PASSWORD not in pdf


def test_the_agent_prints_the_summary_again_as_pdf(portal, staff, service_gw, services, make_adherent):
    from provisioner.subscriptions import submit_subscription

    sub = submit_subscription(service_gw, services, subscription_form())
    agent = login_client(portal, staff["agent"], STAFF_PASSWORD)
    page = f"/agent/abonnements/{sub.id}"
    assert f'href="{page}/recapitulatif.pdf"' in agent.get(page).get_data(as_text=True)
    pdf = pdf_text(agent.get(f"{page}/recapitulatif.pdf"))
    assert f"Numéro d'adhérent : {sub.adherent}" in pdf and "Raison sociale : Atlas Textile SARL" in pdf
    assert "Nom : Bennani" in pdf and DELEGATE_PASSWORD not in pdf
    assert agent.get("/agent/abonnements/999999/recapitulatif.pdf").status_code == 404
    n = make_adherent()
    delegate = login_client(portal, n, DELEGATE_PASSWORD)
    assert delegate.get(f"{page}/recapitulatif.pdf").status_code == 403  # agents only
    assert portal.client().get(f"{page}/recapitulatif.pdf").status_code in (302, 401)  # not logged in


@pytest.mark.parametrize("slug, title", LETTER_TITLES.items())
def test_a_delegates_letters_are_pre_filled_in_the_pdf(portal, adherent, slug, title):
    delegate = login_client(portal, adherent, DELEGATE_PASSWORD)
    page = text(delegate.get(f"/telechargements/{slug}"))
    assert "Atlas Textile SARL" in page and f"delegue.{adherent}@atlas-textile.ma" in page  # the HTML letter too
    pdf = pdf_text(delegate.get(f"/telechargements/{slug}/pdf"))
    assert title in pdf
    assert "Raison sociale : Atlas Textile SARL" in pdf and f"Numéro d'adhérent : {adherent}" in pdf
    assert "Bennani" in pdf  # the delegate's name
    assert f"delegue.{adherent}@atlas-textile.ma" in pdf and DELEGATE_PASSWORD not in pdf
