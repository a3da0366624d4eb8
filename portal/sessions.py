"""Server-side sessions in our database: the browser holds only a random id (tokens never leave the server).

The table stores a SHA-256 of the id, so a copy of the database does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from flask import Flask, Request, Response, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Engine
from werkzeug.datastructures import CallbackDict

from provisioner.db import UNREACHABLE, metadata, portal_sessions, reading

_serializer = TaggedJSONSerializer()
REFRESH_AFTER = timedelta(seconds=60)  # don't rewrite an unchanged session on every request


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial: dict | None = None, sid: str | None = None, expires_at: datetime | None = None):
        def on_update(self: "ServerSession") -> None:
            self.modified = True
        super().__init__(initial, on_update)
        self.sid = sid
        self.expires_at = expires_at
        self.modified = False
        self.rotate = False
        self.unreachable: Exception | None = None  # the database could not be read: the request fails with it

    def regenerate(self) -> None:
        """New id for the same data (call at login: no session fixation)."""
        self.rotate = True
        self.modified = True


class DatabaseSessionInterface(SessionInterface):
    def __init__(self, engine_getter):
        self._engine_getter = engine_getter
        self._ready = False

    @property
    def engine(self) -> Engine:
        engine = self._engine_getter()
        if not self._ready:
            metadata.create_all(engine)
            self._ready = True
        return engine

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if request.path.startswith(app.static_url_path + "/") or request.path == "/metrics":
            return ServerSession()  # stylesheet, script, icon, Prometheus' scrape: no database read
        if sid and len(sid) < 100:
            try:
                with reading(self.engine) as conn:
                    row = conn.execute(select(portal_sessions.c.data, portal_sessions.c.expires_at)
                                       .where(portal_sessions.c.id_hash == _hash(sid))).first()
            except UNREACHABLE as exc:
                # Flask opens the session before any error handler can act: keep the error for the request
                # (raise_if_unreachable), answer with an empty session, and leave the cookie alone.
                empty = ServerSession()
                empty.unreachable = exc
                return empty
            if row and row.expires_at > _now():
                return ServerSession(_serializer.loads(row.data), sid, row.expires_at)
        return ServerSession()

    def refresh_value(self, session: ServerSession, key: str, refresh: Callable[[Any], Any]) -> Any:
        """Set ``session[key] = refresh(saved value)`` under a lock on this session's saved record, so that
        concurrent requests of one session refresh once: a request that waited for the lock finds the value
        the first one saved (it differs from what it loaded) and takes it instead of refreshing again."""
        if not session.sid:
            session[key] = refresh(session.get(key))
            return session[key]
        row = portal_sessions.c.id_hash == _hash(session.sid)
        with self.engine.begin() as conn:
            # A no-op write takes the row's lock (PostgreSQL) or the database's write lock (SQLite) until commit.
            conn.execute(update(portal_sessions).where(row).values(id_hash=portal_sessions.c.id_hash))
            data = conn.execute(select(portal_sessions.c.data).where(row)).scalar()
            stored = _serializer.loads(data) if data else dict(session)
            value = stored.get(key)
            if value == session.get(key):  # nobody refreshed meanwhile: our turn
                value = stored[key] = refresh(value)
                conn.execute(update(portal_sessions).where(row).values(data=_serializer.dumps(stored)))
        session[key] = value
        return value

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        lifetime = app.permanent_session_lifetime
        if not session:
            if session.sid:
                with self.engine.begin() as conn:
                    conn.execute(delete(portal_sessions).where(portal_sessions.c.id_hash == _hash(session.sid)))
            if session.modified or session.sid:
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app),
                                       httponly=True, samesite=self.get_cookie_samesite(app))
            return
        now = _now()
        fresh = session.expires_at and session.expires_at - now > lifetime - REFRESH_AFTER
        if not session.modified and fresh:
            return
        user = session.get("user") or {}
        values = dict(user_sub=user.get("sub"), username=user.get("username"),
                      data=_serializer.dumps(dict(session)), expires_at=now + lifetime)
        with self.engine.begin() as conn:
            if session.sid and session.rotate:
                conn.execute(delete(portal_sessions).where(portal_sessions.c.id_hash == _hash(session.sid)))
                session.sid = None
            if session.sid:
                done = conn.execute(update(portal_sessions).where(portal_sessions.c.id_hash == _hash(session.sid))
                                    .values(**values)).rowcount
                if not done:  # expired or ended meanwhile: start a new one rather than resurrect the id
                    session.sid = None
            if not session.sid:
                session.sid = secrets.token_urlsafe(32)
                conn.execute(insert(portal_sessions).values(id_hash=_hash(session.sid), **values))
        response.set_cookie(name, session.sid, max_age=lifetime, domain=domain, path=path, secure=True,
                            httponly=True, samesite=self.get_cookie_samesite(app))


def end_sessions(engine: Engine, *, user_sub: str | None = None, username: str | None = None) -> int:
    """End every portal session of a person (logout elsewhere, delegate replaced, account suspended)."""
    clauses = []
    if user_sub:
        clauses.append(portal_sessions.c.user_sub == user_sub)
    if username:
        clauses.append(portal_sessions.c.username == username)
    if not clauses:
        return 0
    metadata.create_all(engine)
    with engine.begin() as conn:
        return conn.execute(delete(portal_sessions).where(or_(*clauses))).rowcount


def purge_expired(engine: Engine) -> int:
    """Delete sessions past their expiry (they are already refused when read)."""
    with engine.begin() as conn:
        return conn.execute(delete(portal_sessions).where(portal_sessions.c.expires_at <= _now())).rowcount


def raise_if_unreachable() -> None:
    """Before anything else in the request (CSRF check included): a session the database could not read fails
    the request with the database's error, which portal/views/errors.py answers with its 503 page."""
    if getattr(session, "unreachable", None) is not None:
        raise session.unreachable


def init_app(app: Flask) -> None:
    services = app.extensions["cimr"]  # portal.services.PortalServices
    app.session_interface = DatabaseSessionInterface(lambda: services.engine)
    app.before_request_funcs.setdefault(None, []).insert(0, raise_if_unreachable)
