"""Subscriptions (Abonnement): submit, list pending against the 48-hour promise, approve, reject."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner.tenancy import Actor


@dataclass(frozen=True)
class Company:
    numero: str                 # * numéro d'adhérent
    raison_sociale: str         # *
    rc: str                     # * N° RC
    patente: str                # * N° patente
    adresse: str = ""
    telephone: str = ""
    fax: str = ""
    site_web: str = ""


@dataclass(frozen=True)
class Responsable:
    nom: str                    # *
    prenom: str                 # *
    fonction: str               # *
    civilite: str = ""
    telephone: str = ""         # téléphone fixe 1
    telephone2: str = ""        # téléphone fixe 2
    fax: str = ""
    gsm: str = ""
    email: str = ""


@dataclass(frozen=True)
class DelegateForm:
    nom: str                    # *
    prenom: str                 # *
    fonction: str               # *
    email: str                  # *
    password: str = field(repr=False, default="")          # * (handed to Keycloak, never stored)
    password_confirm: str = field(repr=False, default="")  # *
    civilite: str = ""
    telephone: str = ""
    gsm: str = ""
    fax: str = ""

    def public(self) -> dict:
        """The form without its passwords (what we store and audit)."""
        d = asdict(self)
        d.pop("password"), d.pop("password_confirm")
        return d


@dataclass(frozen=True)
class SubscriptionForm:
    company: Company
    responsable: Responsable
    delegate: DelegateForm
    categories: tuple[str, ...] = ()   # the adherent's active staff categories; default from settings

    def public(self) -> dict:
        return {"company": asdict(self.company), "responsable": asdict(self.responsable),
                "delegate": self.delegate.public(), "categories": list(self.categories)}


@dataclass(frozen=True)
class Subscription:
    id: int
    adherent: str
    status: str                 # pending / approved / rejected
    form: dict                  # SubscriptionForm.public()
    submitted_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    age_hours: float = 0.0      # since submission (until decision)
    overdue: bool = False       # pending beyond the SLA (48 h)


def validate_subscription(services: Services, form: SubscriptionForm) -> None:
    """Every field of the form; raises ValidationError mapping 'company.rc', 'delegate.email', ... to a Message."""
    raise NotImplementedError


def submit_subscription(gw: Gateway, services: Services, form: SubscriptionForm,
                        actor: Actor | None = None) -> Subscription:
    """Validate, create the delegate account (disabled, password in Keycloak only) and the pending subscription.

    Raises ValidationError (fields), RuleViolation('company.numero') when the adherent is already subscribed.
    """
    raise NotImplementedError


def list_subscriptions(services: Services, status: str | None = "pending",
                       now: datetime | None = None) -> list[Subscription]:
    """Subscriptions (pending by default), oldest first, with their age and the overdue flag."""
    raise NotImplementedError


def get_subscription(services: Services, subscription_id: int) -> Subscription:
    raise NotImplementedError


def approve_subscription(gw: Gateway, services: Services, actor: Actor, subscription_id: int) -> Subscription:
    """Agent only: create the adherent's group tree, enable the delegate, mail them (no password). Re-runnable."""
    raise NotImplementedError


def reject_subscription(gw: Gateway, services: Services, actor: Actor, subscription_id: int,
                        reason: str) -> Subscription:
    """Agent only: mark rejected, remove the disabled delegate account, mail the delegate the reason."""
    raise NotImplementedError
