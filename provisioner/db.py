"""Our own small database (SQLAlchemy 2 Core): audit trail, subscriptions, secret questions, delegate history.

Keycloak keeps identities and credentials; this database keeps what Keycloak should not (hashed
secret-question answers) or cannot (who the person behind an action was, the subscription form).
Tables are created on start.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (JSON, Column, DateTime, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        create_engine, event)
from sqlalchemy.engine import Engine

metadata = MetaData()

audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(120), nullable=False, index=True),       # the person (username), never a service account
    Column("actor_role", String(20), nullable=False),                # agent / delegate / auditor / system
    Column("adherent", String(20), index=True),
    Column("action", String(60), nullable=False, index=True),
    Column("target", String(120)),
    Column("before", JSON),
    Column("after", JSON),
    Column("outcome", String(10), nullable=False),                  # ok / refused / error
    Column("detail", Text),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("adherent", String(20), nullable=False, index=True),
    Column("status", String(10), nullable=False, index=True),       # pending / approved / rejected
    Column("form", JSON, nullable=False),                           # company, responsable, delegate (no password)
    Column("delegate_user_id", String(64)),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(120)),
    Column("reason", Text),
)

secret_questions = Table(
    "secret_questions", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False, index=True),      # Keycloak user id
    Column("position", Integer, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer_hash", String(200), nullable=False),             # argon2 of the normalised answer
    UniqueConstraint("user_id", "position"),
)

delegate_history = Table(
    "delegate_history", metadata,
    Column("id", Integer, primary_key=True),
    Column("adherent", String(20), nullable=False, index=True),
    Column("user_id", String(64), nullable=False),
    Column("civilite", String(10)),
    Column("nom", String(80)),
    Column("prenom", String(80)),
    Column("email", String(200)),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True)),
    Column("ended_by", String(120)),
)


class Database:
    """One engine for the process; tables created when opened."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def begin(self):
        """A transaction: ``with db.begin() as conn: ...`` commits on success, rolls back on error."""
        return self.engine.begin()

    def connect(self):
        return self.engine.connect()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Several processes (CLI, portal, bulk) share the file: wait for locks instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
