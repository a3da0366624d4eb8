"""The teleservices and their powers, as realm/clients.yaml declares them: the one list every part reads.

The rules, the adherent's group tree, the listings, the CLI's choices, the portal's tabs and forms and the
reference teleservice all take the teleservices from here, so a teleservice added to realm/ appears
everywhere without code. What the brochure says of one teleservice in particular (E@syPaiement's validators,
Télédéclaration's declared categories) is written against the claims and roles it declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

# Claims that make a teleservice a declaration service (Télédéclaration): its users have a type (interne /
# externe, with the provider of an externe) and declare some of the adherent's active staff categories.
DECLARATION_CLAIMS = frozenset({"user_type", "categories"})


@dataclass(frozen=True)
class Teleservice:
    client_id: str
    name: str
    powers: tuple[str, ...]                   # its client roles, in realm/'s order: /adherents/<n>/<client>/<role>
    descriptions: tuple[tuple[str, str], ...]  # role -> realm/'s description
    claims: tuple[str, ...]
    strong_powers: tuple[str, ...] = ()       # powers whose holders must use a second factor (E@syPaiement validateur)
    url: str | None = None                    # where its users log in (realm/'s url): pages lead them there

    @property
    def chooses_powers(self) -> bool:
        """Several roles: the delegate picks at least one. One role: every user of it holds that role."""
        return len(self.powers) > 1

    @property
    def declares(self) -> bool:
        """A declaration service (user type, provider, categories): Télédéclaration."""
        return bool(DECLARATION_CLAIMS & set(self.claims))

    def description(self, power: str) -> str:
        return dict(self.descriptions).get(power, power)


@dataclass(frozen=True)
class Catalogue:
    teleservices: tuple[Teleservice, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.client_id for t in self.teleservices)

    def __iter__(self) -> Iterator[Teleservice]:
        return iter(self.teleservices)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self.ids

    def __getitem__(self, client_id: str) -> Teleservice:
        for t in self.teleservices:
            if t.client_id == client_id:
                return t
        raise KeyError(client_id)

    def powers(self) -> dict[str, tuple[str, ...]]:
        """client id -> its roles (the leaf groups of every adherent's tree)."""
        return {t.client_id: t.powers for t in self.teleservices}
