"""Server-side sessions: the browser cookie holds only a random id; tokens stay on the server.

Sessions are indexed by Keycloak's session id (``sid``) so that a back-channel logout ends them.
The store is in memory (one process per teleservice, as the reference app runs); a production
teleservice puts the same three operations on Redis or its database.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict


class SessionStore:
    """Session data by random id, with an index by Keycloak ``sid`` and ``sub``."""

    def __init__(self, idle_seconds: int = 1800):
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, dict]] = {}
        self._by_sid: dict[str, set[str]] = defaultdict(set)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(32)

    def load(self, session_id: str) -> dict | None:
        with self._lock:
            found = self._data.get(session_id)
            if found is None:
                return None
            if time.time() - found[0] > self.idle_seconds:
                self._drop(session_id)
                return None
            return dict(found[1])

    def save(self, session_id: str, data: dict, create: bool) -> bool:
        """Store; an existing session ended meanwhile (back-channel logout) is not brought back."""
        with self._lock:
            if not create and session_id not in self._data:
                return False
            self._data[session_id] = (time.time(), dict(data))
            if data.get("kc_sid"):
                self._by_sid[data["kc_sid"]].add(session_id)
            return True

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._drop(session_id)

    def end_keycloak_session(self, sid: str | None = None, sub: str | None = None) -> int:
        """End every app session of a Keycloak session (or, without sid, of a user); returns how many."""
        with self._lock:
            if sid:
                ids = set(self._by_sid.get(sid, ()))
            else:
                ids = {i for i, (_, d) in self._data.items() if sub and d.get("user", {}).get("sub") == sub}
            for session_id in ids:
                self._drop(session_id)
            return len(ids)

    def __len__(self) -> int:
        return len(self._data)

    def _drop(self, session_id: str) -> None:
        _, data = self._data.pop(session_id, (0, {}))
        sid = data.get("kc_sid")
        if sid and sid in self._by_sid:
            self._by_sid[sid].discard(session_id)
            if not self._by_sid[sid]:
                del self._by_sid[sid]


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial: dict | None = None, session_id: str = "", new: bool = False):
        def on_update(_: Any) -> None:
            self.modified = True
        super().__init__(initial or {}, on_update)
        self.session_id = session_id
        self.new = new
        self.modified = False
        self.rotate = False

    def regenerate(self) -> None:
        """Give the session a fresh id (at login: no session fixation)."""
        self.rotate = True
        self.modified = True


class ServerSessionInterface(SessionInterface):
    def __init__(self, store: SessionStore):
        self.store = store

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        session_id = request.cookies.get(self.get_cookie_name(app), "")
        data = self.store.load(session_id) if session_id else None
        if data is None:
            return ServerSession(session_id=self.store.new_id(), new=True)
        return ServerSession(data, session_id=session_id)

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        if session.rotate:
            self.store.delete(session.session_id)
            session.session_id, session.new = self.store.new_id(), True
        if not session:
            if not session.new:
                self.store.delete(session.session_id)
                response.delete_cookie(name, domain=domain, path=path)
            return
        if session.modified or session.new:
            if not self.store.save(session.session_id, dict(session), create=session.new):
                response.delete_cookie(name, domain=domain, path=path)
                return
        response.set_cookie(name, session.session_id, httponly=True, samesite="Lax", path=path, domain=domain,
                            secure=self.get_cookie_secure(app))
