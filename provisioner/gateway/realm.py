"""The realm itself: its representation (settings, events configuration), creation, partial import, user profile."""

from __future__ import annotations

from provisioner.gateway.transport import Transport, result


class RealmAdmin(Transport):
    """The Admin API calls on the realm the gateway was built for."""

    def get_realm(self) -> dict | None:
        """The realm's representation (only a few fields for a caller without view-realm); None if it is absent."""
        return self.get("")

    def create_realm(self, rep: dict) -> None:
        result(self._send("POST", self._url("", base="admin/realms"), body={"realm": self.realm, **rep}))

    def update_realm(self, rep: dict) -> None:
        self.put("", rep)

    def delete_realm(self) -> None:
        """Delete the realm; already gone is fine."""
        result(self._send("DELETE", self.admin_url()), none_on_404=True)

    def partial_import(self, rep: dict) -> dict:
        """Keycloak's own partialImport (tests and bench/ use it to lay out data fast)."""
        return self.post_json("/partialImport", rep)

    def user_profile(self) -> dict:
        """The declarative user profile: {"attributes": [...], "groups": [...], ...}."""
        return self.get("/users/profile") or {}

    def set_user_profile(self, profile: dict) -> None:
        self.put("/users/profile", profile)
