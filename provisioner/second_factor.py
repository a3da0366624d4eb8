"""Second factors (TOTP, WebAuthn) of the accounts that can do damage: who has enrolled, and the resets.

Keycloak asks for the second factor (realm/realm.yaml ``second_factor``, the flows of provisioner/realm/plan.py);
an account without one is made to enrol at its next login. A reset therefore removes the credentials and ends
the sessions: the next login shows Keycloak's setup page again (a lost or changed phone).
"""

from __future__ import annotations

from typing import Iterable

from provisioner.context import Context
from provisioner.delegates import delegate_account
from provisioner.core import Services
from provisioner.gateway import Gateway
from provisioner import outbox
from provisioner.mailer import notice_mail
from provisioner.rules import SECOND_FACTOR_TYPES
from provisioner.tenancy import require_adherent, require_agent
from provisioner.teleservice_users import TeleserviceUser

# Keycloak's credential types that are a second factor (a password is not).


def needs_second_factor(services: Services, user: TeleserviceUser) -> bool:
    """The user holds a power whose holders must use a second factor (E@syPaiement's validateur)."""
    teleservice = user.access.teleservice
    if teleservice not in services.catalogue:
        return False
    return bool(set(services.catalogue[teleservice].strong_powers) & set(user.access.powers))


def second_factors(gw: Gateway, user_id: str) -> tuple[str, ...]:
    """The types of the user's second-factor credentials (empty: not enrolled)."""
    return tuple(sorted({c.get("type") for c in gw.credentials(user_id)} & SECOND_FACTOR_TYPES))


def enrolment(ctx: Context, listed: Iterable[TeleserviceUser]) -> dict[str, bool]:
    """For each of the adherent's users who must use a second factor: login -> enrolled. One read per such user
    (a few validators per adherent); the others are left out."""
    require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
    return {u.login: bool(second_factors(ctx.gw, u.id)) for u in listed
            if u.adherent == ctx.adherent and needs_second_factor(ctx.services, u)}


def _remove(gw: Gateway, user_id: str) -> list[str]:
    removed = []
    for cred in gw.credentials(user_id):
        if cred.get("type") in SECOND_FACTOR_TYPES:
            gw.delete_credential(user_id, cred["id"])
            removed.append(cred["type"])
    gw.logout_user(user_id)  # a session opened with the lost phone ends too
    return sorted(removed)


def reset_user_second_factor(ctx: Context, login: str) -> list[str]:
    """Delegate (own adherent) or agent: a user's lost phone. Its second factors are removed and its sessions
    ended; it enrols again at its next login. Returns the credential types removed."""
    with ctx.audited("user.reset_second_factor", login) as entry:
        user = ctx.user(login)
        removed = _remove(ctx.gw, user.id)
        entry.before, entry.after = {"second_factor": removed}, {"second_factor": []}
        return removed


def reset_delegate_second_factor(ctx: Context) -> list[str]:
    """Agent, on a signed letter (the delegate lost its phone): the delegate's second factors are removed and its
    sessions ended; it enrols again at its next portal login. Returns the credential types removed."""
    with ctx.audited("delegate.reset_second_factor", ctx.adherent) as entry:
        require_agent(ctx.actor, ctx.adherent, ctx.adherent)
        user = delegate_account(ctx.gw, ctx.adherent)
        removed = _remove(ctx.gw, user.id)
        entry.before, entry.after = {"second_factor": removed}, {"second_factor": []}
        if user.email:
            outbox.post(ctx.services, notice_mail(
                user.email, ctx.adherent, "Le second facteur (application d'authentification) de l'administrateur des "
                "utilisateurs a été supprimé par la CIMR à la suite de votre courrier. À la prochaine connexion, "
                "le portail vous demandera d'en enregistrer un nouveau.", "The user administrator's second factor "
                "(authenticator app) was removed by CIMR following your letter. At the next login, the portal will "
                "ask you to register a new one."), ctx.adherent, ctx.actor)
        return removed
