"""What a test or a benchmark run needs in the realm, built through the provisioner's actions: valid subscription
forms, approved adherents (their delegate), teleservice users; the passwords they are given."""

from __future__ import annotations

import uuid
from dataclasses import replace

from provisioner.context import Context
from provisioner.delegates import NewDelegate
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.subscriptions import (Company, Responsable, NewSubscription, approve_subscription,
                                       receive_paper, submit_subscription)
from provisioner.teleservice_users import NewUser, UserDetails
from provisioner.users import create_user

DELEGATE_PASSWORD = "Deleg2026"
USER_PASSWORD = "User2026"
STAFF_PASSWORD = "Staff2026"  # agents and auditors


def numero() -> str:
    return str(uuid.uuid4().int % 10**8).rjust(8, "7")


def login(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def subscription_form(n: str | None = None, **delegate) -> NewSubscription:
    n = n or numero()
    return NewSubscription(
        Company(n, "Atlas Textile SARL", "RC 12345", "PAT 67890", "12 bd Zerktouni, Casablanca", "+212 522 11 22 33",
                "", "www.atlas-textile.ma"),
        Responsable("Alaoui", "Karim", "Directeur général", "M", "+212 522 11 22 34"),
        NewDelegate(**({"nom": "Bennani", "prenom": "Salma", "fonction": "Responsable RH",
                         "email": f"delegue.{n}@atlas-textile.ma", "password": DELEGATE_PASSWORD,
                         "password_confirm": DELEGATE_PASSWORD, "civilite": "Mme"} | delegate)))


def approved_adherent(gw, services, agent, categories: tuple[str, ...] = ()) -> str:
    form = subscription_form()
    form = replace(form, categories=categories)
    sub = submit_subscription(gw, services, form)
    receive_paper(services, agent, sub.id)  # the signed form arrived, as the agent records it before approving
    approve_subscription(Context(gw, services, agent), sub.id)
    return form.company.numero


ANSWERS = (SecretAnswer("Ville de naissance de votre père ?", "Fès"),
           SecretAnswer("Nom de votre premier animal de compagnie ?", "Mimi"))


def new_user(teleservice: str = "compte-adherent", powers: tuple[str, ...] = (), **kw) -> NewUser:
    access = kw.pop("access", None) or Access(teleservice, powers, **({"user_type": "interne"} if teleservice ==
                                                                      "teledeclaration" else {}))
    fields = {"login": login(), "details": UserDetails("El Idrissi", "Youssef", "y.elidrissi@atlas-textile.ma", "M",
                                                       "Comptable", "+212 600 00 00 00"),
              "access": access, "password": USER_PASSWORD, "password_confirm": USER_PASSWORD,
              "secret_answers": ANSWERS} | kw
    return NewUser(**fields)


def make_user(gw, services, actor, adherent: str, teleservice: str = "compte-adherent",
              powers: tuple[str, ...] = (), **kw):
    return create_user(Context(gw, services, actor, adherent), new_user(teleservice, powers, **kw))
