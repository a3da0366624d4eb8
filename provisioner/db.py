"""Our own small database (SQLAlchemy 2 Core): audit trail, subscriptions, secret questions, delegate history,
mail outbox, password links.

Keycloak keeps identities and credentials; this database keeps what Keycloak should not (hashed
secret-question answers) or cannot (who the person behind an action was, the subscription form).
Tables are created on start; a nullable column added to an existing table is added to older databases then
too (``add_missing_columns``): there are no migrations.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        create_engine, event, inspect)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

metadata = MetaData()
CONNECT_TIMEOUT = 5  # seconds, PostgreSQL
# What SQLAlchemy raises when the database cannot be reached (down, restarting, connection lost, pool exhausted):
# the portal answers 503 for these (portal/views/errors.py), and recovers by itself once the database is back.
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)

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
    # The paper step: the signed and stamped form arrived (the 48-hour promise counts from then), who recorded it.
    Column("paper_received_at", DateTime(timezone=True)),
    Column("paper_recorded_at", DateTime(timezone=True)),
    Column("paper_recorded_by", String(120)),
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

# Every mail we send goes through here first (provisioner/outbox.py): written with the action, then sent; a mail
# the SMTP server did not take stays here, unsent, with its error, until a retry delivers it. No password, ever.
mail_outbox = Table(
    "mail_outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("recipient", String(200), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("adherent", String(20), index=True),
    Column("created_by", String(120)),                              # the person whose action wrote it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("claimed_until", DateTime(timezone=True)),               # a sender's lease: two senders never send one mail
    Column("sent_at", DateTime(timezone=True), index=True),
)


# Links mailed to a person to choose its own password (provisioner/password_links.py): a new delegate at a
# réabonnement. Only the token's SHA-256 is kept; a link works once, until it expires, and a newer one replaces it.
password_links = Table(
    "password_links", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("login", String(120), nullable=False),
    Column("adherent", String(20), index=True),
    Column("purpose", String(40), nullable=False),
    Column("created_by", String(120), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)


# Access review campaigns (provisioner/reviews.py): the security team opens one, each delegate keeps or revokes
# its users (a snapshot taken at opening), reminders go out before the deadline, unreviewed users are then
# disabled or reported.
review_campaigns = Table(
    "review_campaigns", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(120), nullable=False),
    Column("opened_by", String(120), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("on_deadline", String(10), nullable=False),              # disable / report
    Column("reminder_days", String(40), nullable=False),            # "7,1": days before the deadline
    Column("scope", JSON),                                          # the numéros listed; null: every adherent
    Column("status", String(10), nullable=False, index=True),       # open / closed
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", String(120)),
)

review_items = Table(
    "review_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, nullable=False, index=True),
    Column("adherent", String(20), nullable=False, index=True),
    Column("user_id", String(64), nullable=False),
    Column("login", String(120), nullable=False),
    Column("teleservice", String(40), nullable=False),
    Column("powers", JSON, nullable=False),
    Column("decision", String(10)),                                 # null (pending) / keep / revoke
    Column("decided_by", String(120)),
    Column("decided_at", DateTime(timezone=True)),
    Column("closing", String(10)),                                  # unreviewed at the close: disabled / reported / gone / failed
    UniqueConstraint("campaign_id", "user_id"),
)

# Each reminder day of a campaign is mailed once per adherent: the row is the claim, written before the mail.
review_reminders = Table(
    "review_reminders", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, nullable=False),
    Column("adherent", String(20), nullable=False),
    Column("days", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("mail_id", Integer),
    UniqueConstraint("campaign_id", "adherent", "days"),
)


# The forgotten-password form's attempts (provisioner/password_reset.py): the per-login and per-address limits.
reset_attempts = Table(
    "reset_attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(120), nullable=False, index=True),   # as typed, case-folded
    Column("address", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("ok", Boolean, nullable=False),
)

# The portal's server-side sessions (portal/sessions.py): the cookie holds a random id, we keep its SHA-256.
portal_sessions = Table(
    "portal_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_sub", String(64), index=True),
    Column("username", String(255), index=True),
    Column("data", Text, nullable=False),
    Column("expires_at", DateTime, nullable=False, index=True),
)


class Database:
    """One engine for the process; tables created when opened (or, when the database is down at that moment,
    at the first transaction once it is back: a portal started during an outage recovers without a restart)."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # pool_pre_ping: a connection the database dropped (restart, failover) is replaced before use, so the
        # portal recovers by itself once the database is back; a connect timeout keeps an unreachable
        # PostgreSQL from holding requests for minutes.
        connect_args = {"connect_timeout": CONNECT_TIMEOUT} if url.startswith("postgresql") else {}
        # hide_parameters: an error's message never carries the values of a statement (session data, mails).
        self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args,
                                            hide_parameters=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._tables = False
        try:
            self._create_tables()
        except UNREACHABLE:
            pass  # retried by the next begin()/connect(), which raise if the database is still down

    def _create_tables(self) -> None:
        if not self._tables:
            metadata.create_all(self.engine)
            add_missing_columns(self.engine)
            self._tables = True

    def begin(self):
        """A transaction: ``with db.begin() as conn: ...`` commits on success, rolls back on error."""
        self._create_tables()
        return self.engine.begin()

    def connect(self):
        """A connection for reads: ``with db.connect() as conn: ...``. Each statement commits by itself (autocommit):
        under PostgreSQL's READ COMMITTED, which every statement of a transaction would see anyway, without the
        BEGIN and ROLLBACK round trips — a page view makes several such reads. Writes go through ``begin()``."""
        self._create_tables()
        return reading(self.engine)


def reading(engine: Engine):
    """A connection whose statements commit by themselves (``Database.connect``): reads only."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the nullable columns a table created by an older version lacks (``create_all`` only creates missing
    tables; we keep no migrations). Returns the columns added, as ``table.column``.

    Only nullable columns without a server default are added: anything else would need a real migration, and
    is left for ``create_all``'s users to notice. Two processes starting at once may both try: the loser's error
    is ignored once the column is there."""
    added = []
    existing = set(inspect(engine).get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            if column.name in have or not column.nullable or column.primary_key or column.server_default is not None:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            guard = "IF NOT EXISTS " if engine.dialect.name == "postgresql" else ""
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {guard}"{column.name}" {kind}')
            except (OperationalError, ProgrammingError):
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise
            added.append(f"{table.name}.{column.name}")
    return added


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Several processes (CLI, portal, bulk) share the file: wait for locks instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
