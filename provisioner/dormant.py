"""Dormant teleservice users: no login for ``DORMANT_DAYS`` (180 by default) and they are disabled.

`provisioner dormant` lists them (a dry run); `--apply` disables each one, ends its sessions, marks it
``disabled_as_dormant`` and mails each delegate the list of its users disabled, which it can enable again in the
portal (enabling clears the mark). Run it from cron: exit 0 when nothing is (left) to do, 3 when a dry run found
some, 1 when some could not be disabled.

Only teleservice users (the ``teleservice`` attribute of an adherent's user): a delegate's, agent's or auditor's
account is never disabled by a timer — the audit's ``inactive`` finding reports those to people. A user's last
activity is its last LOGIN event Keycloak still keeps, else its creation: the realm must keep login events at least
as long as the threshold, else a user who logged in before the retention would look dormant; the command refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from provisioner import clock
from provisioner import easypaiement, outbox
from provisioner.context import Context
from provisioner.core import Services
from provisioner.errors import ConfigError, ProvisionerError
from provisioner.gateway import Gateway
from provisioner.tenancy import Actor
from provisioner.trail import audited
from provisioner.rules import EASYPAIEMENT

MARK = "disabled_as_dormant"
# The trail names who acted: here no person but this scheduled rule.
SYSTEM = Actor("compte-dormant (tâche planifiée)", "system")


@dataclass(frozen=True)
class DormantUser:
    id: str
    login: str
    adherent: str
    teleservice: str
    last_login: datetime | None
    created: datetime | None

    @property
    def since(self) -> datetime | None:
        """Its last activity: the last login still recorded, else the account's creation."""
        return self.last_login or self.created


@dataclass(frozen=True)
class Outcome:
    disabled: tuple[DormantUser, ...]
    failed: tuple[tuple[DormantUser, str], ...]  # the user, why


def _ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, timezone.utc) if value else None


def find(gw: Gateway, services: Services, retention: int, days: int | None = None,
         now: datetime | None = None) -> list[DormantUser]:
    """The enabled teleservice users without activity for ``days`` (the DORMANT_DAYS setting), oldest first. Two
    reads of our Keycloak extension whatever the number of users. ``retention``: how many days the realm keeps
    login events (realm/realm.yaml, events.retention_days; `plan` keeps the live realm to it); ConfigError when
    that is shorter than ``days``."""
    days = days or services.settings.dormant_days
    now = now or clock.now()
    if retention < days:
        raise ConfigError("DORMANT_DAYS", f"{days} days is longer than the realm keeps login events ({retention} "
                                          "days, realm.events.retention_days): a user who logged in before that "
                                          "would look dormant. Lower DORMANT_DAYS or keep events longer.")
    users = gw.audit_listing("users", gw.count_users())
    last = gw.audit_last_logins()
    limit = now - timedelta(days=days)
    found = []
    for u in users:
        attrs = u.get("attributes") or {}
        adherent, teleservice = (attrs.get("adherent") or [None])[0], (attrs.get("teleservice") or [None])[0]
        if not (u.get("enabled") and adherent and teleservice) or u.get("serviceAccountClientLink"):
            continue
        user = DormantUser(u["id"], u["username"], adherent, teleservice, _ms(last.get(u["id"])),
                           _ms(u.get("createdTimestamp")))
        if user.since is not None and user.since < limit:
            found.append(user)
    return sorted(found, key=lambda d: (d.since, d.login))


def disable(gw: Gateway, services: Services, found: list[DormantUser], days: int | None = None,
            now: datetime | None = None) -> Outcome:
    """Disable each one (sessions ended, marked with the date), each in the trail; then one mail per delegate."""
    days = days or services.settings.dormant_days
    today = (now or clock.now()).date().isoformat()
    done: list[DormantUser] = []
    failed: list[tuple[DormantUser, str]] = []
    for user in found:
        try:
            rep = gw.user_rep(user.id)
            if rep is None or not rep.get("enabled"):
                continue  # gone or disabled meanwhile: nothing to do
            with audited(services.db, SYSTEM, "user.disable_dormant", user.adherent, user.login) as entry:
                rep["enabled"] = False
                rep["attributes"] = {**(rep.get("attributes") or {}), MARK: [today]}
                gw.update_user(user.id, rep)
                gw.logout_user(user.id)
                entry.before, entry.after = {"enabled": True}, {"enabled": False, MARK: today}
                entry.detail = f"no login since {user.since:%Y-%m-%d} (threshold {days} days)"
                if user.teleservice == EASYPAIEMENT:
                    # a validator may leave the adherent short
                    easypaiement.record(gw, user.adherent, Context(gw, services, SYSTEM).automation)
            done.append(user)
        except ProvisionerError as exc:
            failed.append((user, f"{type(exc).__name__}: {exc}"))
    outbox.tell_delegates(gw, services, ((u.adherent, u.login) for u in done), lambda listed: (
        f"Ces logins de votre entreprise n'ont servi à aucune connexion depuis plus de {days} jours ; ils ont été "
        f"désactivés par sécurité : {listed}. Si l'un d'eux sert encore, réactivez-le dans le portail "
        "(Téléservices → l'utilisateur → Réactiver).",
        f"These logins of your company have not been used to log in for more than {days} days; they were "
        f"disabled for security: {listed}. If one is still needed, enable it again in the portal "
        "(Teleservices → the user → Enable)."), SYSTEM)
    return Outcome(tuple(done), tuple(failed))
