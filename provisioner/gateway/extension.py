"""Our Keycloak extension's listings (keycloak-extension/): the bulk reads the Admin API lacks. For the audit
(``/realms/<realm>/cimr-audit/...``): every user with the ids of its groups, the group tree, last logins, admin
events without their representations, in pages read several at once. For a delegate's pages
(``/realms/<realm>/cimr-adherent/users``): one adherent's users in one request. Same rules as the Admin API.
"""

from __future__ import annotations

from typing import Any

from provisioner.errors import KeycloakRejected
from provisioner.gateway.transport import Transport, result


class AuditListings(Transport):
    """The audit's listings, never one request per user (nor per group); see docs/audit.md."""

    def adherent_members(self, adherent: str) -> dict:
        """``{"adherent": {id, name, attributes}, "users": [...]}``: every member of /adherents/<numero>'s tree with
        its details, attributes and ``groups`` (paths under the adherent: "" for the adherent's own group,
        "easypaiement/validateur", ...) — one request whatever the number of users. Keycloak allows it to a
        caller that may list the members of every group of that tree (view-users, or a delegate's fine-grained
        permission on its own adherent): Forbidden otherwise, NotFound when there is no such adherent (a
        confined caller gets Forbidden for both)."""
        return result(self._send("GET", "/users", {"adherent": adherent}, base=f"realms/{self.realm}/cimr-adherent"))

    def audit_listing(self, kind: str, expected: int, workers: int = 4, page: int = 1000) -> list[dict]:
        """Every user ("users": attributes, ids of its groups) or group ("groups": parent, attributes) of the
        realm. ``expected`` (about how many there are) lets the pages be read at once; more are read until a
        short page. Raises KeycloakRejected when Keycloak lacks the extension.
        """
        items = self._listing_all(f"/{kind}", expected // page + 1, 1, page, workers)  # then: the realm grew
        return list({item["id"]: item for item in items}.values())  # a page may shift while others are read

    def server_version(self) -> str:
        """The running Keycloak's version (view-realm): /admin/serverinfo tells it to master administrators only."""
        return (self._listing_pages("/server", [0], 1, 1)[0] or {}).get("version") or ""

    def audit_last_logins(self) -> dict[str, int]:
        """User id -> time (ms) of its last LOGIN event still stored."""
        return self._listing_pages("/last-logins", [0], 1, 1)[0] or {}

    def audit_admin_events(self, since_ms: int, workers: int = 4, page: int = 5000) -> list[dict]:
        """Admin events since ``since_ms``, newest first (time, operation, resource, authDetails)."""
        return self._listing_all("/admin-events", workers, workers, page, workers, since=since_ms)

    def _listing_pages(self, path: str, firsts: list[int], page: int, workers: int, **params: Any) -> list[list]:
        pages = self.get_many([(path, {**params, "first": f, "max": page}) for f in firsts], workers=workers,
                              base=f"realms/{self.realm}/cimr-audit")
        if pages and pages[0] is None:
            raise KeycloakRejected("Keycloak does not serve /realms/<realm>/cimr-audit: install the extension "
                                   "keycloak-extension/ in its providers/ directory (docs/audit.md)")
        return [batch or [] for batch in pages]

    def _listing_all(self, path: str, first_pages: int, then: int, page: int, workers: int,
                     **params: Any) -> list[dict]:
        """Every item of a listing: ``first_pages`` pages at once, then ``then`` more at a time until a short page."""
        items: list[dict] = []
        first, count = 0, first_pages
        while True:
            pages = self._listing_pages(path, [first + i * page for i in range(count)], page, workers, **params)
            for batch in pages:
                items.extend(batch)
            if any(len(batch) < page for batch in pages):
                return items
            first, count = first + count * page, then
