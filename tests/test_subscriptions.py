"""Subscription (Abonnement): the form's rules, the disabled delegate, approval, rejection, the 48-hour list."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from devstack.builders import DELEGATE_PASSWORD, subscription_form
from provisioner.context import Context
from provisioner.trail import events
from provisioner.errors import RuleViolation, TenantViolation, ValidationError
from provisioner.subscriptions import (approve_subscription, get_subscription, list_subscriptions,
                                       receive_paper, reject_subscription, submit_subscription)
from provisioner.tenancy import Actor
from tests.oidc_flow import password_login

pytestmark = pytest.mark.usefixtures("password_grant_client")



def with_company(form, **kw):
    return replace(form, company=replace(form.company, **kw))


def with_responsable(form, **kw):
    return replace(form, responsable=replace(form.responsable, **kw))


def with_delegate(form, **kw):
    return replace(form, delegate=replace(form.delegate, **kw))


BAD_FORMS = [
    (lambda f: with_company(f, numero=""), "company.numero", "Ce champ est obligatoire."),
    (lambda f: with_company(f, numero="12a45"), "company.numero", "Le numéro d'adhérent compte 4 à 10 chiffres."),
    (lambda f: with_company(f, raison_sociale=" "), "company.raison_sociale", "Ce champ est obligatoire."),
    (lambda f: with_company(f, rc=""), "company.rc", "Ce champ est obligatoire."),
    (lambda f: with_company(f, patente=""), "company.patente", "Ce champ est obligatoire."),
    (lambda f: with_company(f, telephone="abc"), "company.telephone", "Numéro de téléphone invalide"),
    (lambda f: with_company(f, site_web="not a site"), "company.site_web", "Adresse de site web invalide"),
    (lambda f: with_responsable(f, nom=""), "responsable.nom", "Ce champ est obligatoire."),
    (lambda f: with_responsable(f, prenom="K4rim"), "responsable.prenom", "Lettres, espaces"),
    (lambda f: with_responsable(f, fonction=""), "responsable.fonction", "Ce champ est obligatoire."),
    (lambda f: with_responsable(f, civilite="Dr"), "responsable.civilite", "Civilité : « M » ou « Mme »."),
    (lambda f: with_responsable(f, email="karim@"), "responsable.email", "n'est pas une adresse e-mail valide"),
    (lambda f: with_delegate(f, nom=""), "delegate.nom", "Ce champ est obligatoire."),
    (lambda f: with_delegate(f, prenom=""), "delegate.prenom", "Ce champ est obligatoire."),
    (lambda f: with_delegate(f, fonction=""), "delegate.fonction", "Ce champ est obligatoire."),
    (lambda f: with_delegate(f, email=""), "delegate.email", "Ce champ est obligatoire."),
    (lambda f: with_delegate(f, email="salma.atlas.ma"), "delegate.email", "n'est pas une adresse e-mail valide"),
    (lambda f: with_delegate(f, gsm="06-xx"), "delegate.gsm", "Numéro de téléphone invalide"),
    (lambda f: with_delegate(f, password="", password_confirm=""), "delegate.password", "Ce champ est obligatoire."),
    (lambda f: with_delegate(f, password="Ab1", password_confirm="Ab1"), "delegate.password",
     "Le mot de passe doit compter de 5 à 10 caractères (il en a 3)."),
    (lambda f: with_delegate(f, password="Abcdef12345", password_confirm="Abcdef12345"), "delegate.password",
     "Le mot de passe doit compter de 5 à 10 caractères (il en a 11)."),
    (lambda f: with_delegate(f, password="Abc-2026", password_confirm="Abc-2026"), "delegate.password",
     "Le mot de passe ne peut contenir que des lettres et des chiffres"),
    (lambda f: with_delegate(f, password="Deleg2026", password_confirm="Deleg2027"), "delegate.password_confirm",
     "Les deux mots de passe ne sont pas identiques."),
    (lambda f: replace(f, categories=("Cadres supérieurs",)), "categories", "Catégorie « Cadres supérieurs » invalide"),
]


@pytest.mark.parametrize("change, field, message", BAD_FORMS)
def test_a_bad_field_is_refused_with_a_precise_message(service_gw, services, change, field, message):
    form = change(subscription_form())
    with pytest.raises(ValidationError) as exc:
        submit_subscription(service_gw, services, form)
    assert field in exc.value.errors, exc.value.errors
    assert message in exc.value.errors[field].fr, exc.value.errors[field]
    assert exc.value.errors[field].en  # English too
    assert service_gw.user_by_username(form.company.numero) is None  # nothing was created


def test_password_equal_to_the_numero_is_refused(service_gw, services):
    form = subscription_form("20262026")
    form = with_delegate(form, password="20262026", password_confirm="20262026")
    with pytest.raises(ValidationError) as exc:
        submit_subscription(service_gw, services, form)
    assert exc.value.errors["delegate.password"].en == "The password may not be the login."


def test_submission_creates_a_disabled_delegate_whose_password_only_keycloak_knows(service_gw, services, settings):
    form = subscription_form()
    sub = submit_subscription(service_gw, services, form)
    assert sub.status == "pending" and not sub.overdue
    user = service_gw.user_by_username(form.company.numero)
    assert user is not None and not user.enabled and user.attr("adherent") == form.company.numero
    assert DELEGATE_PASSWORD not in str(sub.form) and "password" not in sub.form["delegate"]
    assert password_login(settings, form.company.numero, DELEGATE_PASSWORD).json()["error"] == "invalid_grant"
    ev = events(services.db, adherent=form.company.numero, action="subscription.submit")[0]
    assert ev.outcome == "ok" and DELEGATE_PASSWORD not in repr(ev)


def test_a_second_subscription_for_the_same_adherent_is_refused(service_gw, services):
    form = subscription_form()
    submit_subscription(service_gw, services, form)
    with pytest.raises(RuleViolation) as exc:
        submit_subscription(service_gw, services, form)
    assert exc.value.field == "company.numero"
    assert events(services.db, adherent=form.company.numero, action="subscription.submit")[0].outcome == "refused"


def test_approval_builds_the_tree_enables_the_delegate_and_mails_no_password(service_gw, services, agent, settings,
                                                                              smtp_server):
    form = subscription_form()
    sub = submit_subscription(service_gw, services, form)
    receive_paper(services, agent, sub.id)
    done = approve_subscription(Context(service_gw, services, agent), sub.id)
    n = form.company.numero
    assert done.status == "approved" and done.decided_by == agent.username
    group = service_gw.group_by_path(f"/adherents/{n}")
    assert group.attr("status") == "active" and group.attr("easypaiement_confirmations") == "1"
    assert group.attributes["categories"] == ("cadres", "employes", "ouvriers")
    leaf = service_gw.group_by_path(f"/adherents/{n}/easypaiement/validateur")
    assert service_gw.group_client_roles(leaf.id, service_gw.client_uuid("easypaiement")) == {"validateur"}
    delegate = service_gw.user_by_username(n)
    assert delegate.enabled
    assert f"/delegates/{n}" in [g.path for g in service_gw.user_groups(delegate.id)]
    assert "delegate" in service_gw.effective_realm_roles(delegate.id)
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code == 200
    mails = smtp_server.messages(to=form.delegate.email)
    assert len(mails) == 1 and n in mails[0]["Subject"]
    body = mails[0].get_content()
    assert n in body and DELEGATE_PASSWORD not in body
    # How to log in, in the brochure's words: the numéro, the password chosen in the form, the portal, and the
    # second factor to set up (never the password itself).
    assert settings.portal_url in body and "celui que vous avez choisi dans le formulaire" in body
    assert "second facteur" in body and "second factor" in body


def test_rejection_removes_the_delegate_account_and_says_why(service_gw, services, agent, smtp_server):
    form = subscription_form()
    sub = submit_subscription(service_gw, services, form)
    done = reject_subscription(Context(service_gw, services, agent), sub.id, "Cachet de l'entreprise manquant")
    assert done.status == "rejected" and done.reason == "Cachet de l'entreprise manquant"
    assert service_gw.user_by_username(form.company.numero) is None
    assert "Cachet de l'entreprise manquant" in smtp_server.bodies(to=form.delegate.email)[0]
    # A decided subscription cannot be decided again; a fresh submission is possible after a rejection.
    with pytest.raises(RuleViolation):
        approve_subscription(Context(service_gw, services, agent), sub.id)
    assert submit_subscription(service_gw, services, form).status == "pending"


@pytest.mark.parametrize("actor", [Actor.delegate("12345678"), Actor("auditor.x", "auditor")])
def test_only_an_agent_decides(service_gw, services, actor):
    sub = submit_subscription(service_gw, services, subscription_form())
    with pytest.raises(TenantViolation):
        approve_subscription(Context(service_gw, services, actor), sub.id)
    with pytest.raises(TenantViolation):
        reject_subscription(Context(service_gw, services, actor), sub.id, "non")
    assert get_subscription(services, sub.id).status == "pending"
    assert {e.outcome for e in events(services.db, target=f"subscription:{sub.id}", actor=actor.username)} == {"refused"}


def test_pending_list_shows_age_and_flags_overdue_ones(service_gw, services, agent):
    sub = submit_subscription(service_gw, services, subscription_form())
    receive_paper(services, agent, sub.id)  # the promise counts from the paper (tests/test_paper_step.py)
    later = datetime.now(timezone.utc) + timedelta(hours=49)
    listed = {s.id: s for s in list_subscriptions(services, now=later)}
    assert listed[sub.id].overdue and listed[sub.id].age_hours >= 49
    listed = {s.id: s for s in list_subscriptions(services)}
    assert not listed[sub.id].overdue and listed[sub.id].age_hours < 1


def test_approval_holds_when_the_mail_server_is_unreachable_and_its_mail_waits(service_gw, services, agent, settings,
                                                                               smtp_server):
    from provisioner import outbox
    from provisioner.core import Services
    from provisioner.mailer import Mailer

    broken = Services(settings, services.db, Mailer("127.0.0.1", 1, "x@cimr.ma"), services.password_policy,
                      services.catalogue)
    form = subscription_form()
    sub = submit_subscription(service_gw, services, form)
    receive_paper(services, agent, sub.id)
    assert approve_subscription(Context(service_gw, broken, agent), sub.id).status == "approved"
    assert service_gw.user_by_username(sub.adherent).enabled
    [waiting] = outbox.unsent(services, sub.adherent)
    assert waiting.recipient == form.delegate.email and "unreachable" in waiting.last_error
    assert smtp_server.messages(to=form.delegate.email) == []
    assert outbox.deliver(services, [waiting.id])[0].sent  # the server is back: it goes, once
    assert len(smtp_server.messages(to=form.delegate.email)) == 1
