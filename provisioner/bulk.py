"""Bulk onboarding: a CSV of teleservice users for one adherent (columns in docs/provisioner-api.md,
sample in docs/sample-users.csv). Bad rows are reported with line and reason; good rows are created; a
re-run creates only what is missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from provisioner.core import Services
from provisioner.errors import Message
from provisioner.gateway import Gateway
from provisioner.tenancy import Actor
from provisioner.users import NewUser

COLUMNS = ("login", "civilite", "nom", "prenom", "fonction", "email", "telephone", "password", "teleservice",
           "powers", "user_type", "provider", "categories", "question1", "answer1", "question2", "answer2")
REQUIRED_COLUMNS = ("login", "nom", "prenom", "email", "password", "teleservice")


@dataclass(frozen=True)
class RowError:
    line: int              # 1-based line in the file (the header is line 1)
    login: str
    field: str
    message: Message


@dataclass
class BulkReport:
    created: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_csv(text: str) -> tuple[list[tuple[int, NewUser]], list[RowError]]:
    """Rows -> (line, NewUser) for rows that parse; RowError for rows that do not (pure)."""
    raise NotImplementedError


def import_users(gw: Gateway, services: Services, actor: Actor, adherent: str, text: str,
                 progress: Callable[[int, int], None] | None = None, concurrency: int = 8) -> BulkReport:
    """Validate every row, skip users already present (re-run), create the rest concurrently (one POST each)."""
    raise NotImplementedError
