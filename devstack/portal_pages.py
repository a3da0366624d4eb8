"""Every page a person of the portal sees, and a company that makes them as hard to show as they get: a long name
and long e-mail addresses, a user in every teleservice, 2 E@syPaiement confirmations with one validator (the
banner), an access review waiting for the delegate, refusals in its journal, a pending subscription with a long
name. The page tests walk these pages (tests/test_portal_pages.py, tests/test_portal_observability.py), and so does
the page benchmark (bench/bench_pages.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from devstack.builders import DELEGATE_PASSWORD, login, new_user, subscription_form
from provisioner import access_reviews, adherents, password_reset, reviews, subscriptions, teleservice_users, users
from provisioner.context import Context, resolve_actor
from provisioner.errors import InputError
from provisioner.rules import Access
from provisioner.tenancy import Actor

LONG_NAME = "Société Marocaine Interprofessionnelle de Confection et de Distribution Textile SARL"
LONG_EMAIL = "responsable.administration.ressources.humaines@atlas-textile-et-confection.ma"
LONG_PROVIDER = "Fiduciaire Comptable, Fiscale et Juridique du Grand Casablanca et de sa Région"


@dataclass(frozen=True)
class World:
    numero: str
    users: dict[str, teleservice_users.TeleserviceUser]   # kind -> one of its users
    campaign: access_reviews.Campaign
    pending_subscription: int                 # paper received, long name
    unpapered_subscription: int               # its signed paper not received yet
    password: str = DELEGATE_PASSWORD


def _user(gw, services, me: Actor, numero: str, kind: str, access: Access, **details) -> teleservice_users.TeleserviceUser:
    base = new_user(access=access, login=login(kind[:4]))
    d = replace(base.details, **details)
    return users.create_user(Context(gw, services, me, numero), replace(base, details=d))


def build_world(gw, services, agent: Actor, auditor: str) -> World:
    """The company, its users and what waits for each person (through the provisioner's actions)."""
    form = subscription_form()
    form = replace(form, company=replace(form.company, raison_sociale=LONG_NAME),
                   delegate=replace(form.delegate, email=LONG_EMAIL), categories=("cadres", "employes", "ouvriers"))
    sub = subscriptions.submit_subscription(gw, services, form)
    subscriptions.receive_paper(services, agent, sub.id)
    subscriptions.approve_subscription(Context(gw, services, agent), sub.id)
    n = form.company.numero
    me = Actor.delegate(n)
    everyone = ("cadres", "employes", "ouvriers")
    made = {
        "interne": _user(gw, services, me, n, "interne", Access("teledeclaration", ("fichier-preetabli",
                         "formulaire-saisie"), "interne", None, everyone), nom="El Idrissi-Benkirane de la Fontaine",
                         email=LONG_EMAIL.replace("responsable", "declarations")),
        "externe": _user(gw, services, me, n, "externe", Access("teledeclaration", ("fichier-preetabli",), "externe",
                                                                LONG_PROVIDER, everyone)),
        "compte": _user(gw, services, me, n, "compte", Access("compte-adherent", ())),
        "validateur": _user(gw, services, me, n, "valid", Access("easypaiement", ("ordonnateur", "validateur"))),
        "eliquidation": _user(gw, services, me, n, "eliq", Access("eliquidation", ())),
    }
    # 2 confirmations and one validator: the banner of every delegate page says what is missing.
    adherents.set_easypaiement_confirmations(Context(gw, services, me, n), 2)
    # What the journal must say in words: a refused form, a confirmation asked, wrong secret answers, a revocation.
    try:
        users.create_user(Context(gw, services, me, n), replace(new_user(), details=replace(new_user().details, email="x@")))
    except InputError:
        pass
    try:
        teleservice_users.disable_user(Context(gw, services, me, n), made["validateur"].login)
    except InputError:
        pass
    password_reset.verify_answers(gw, services, made["compte"].login, "203.0.113.7", ["non", "non"])
    campaign = reviews.open_campaign(Context(gw, services, resolve_actor(gw, auditor)), "Revue du premier trimestre",
                                     datetime.now(timezone.utc) + timedelta(days=20), access_reviews.DISABLE, "7,1", [n])
    revoked = next(i for i in access_reviews.items(services, campaign.id) if i.login == made["eliquidation"].login)
    reviews.decide(Context(gw, services, me), revoked.id, access_reviews.REVOKE)
    other = subscription_form()
    pending = subscriptions.submit_subscription(gw, services, replace(other, company=replace(
        other.company, raison_sociale=LONG_NAME), delegate=replace(other.delegate, email=LONG_EMAIL)))
    subscriptions.receive_paper(services, agent, pending.id)
    unpapered = subscriptions.submit_subscription(gw, services, subscription_form())
    return World(n, made, campaign, pending.id, unpapered.id)


# --- the pages, by person ----------------------------------------------------------------------------------------

def public_pages() -> list[str]:
    return ["/", "/abonnement", "/mot-de-passe-oublie/", "/telechargements/reinitialisation-mot-de-passe",
            "/telechargements/reabonnement", "/telechargements/mise-a-jour-email", "/nulle-part"]


def delegate_pages(w: World) -> list[str]:
    u = w.users
    return ["/delegue/",
            *[f"/delegue/t/{slug}" for slug in ("teledeclaration-interne", "teledeclaration-externe",
                                                 "compte-adherent", "easypaiement", "eliquidation")],
            "/delegue/t/teledeclaration-externe/nouveau", "/delegue/t/easypaiement/nouveau",
            f"/delegue/utilisateurs/{u['interne'].login}", f"/delegue/utilisateurs/{u['validateur'].login}",
            f"/delegue/utilisateurs/{u['compte'].login}/modifier", "/delegue/journal",
            f"/delegue/logins?q={u['externe'].login}", "/delegue/import", "/delegue/revues/",
            "/telechargements/reabonnement"]


def agent_pages(w: World) -> list[str]:
    return ["/agent/", "/agent/?statut=approved", "/agent/?statut=rejected",
            f"/agent/abonnements/{w.pending_subscription}", f"/agent/abonnements/{w.unpapered_subscription}",
            f"/agent/adherents/{w.numero}",
            f"/agent/adherents/{w.numero}/remplacer", "/agent/courriels", "/agent/adherents/99999999"]


def auditor_pages(w: World) -> list[str]:
    return ["/auditeur/", f"/auditeur/?adherent={w.numero}", "/auditeur/rapport", "/auditeur/revues/",
            f"/auditeur/revues/{w.campaign.id}", "/auditeur/revues/nouvelle"]
