"""Secret questions: answers normalised, hashed with argon2 and kept in our database, never in Keycloak."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, insert, select

from provisioner.db import Database, secret_questions

# Light but real argon2id parameters (OWASP's m=19 MiB, t=2, p=1): answers are hashed on our side while
# Keycloak hashes passwords on the same machine.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class SecretAnswer:
    question: str
    answer: str

    def __repr__(self) -> str:  # never show the answer in logs or tracebacks
        return f"SecretAnswer({self.question!r}, answer=***)"


def normalise(answer: str) -> str:
    """casefold, strip accents, collapse spaces: 'Casablanca ', 'casablanca' and 'CASABLANCA' agree."""
    decomposed = unicodedata.normalize("NFKD", answer.casefold())
    no_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", no_accents).strip()


def hash_answer(answer: str) -> str:
    return _HASHER.hash(normalise(answer))


def store(db: Database, user_id: str, answers: list[SecretAnswer], hashes: list[str] | None = None) -> None:
    """Replace the user's questions and hashed answers (one transaction)."""
    hashes = hashes or [hash_answer(a.answer) for a in answers]
    with db.begin() as conn:
        conn.execute(delete(secret_questions).where(secret_questions.c.user_id == user_id))
        conn.execute(insert(secret_questions), [
            {"user_id": user_id, "position": i, "question": a.question, "answer_hash": h}
            for i, (a, h) in enumerate(zip(answers, hashes))])


def questions_of(db: Database, user_id: str) -> list[str]:
    """The user's questions, in order (no answers)."""
    with db.connect() as conn:
        rows = conn.execute(select(secret_questions.c.question).where(secret_questions.c.user_id == user_id)
                            .order_by(secret_questions.c.position))
        return [r.question for r in rows]


def users_with_questions(db: Database, user_ids: list[str]) -> set[str]:
    """Which of these users already have their secret questions stored."""
    with db.connect() as conn:
        rows = conn.execute(select(secret_questions.c.user_id).distinct()
                            .where(secret_questions.c.user_id.in_(user_ids)))
        return {r.user_id for r in rows}


def verify(db: Database, user_id: str, answers: list[str]) -> bool:
    """True when every answer matches its question's stored hash (answers given in question order)."""
    with db.connect() as conn:
        rows = list(conn.execute(select(secret_questions.c.answer_hash).where(secret_questions.c.user_id == user_id)
                                 .order_by(secret_questions.c.position)))
    if not rows or len(answers) != len(rows):
        return False
    try:
        return all(_HASHER.verify(r.answer_hash, normalise(a)) for r, a in zip(rows, answers))
    except (VerifyMismatchError, InvalidHashError):
        return False


def forget(db: Database, user_id: str) -> None:
    with db.begin() as conn:
        conn.execute(delete(secret_questions).where(secret_questions.c.user_id == user_id))
