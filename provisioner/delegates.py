"""The delegate of an adherent, shared by the actions on it: the account (username = the adherent's numéro), the
form that names the person, and the history of who was delegate when (``delegate_history``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update

from provisioner import clock, rules
from provisioner.core import Services
from provisioner.db import delegate_history as history_table
from provisioner.errors import Message, NotFound
from provisioner.gateway import Gateway, User
from provisioner.tenancy import Actor
from provisioner.tree import adherent_state


@dataclass(frozen=True)
class NewDelegate:
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


def validate_delegate(services: Services, d: NewDelegate, adherent: str, with_password: bool = True) -> dict[str, Message]:
    """The delegate's block of the form; without the password when an agent replaces a delegate (the new one
    chooses it through a mailed link: provisioner/password_links.py)."""
    errors = rules.collect({
        "delegate.civilite": rules.check_civilite(d.civilite),
        "delegate.nom": rules.check_name(d.nom),
        "delegate.prenom": rules.check_name(d.prenom),
        "delegate.fonction": rules.check_text(d.fonction, True, 80),
        "delegate.email": rules.check_email(d.email),
        "delegate.telephone": rules.check_phone(d.telephone),
        "delegate.gsm": rules.check_phone(d.gsm),
        "delegate.fax": rules.check_phone(d.fax),
    })
    if not with_password:
        return errors
    pw = rules.check_password_pair(services.password_policy, d.password, d.password_confirm, adherent)
    return errors | {f"delegate.{k}": v for k, v in pw.items()}


def delegate_rep(adherent: str, d: NewDelegate, enabled: bool) -> dict:
    """The delegate's Keycloak user, password included (one POST)."""
    attrs = {"adherent": [adherent]} | {k: [v] for k, v in (("civilite", d.civilite), ("fonction", d.fonction),
                                      ("telephone", d.telephone), ("gsm", d.gsm), ("fax", d.fax)) if v}
    return {"username": adherent, "enabled": enabled, "email": d.email, "emailVerified": True,
            "firstName": d.prenom, "lastName": d.nom, "attributes": attrs,
            "credentials": [{"type": "password", "value": d.password, "temporary": False}]}


def delegate_account(gw: Gateway, adherent: str) -> User:
    """The delegate account of an approved adherent (username = numero); NotFound when there is none."""
    adherent_state(gw, adherent)  # an approved adherent
    user = gw.user_by_username(adherent)
    if user is None or user.attr("adherent") != adherent:
        raise NotFound(f"no delegate account for adherent {adherent}")
    return user


def open_term(services: Services, adherent: str, user_id: str, delegate: dict) -> None:
    """Start a delegate_history term (the delegate from now on)."""
    with services.db.begin() as conn:
        conn.execute(insert(history_table).values(
            adherent=adherent, user_id=user_id, civilite=delegate.get("civilite"), nom=delegate.get("nom"),
            prenom=delegate.get("prenom"), email=delegate.get("email"), since=clock.now()))


@dataclass(frozen=True)
class DelegateTerm:
    """One row of the delegate history: who was delegate of the adherent, from when to when."""

    user_id: str
    civilite: str | None
    nom: str | None
    prenom: str | None
    email: str | None
    since: datetime
    until: datetime | None
    ended_by: str | None


def replaced_rep(rep: dict, new: NewDelegate) -> dict:
    """The account's representation with the new delegate's details (attributes other than theirs kept)."""
    attrs = {k: v for k, v in (rep.get("attributes") or {}).items()
             if k not in ("civilite", "fonction", "telephone", "gsm", "fax")}
    attrs |= {k: [v] for k, v in (("civilite", new.civilite), ("fonction", new.fonction),
              ("telephone", new.telephone), ("gsm", new.gsm), ("fax", new.fax)) if v}
    return {**rep, "firstName": new.prenom, "lastName": new.nom, "email": new.email, "emailVerified": True,
            "attributes": attrs, "requiredActions": []}


def in_office(services: Services, adherent: str, new: NewDelegate) -> bool:
    """Whether the open delegate term is already this person's (same e-mail and name)."""
    with services.db.connect() as conn:
        current = conn.execute(select(history_table).where(
            history_table.c.adherent == adherent, history_table.c.until.is_(None))).first()
    return current is not None and (current.email or "").lower() == new.email.lower() and current.nom == new.nom


def record_new_term(services: Services, adherent: str, user_id: str, new: NewDelegate, actor: Actor) -> None:
    """Close the open delegate term and open the new one, unless a previous run already did."""
    if in_office(services, adherent, new):
        return
    close_term(services, adherent, actor)
    with services.db.begin() as conn:
        conn.execute(insert(history_table).values(
            adherent=adherent, user_id=user_id, civilite=new.civilite, nom=new.nom, prenom=new.prenom,
            email=new.email, since=clock.now()))


def close_term(services: Services, adherent: str, actor: Actor) -> None:
    with services.db.begin() as conn:
        conn.execute(update(history_table).where(history_table.c.adherent == adherent, history_table.c.until.is_(None))
                     .values(until=clock.now(), ended_by=actor.username))


def update_open_term(services: Services, adherent: str, **values: str) -> None:
    with services.db.begin() as conn:
        conn.execute(update(history_table).where(history_table.c.adherent == adherent, history_table.c.until.is_(None))
                     .values(**values))
