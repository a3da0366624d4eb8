"""The realm itself: its representation (settings, events configuration), creation, partial import, user profile,
client policies and client registration policies."""

from __future__ import annotations

from provisioner.gateway.transport import Transport


class RealmAdmin(Transport):
    """The Admin API calls on the realm the gateway was built for (python-keycloak's named calls where it has them)."""

    def get_realm(self) -> dict | None:
        """The realm's representation (only a few fields for a caller without view-realm); None if it is absent."""
        return self.call(self.kc.get_realm, self.realm, none_on_404=True)

    def create_realm(self, rep: dict) -> None:
        self.call(self.kc.create_realm, {"realm": self.realm, **rep})

    def update_realm(self, rep: dict) -> None:
        self.call(self.kc.update_realm, self.realm, rep)

    def delete_realm(self) -> None:
        """Delete the realm; already gone is fine."""
        self.call(self.kc.delete_realm, self.realm, none_on_404=True)

    def partial_import(self, rep: dict) -> dict:
        """Keycloak's own partialImport (tests and bench/ use it to lay out data fast)."""
        return self.call(self.kc.partial_import_realm, self.realm, rep)

    def user_profile(self) -> dict:
        """The declarative user profile: {"attributes": [...], "groups": [...], ...}."""
        return self.call(self.kc.get_realm_users_profile) or {}

    def set_user_profile(self, profile: dict) -> None:
        self.call(self.kc.update_realm_users_profile, profile)

    # Client policies have no named call in python-keycloak: its raw calls, on the same connection.
    def client_profiles(self) -> list[dict]:
        """The realm's own client-policy profiles (Keycloak's global ones, e.g. FAPI, left out)."""
        return (self.get("/client-policies/profiles") or {}).get("profiles") or []

    def set_client_profiles(self, profiles: list[dict]) -> None:
        """Replace the realm's own client-policy profiles, all at once (Keycloak has no per-profile call)."""
        self.put("/client-policies/profiles", {"profiles": profiles})

    def client_policies(self) -> list[dict]:
        """The realm's client policies: name, enabled, conditions, profiles."""
        return (self.get("/client-policies/policies") or {}).get("policies") or []

    def set_client_policies(self, policies: list[dict]) -> None:
        """Replace the realm's client policies, all at once."""
        self.put("/client-policies/policies", {"policies": policies})

    def registration_policies(self) -> list[dict]:
        """The client registration policies (components): who may register clients, anonymously or not."""
        return self.call(self.kc.get_components,
                         {"type": "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy"}) or []
