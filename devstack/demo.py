"""`python -m devstack.demo`: demo data through the provisioner's actions (idempotent), then print the logins.

An adherent with an approved subscription and its delegate, two teleservice users, a CIMR agent and an
auditor. Passwords: DEMO_PASSWORD (default Demo2026; 5 to 10 letters and digits).
"""

from __future__ import annotations

import os
import sys

from provisioner import core, subscriptions, users
from provisioner import delegates
from provisioner import teleservice_users
from provisioner.context import Context
from provisioner.errors import ProvisionerError
from provisioner.gateway import Gateway
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.settings import Settings
from provisioner.staff import StaffMember, create_staff
from provisioner.tenancy import Actor

ADHERENT = "10000001"
AGENT, AUDITOR = "agent.demo", "auditeur.demo"
OPERATOR = Actor("demo-seed", "agent")
ANSWERS = (SecretAnswer("Ville de naissance de votre père ?", "Fès"),
           SecretAnswer("Nom de votre premier animal de compagnie ?", "Mimi"))


def seed(settings: Settings, password: str) -> dict[str, str]:
    """Create what is missing; returns role -> login."""
    services = core.Services.from_settings(settings)
    gw = Gateway.as_service_account(settings)
    agent = Actor.agent(AGENT)
    for username, role, prenom, nom in ((AGENT, "agent", "Nadia", "Benali"),
                                        (AUDITOR, "auditor", "Omar", "Chraibi")):
        if gw.user_by_username(username) is None:
            create_staff(gw, services, OPERATOR, StaffMember(username, role, prenom, nom, f"{username}@cimr.ma",
                                                             password))
    if gw.user_by_username(ADHERENT) is None:
        form = subscriptions.NewSubscription(
            subscriptions.Company(ADHERENT, "Atlas Textile SARL", "RC 123456", "PAT 654321",
                                  "12 bd Zerktouni, Casablanca", "+212 522 11 22 33", "", "www.atlas-textile.ma"),
            subscriptions.Responsable("Alaoui", "Karim", "Directeur général", "M", "+212 522 11 22 34"),
            delegates.NewDelegate("Bennani", "Salma", "Responsable RH", "salma.bennani@atlas-textile.ma",
                                       password, password, "Mme", "+212 522 11 22 35"))
        sub = subscriptions.submit_subscription(gw, services, form)
        subscriptions.receive_paper(services, agent, sub.id)  # the signed paper arrived
        subscriptions.approve_subscription(Context(gw, services, agent), sub.id)
    delegate = Actor.delegate(ADHERENT)
    for login, teleservice, powers in (("compta.atlas", "compte-adherent", ()),
                                       ("valid.atlas", "easypaiement", ("validateur",))):
        if gw.user_by_username(login) is None:
            users.create_user(Context(gw, services, delegate, ADHERENT), teleservice_users.NewUser(
                login, teleservice_users.UserDetails("Tazi", "Yasmine", f"{login}@atlas-textile.ma", "Mme", "Comptable"),
                Access(teleservice, powers), password, password, ANSWERS))
    return {"delegate": ADHERENT, "agent": AGENT, "auditor": AUDITOR, "users": "compta.atlas, valid.atlas"}


def main() -> int:
    password = os.environ.get("DEMO_PASSWORD", "Demo2026")
    try:
        logins = seed(Settings.from_env(), password)
    except ProvisionerError as exc:
        print(f"demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"""Demo logins (password: DEMO_PASSWORD, default Demo2026)
  Delegate of Atlas Textile SARL   {logins['delegate']}   (numéro d'adhérent)
  CIMR agent                       {logins['agent']}
  Security auditor                 {logins['auditor']}
  Teleservice users                {logins['users']}   (secret answers: Fès, Mimi)
  Second factor: the delegate, the agent, the auditor and valid.atlas (a validator) set up a TOTP in any
  authenticator app at their first login (Keycloak shows the QR code).""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
