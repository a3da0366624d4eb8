"""The only code that talks to Keycloak's Admin API: one transport, one module per kind of Keycloak object.

    connection.py  python-keycloak's connection: tokens, shared HTTP clients, the batches' event loop
    transport.py   the calls on it (named, raw, async): error translation, paging, bounded concurrency
    realm.py       the realm: settings, creation, partial import, user profile
    users.py       users (User): credentials, sessions, lockout, role mappings
    groups.py      groups (Group): the tree, members and memberships, the roles groups carry
    clients.py     clients: roles, protocol mappers, optional client scopes, service accounts
    roles.py       realm roles, composites, who carries a role
    flows.py       authentication flows, executions, authenticator configs
    authz.py       fine-grained admin permissions: policies and permissions
    extension.py   our Keycloak extension's audit listings

A ``Gateway`` is built for one realm and one source of tokens. It takes and returns our own values (User, Group)
or Keycloak's representations as plain dicts, translates HTTP failures once into NotFound / Conflict /
Forbidden / KeycloakRejected / KeycloakUnavailable (a read of a missing object returns None), and never prints,
exits or flashes.
"""

from __future__ import annotations

from provisioner.gateway.authz import PermissionAdmin
from provisioner.gateway.clients import ClientAdmin
from provisioner.gateway.extension import AuditListings
from provisioner.gateway.flows import FlowAdmin
from provisioner.gateway.groups import Group, GroupAdmin
from provisioner.gateway.realm import RealmAdmin
from provisioner.gateway.roles import Role, RoleAdmin
from provisioner.gateway.connection import Connection
from provisioner.gateway.transport import Transport
from provisioner.gateway.users import User, UserAdmin
from provisioner.settings import Settings

__all__ = ["Gateway", "Group", "Role", "User"]


class Gateway(RealmAdmin, UserAdmin, GroupAdmin, ClientAdmin, RoleAdmin, FlowAdmin, PermissionAdmin, AuditListings,
              Transport):
    """Admin API calls for one realm, authenticated by one source of access tokens (fetched on first use)."""

    @classmethod
    def as_master_admin(cls, settings: Settings) -> "Gateway":
        """For plan/apply of the realm itself (may create the realm): a master-realm admin through that realm's
        ``admin-cli`` (the realm's own admin-cli is disabled on purpose)."""
        user, password = settings.require_admin()
        return cls(settings, Connection(settings, username=user, password=password, client_id="admin-cli",
                                        user_realm_name=settings.admin_realm))

    @classmethod
    def as_service_account(cls, settings: Settings, client_id: str | None = None,
                           secret: str | None = None) -> "Gateway":
        """A service account of the realm (client-credentials grant); by default the automation client."""
        if client_id is None:
            client_id, secret = settings.require_service_account()
        return cls(settings, Connection(settings, client_id=client_id, client_secret_key=secret,
                                        user_realm_name=settings.realm))

    @classmethod
    def as_auditor(cls, settings: Settings) -> "Gateway":
        """The security team's read-only client (view-*/query-* roles, no manage-*, no export)."""
        client_id, secret = settings.require_auditor()
        return cls.as_service_account(settings, client_id, secret)

    @classmethod
    def with_token(cls, settings: Settings, access_token: str) -> "Gateway":
        """Act with a person's own access token (e.g. a delegate logged in to the portal); never renewed."""
        gw = cls(settings, Connection(settings, token={"access_token": access_token, "expires_in": 0}))
        gw.confined = True  # may be confined by fine-grained admin permissions
        return gw
