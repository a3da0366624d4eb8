"""What a teleservice user may do, from the roles and claims of their token (pure, French first)."""

from __future__ import annotations

from dataclasses import dataclass

USER_TYPES = {"interne": "Interne (personnel de l'adhérent)", "externe": "Externe (fiduciaire ou prestataire)"}

# E@syPaiement (brochure: paiement des cotisations, option prélèvement cas par cas).
EASYPAIEMENT_POWERS = {
    "ordonnateur": ("Saisir un ordre de paiement des cotisations (prélèvement cas par cas)",
                    "Modifier ou annuler ses ordres tant qu'ils ne sont pas confirmés",
                    "Soumettre l'ordre à la confirmation du ou des validateurs"),
    "validateur": ("Consulter les ordres de paiement soumis par l'ordonnateur",
                   "Confirmer ou rejeter un ordre de paiement",
                   "Avec deux confirmations choisies par l'adhérent, un second validateur doit aussi confirmer"),
}


@dataclass(frozen=True)
class Identity:
    """Who is logged in, as a teleservice may rely on it (the contract's claims)."""

    sub: str
    username: str
    name: str
    adherent: str | None
    roles: tuple[str, ...]
    user_type: str | None
    categories: tuple[str, ...]
    # E@syPaiement: the confirmations the adherent requires (1 or 2) and whether it has that many enabled validators
    # (claims `easypaiement_confirmations`, `easypaiement_enough_validators`; None when the token has none).
    confirmations: int | None = None
    enough_validators: bool | None = None

    @property
    def incomplete(self) -> bool:
        """The adherent lacks validators for its confirmations: no payment can be confirmed as it requires."""
        return self.enough_validators is False

    @classmethod
    def from_claims(cls, claims: dict, client_id: str) -> "Identity":
        roles = ((claims.get("resource_access") or {}).get(client_id) or {}).get("roles") or []
        cats = claims.get("categories") or []
        return cls(sub=claims["sub"], username=claims.get("preferred_username", ""),
                   name=claims.get("name") or claims.get("preferred_username", ""),
                   adherent=claims.get("adherent"), roles=tuple(sorted(roles)),
                   user_type=claims.get("user_type"),
                   categories=tuple([cats] if isinstance(cats, str) else cats),
                   confirmations=claims.get("easypaiement_confirmations"),
                   enough_validators=claims.get("easypaiement_enough_validators"))

    def to_json(self) -> dict:
        return {"sub": self.sub, "username": self.username, "name": self.name, "adherent": self.adherent,
                "roles": list(self.roles), "user_type": self.user_type, "categories": list(self.categories),
                "confirmations": self.confirmations, "enough_validators": self.enough_validators}


def role_labels(descriptions: dict[str, str], roles: tuple[str, ...]) -> list[str]:
    """The user's roles as realm/clients.yaml describes them (the teleservice's catalogue entry)."""
    return [descriptions.get(r, r) for r in roles]


def easypaiement_powers(descriptions: dict[str, str], roles: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """(role label, what it allows) for each E@syPaiement power the user holds."""
    return [(descriptions.get(r, r), EASYPAIEMENT_POWERS[r]) for r in EASYPAIEMENT_POWERS if r in roles]
