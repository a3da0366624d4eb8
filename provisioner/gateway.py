"""The one module that talks to Keycloak's Admin API (python-keycloak behind it).

The realm is fixed when the gateway is built. HTTP failures are translated once, here, into
NotFound / Conflict / Forbidden / KeycloakRejected / KeycloakUnavailable. Reads of a missing object
return None. The gateway never prints, exits or flashes.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import quote

import httpx
import requests
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from provisioner.errors import Conflict, Forbidden, KeycloakRejected, KeycloakUnavailable, NotFound
from provisioner.settings import Settings

PAGE = 500  # page size for listings; never one request per user


@dataclass(frozen=True)
class User:
    """A Keycloak user in our words."""

    id: str
    username: str
    enabled: bool
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created_ms: int | None = None

    def attr(self, name: str) -> str | None:
        values = self.attributes.get(name) or ()
        return values[0] if values else None

    @classmethod
    def from_rep(cls, rep: dict) -> "User":
        return cls(id=rep["id"], username=rep["username"], enabled=bool(rep.get("enabled")),
                   email=rep.get("email"), first_name=rep.get("firstName"), last_name=rep.get("lastName"),
                   attributes={k: tuple(v) for k, v in (rep.get("attributes") or {}).items()},
                   created_ms=rep.get("createdTimestamp"))


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    path: str
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sub_group_count: int = 0

    def attr(self, name: str) -> str | None:
        values = self.attributes.get(name) or ()
        return values[0] if values else None

    @classmethod
    def from_rep(cls, rep: dict) -> "Group":
        return cls(id=rep["id"], name=rep["name"], path=rep.get("path", "/" + rep["name"]),
                   attributes={k: tuple(v) for k, v in (rep.get("attributes") or {}).items()},
                   sub_group_count=rep.get("subGroupCount", len(rep.get("subGroups") or ())))


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, (KeycloakConnectionError, requests.ConnectionError, requests.Timeout, httpx.TransportError)):
        return KeycloakUnavailable(f"Keycloak unreachable: {exc}")
    code = getattr(exc, "response_code", None)
    body = getattr(exc, "response_body", b"") or b""
    try:
        detail = json.loads(body)
        message = detail.get("errorMessage") or detail.get("error_description") or detail.get("error") or str(detail)
    except (ValueError, AttributeError):
        message = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    if code == 404:
        return NotFound(message)
    if code == 409:
        return Conflict(message)
    if code in (401, 403):
        return Forbidden(message or "forbidden")
    if code == 400:
        return KeycloakRejected(message)
    if code is not None and code >= 500:
        return KeycloakUnavailable(f"Keycloak error {code}: {message}")
    return KeycloakRejected(f"HTTP {code}: {message}")


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except (KeycloakError, requests.RequestException, httpx.TransportError) as exc:
        raise _translate(exc) from exc


class Gateway:
    """Admin API calls for one realm, authenticated by one source of access tokens."""

    confined = False  # True for a person's own token (with_token): see group_by_path

    def __init__(self, settings: Settings, connection: KeycloakOpenIDConnection, realm: str | None = None):
        self.settings = settings
        self.realm = realm or settings.realm
        self._conn = connection
        self._admin = KeycloakAdmin(connection=connection)
        self._admin.change_current_realm(self.realm)

    # --- construction: one per token source -----------------------------------------------------
    @classmethod
    def as_master_admin(cls, settings: Settings) -> "Gateway":
        """For plan/apply of the realm itself (may create the realm)."""
        user, password = settings.require_admin()
        with translated():
            conn = KeycloakOpenIDConnection(server_url=settings.keycloak_url, username=user, password=password,
                                            realm_name=settings.realm, user_realm_name=settings.admin_realm,
                                            client_id="admin-cli", timeout=30, pool_maxsize=16)
        return cls(settings, conn)

    @classmethod
    def as_service_account(cls, settings: Settings, client_id: str | None = None,
                           secret: str | None = None) -> "Gateway":
        """The realm's automation client (client-credentials grant)."""
        if client_id is None:
            client_id, secret = settings.require_service_account()
        with translated():
            conn = KeycloakOpenIDConnection(server_url=settings.keycloak_url, client_id=client_id,
                                            client_secret_key=secret, grant_type="client_credentials",
                                            realm_name=settings.realm, user_realm_name=settings.realm,
                                            timeout=30, pool_maxsize=16)
        return cls(settings, conn)

    @classmethod
    def with_token(cls, settings: Settings, access_token: str) -> "Gateway":
        """Act with a person's own access token (e.g. a delegate logged in to the portal)."""
        conn = KeycloakOpenIDConnection(server_url=settings.keycloak_url, realm_name=settings.realm,
                                        token={"access_token": access_token, "expires_in": 10**6},
                                        timeout=30)
        gw = cls(settings, conn)
        gw.confined = True  # may be confined by fine-grained admin permissions (issue 6)
        return gw

    # --- raw REST, relative to /admin/realms/{realm} --------------------------------------------
    def _path(self, path: str) -> str:
        return f"admin/realms/{self.realm}{path}" if path else f"admin/realms/{self.realm}"

    def get(self, path: str, **params: Any) -> Any:
        """GET; None when Keycloak answers 404."""
        with translated():
            resp = self._conn.raw_get(self._path(path), **params)
        return self._result(resp, none_on_404=True)

    def post(self, path: str, body: Any) -> str | None:
        """POST; returns the created object's id from the Location header, if any."""
        with translated():
            resp = self._conn.raw_post(self._path(path), data=json.dumps(body))
        self._result(resp)
        location = resp.headers.get("Location")
        return location.rstrip("/").rsplit("/", 1)[-1] if location else None

    def post_json(self, path: str, body: Any) -> Any:
        with translated():
            resp = self._conn.raw_post(self._path(path), data=json.dumps(body))
        return self._result(resp)

    def put(self, path: str, body: Any) -> Any:
        with translated():
            resp = self._conn.raw_put(self._path(path), data=json.dumps(body))
        return self._result(resp)

    def delete(self, path: str, body: Any = None) -> None:
        with translated():
            resp = self._conn.raw_delete(self._path(path), data=json.dumps(body) if body is not None else None)
        self._result(resp)

    @staticmethod
    def _result(resp: Any, none_on_404: bool = False) -> Any:
        if resp.status_code == 404 and none_on_404:
            return None
        if resp.status_code >= 400:
            raise _translate(KeycloakError(error_message=resp.text, response_code=resp.status_code,
                                           response_body=resp.content))
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def paged(self, path: str, **params: Any) -> list[dict]:
        """Every item of a listing, PAGE at a time."""
        out: list[dict] = []
        first = 0
        while True:
            page = self.get(path, **params, first=first, max=PAGE) or []
            out.extend(page)
            if len(page) < PAGE:
                return out
            first += PAGE

    # --- realm ----------------------------------------------------------------------------------
    def realm_exists(self) -> bool:
        return self.get("") is not None

    def get_realm(self) -> dict | None:
        return self.get("")

    def create_realm(self, rep: dict) -> None:
        with translated():
            resp = self._conn.raw_post("admin/realms", data=json.dumps({"realm": self.realm, **rep}))
        self._result(resp)

    def delete_realm(self) -> None:
        with translated():
            resp = self._conn.raw_delete(f"admin/realms/{self.realm}")
        self._result(resp, none_on_404=True)

    # --- clients, roles, mappers ----------------------------------------------------------------
    def clients(self) -> list[dict]:
        return self.get("/clients") or []

    def client_by_client_id(self, client_id: str) -> dict | None:
        found = self.get("/clients", clientId=client_id) or []
        return found[0] if found else None

    def client_uuid(self, client_id: str) -> str:
        client = self.client_by_client_id(client_id)
        if client is None:
            raise NotFound(f"client {client_id} not found in realm {self.realm}")
        return client["id"]

    def service_account_user(self, client_uuid: str) -> dict:
        return self.get(f"/clients/{client_uuid}/service-account-user")

    # --- users (domain) -------------------------------------------------------------------------
    def create_user(self, rep: dict) -> str:
        """Create a user (with groups, attributes and credentials in the same call); returns its id."""
        return self.post("/users", rep)

    def user(self, user_id: str) -> User | None:
        rep = self.get(f"/users/{quote(user_id)}")
        return User.from_rep(rep) if rep else None

    def user_by_username(self, username: str) -> User | None:
        if not username:  # Keycloak treats an empty filter as "no filter"
            return None
        reps = self.get("/users", username=username, exact="true") or []
        reps = [r for r in reps if r["username"] == username.lower()]
        return User.from_rep(reps[0]) if reps else None

    def users_by_attribute(self, name: str, value: str) -> list[User]:
        return [User.from_rep(r) for r in self.paged("/users", q=f"{name}:{value}", briefRepresentation="false")]

    def all_users(self) -> list[User]:
        return [User.from_rep(r) for r in self.paged("/users", briefRepresentation="false")]

    def update_user(self, user_id: str, rep: dict) -> None:
        self.put(f"/users/{user_id}", rep)

    def delete_user(self, user_id: str) -> None:
        self.delete(f"/users/{user_id}")

    def set_password(self, user_id: str, password: str, temporary: bool) -> None:
        self.put(f"/users/{user_id}/reset-password", {"type": "password", "value": password,
                                                      "temporary": temporary})

    def logout_user(self, user_id: str) -> None:
        self.post(f"/users/{user_id}/logout", {})

    def user_groups(self, user_id: str) -> list[Group]:
        return [Group.from_rep(g) for g in self.get(f"/users/{user_id}/groups", briefRepresentation="false") or []]

    def add_to_group(self, user_id: str, group_id: str) -> None:
        self.put(f"/users/{user_id}/groups/{group_id}", {})

    def remove_from_group(self, user_id: str, group_id: str) -> None:
        self.delete(f"/users/{user_id}/groups/{group_id}")

    def credentials(self, user_id: str) -> list[dict]:
        return self.get(f"/users/{user_id}/credentials") or []

    def delete_credential(self, user_id: str, credential_id: str) -> None:
        self.delete(f"/users/{user_id}/credentials/{credential_id}")

    def brute_force_status(self, user_id: str) -> dict:
        return self.get(f"/attack-detection/brute-force/users/{user_id}") or {}

    def clear_brute_force(self, user_id: str) -> None:
        self.delete(f"/attack-detection/brute-force/users/{user_id}")

    # --- groups (domain) ------------------------------------------------------------------------
    def group_by_path(self, path: str) -> Group | None:
        rep = self.get(f"/group-by-path/{quote(path.strip('/'), safe='/')}")
        if rep is None and self.confined:
            return self._group_by_search(path)  # issue 6: Keycloak's cold-cache 404 for confined admins
        return Group.from_rep(rep) if rep else None

    def create_group(self, name: str, parent_id: str | None = None, attributes: dict | None = None) -> str:
        body = {"name": name, "attributes": attributes or {}}
        return self.post(f"/groups/{parent_id}/children" if parent_id else "/groups", body)

    def update_group(self, group_id: str, rep: dict) -> None:
        self.put(f"/groups/{group_id}", rep)

    def delete_group(self, group_id: str) -> None:
        self.delete(f"/groups/{group_id}")

    def children(self, group_id: str) -> list[Group]:
        return [Group.from_rep(g) for g in self.paged(f"/groups/{group_id}/children", briefRepresentation="false")]

    def group_members(self, group_id: str) -> list[User]:
        return [User.from_rep(r) for r in self.paged(f"/groups/{group_id}/members", briefRepresentation="false")]

    def map_client_roles_to_group(self, group_id: str, client_uuid: str, roles: list[dict]) -> None:
        self.post(f"/groups/{group_id}/role-mappings/clients/{client_uuid}", roles)

    def map_realm_roles_to_group(self, group_id: str, roles: list[dict]) -> None:
        self.post(f"/groups/{group_id}/role-mappings/realm", roles)

    def map_realm_roles_to_user(self, user_id: str, roles: list[dict]) -> None:
        self.post(f"/users/{user_id}/role-mappings/realm", roles)

    # --- events ---------------------------------------------------------------------------------
    def login_events(self, **params: Any) -> list[dict]:
        return self.paged("/events", **params)

    def admin_events(self, **params: Any) -> list[dict]:
        return self.paged("/admin-events", **params)

    # --- async bulk -----------------------------------------------------------------------------
    async def create_users_concurrently(self, reps: list[dict], concurrency: int = 8,
                                        on_done: Callable[[int, str | Exception], None] | None = None
                                        ) -> list[str | Exception]:
        """Create many users with bounded concurrency; each result is the new id or the translated error."""
        sem = asyncio.Semaphore(concurrency)
        with translated():
            self._conn._refresh_if_required()
        headers = dict(self._conn.headers)
        url = f"{self.settings.keycloak_url}/{self._path('/users')}"

        async def one(client: httpx.AsyncClient, i: int, rep: dict) -> str | Exception:
            async with sem:
                try:
                    resp = await client.post(url, content=json.dumps(rep))
                    self._result(resp)
                    result: str | Exception = resp.headers.get("Location", "").rsplit("/", 1)[-1]
                except httpx.TransportError as exc:
                    result = _translate(exc)
                except (Conflict, KeycloakRejected, Forbidden, NotFound, KeycloakUnavailable) as exc:
                    result = exc
            if on_done:
                on_done(i, result)
            return result

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(one(client, i, r) for i, r in enumerate(reps)))

    # --- provisioner actions (issue 3): adherents, delegates, teleservice users ----------------------
    def effective_realm_roles(self, user_id: str) -> set[str]:
        """Names of the user's realm roles, through groups and composites."""
        return {r["name"] for r in self.get(f"/users/{user_id}/role-mappings/realm/composite") or []}

    def user_rep(self, user_id: str) -> dict | None:
        """The raw representation (to send back whole on update: a partial PUT may drop attributes)."""
        return self.get(f"/users/{quote(user_id)}")

    def ensure_group(self, parent: Group | None, name: str, attributes: dict | None = None) -> Group:
        """The group `name` under parent (top level when None), created if missing; re-runnable."""
        path = f"{parent.path if parent else ''}/{name}"
        group = self.group_by_path(path)
        if group is None:
            try:
                self.create_group(name, parent.id if parent else None, attributes)
            except Conflict:  # created meanwhile by a concurrent run
                pass
            group = self.group_by_path(path)
            if group is None:
                raise NotFound(f"group {path} could not be created")
        return group

    def group_rep(self, group_id: str) -> dict | None:
        return self.get(f"/groups/{group_id}")

    def set_group_attributes(self, group: Group, attributes: dict[str, list[str]]) -> None:
        """Merge attributes into the group's (others kept)."""
        rep = self.group_rep(group.id) or {}
        rep["attributes"] = {**(rep.get("attributes") or {}), **attributes}
        self.update_group(group.id, rep)

    def client_role(self, client_uuid: str, role: str) -> dict:
        rep = self.get(f"/clients/{client_uuid}/roles/{quote(role)}")
        if rep is None:
            raise NotFound(f"client role {role} not found")
        return rep

    def group_client_roles(self, group_id: str, client_uuid: str) -> set[str]:
        return {r["name"] for r in self.get(f"/groups/{group_id}/role-mappings/clients/{client_uuid}") or []}

    def user_sessions(self, user_id: str) -> list[dict]:
        return self.get(f"/users/{user_id}/sessions") or []

    def search_users(self, search: str) -> list[User]:
        return [User.from_rep(r) for r in self.paged("/users", search=search, briefRepresentation="false")]

    def count_users(self, **params: Any) -> int:
        return int(self.get("/users/count", **params) or 0)

    def partial_import(self, rep: dict) -> dict:
        """Keycloak's own partialImport (used by bench/ as the reference)."""
        return self.post_json("/partialImport", rep)

    # --- issue 6: fine-grained admin permissions v2 (the realm's `admin-permissions` client) -----------------
    # Policies and permissions live in that client's authorization server. Reading them needs view-realm,
    # writing them manage-realm (Keycloak 26.7): see docs/security.md.
    def _authz(self, path: str = "") -> str:
        base = getattr(self, "_authz_base", None)
        if base is None:
            realm = self.get_realm() or {}
            if "adminPermissionsEnabled" not in realm:  # the caller only gets the tiny realm representation
                raise Forbidden("reading fine-grained admin permissions needs view-realm, writing them manage-realm")
            client = realm.get("adminPermissionsClient") or {}
            if not client.get("id"):
                raise NotFound(f"fine-grained admin permissions are not enabled in realm {self.realm}")
            base = self._authz_base = f"/clients/{client['id']}/authz/resource-server"
        return base + path

    def authz_find(self, kind: str, name: str) -> dict | None:
        """The policy (kind="policy") or permission (kind="permission") with exactly this name, or None."""
        return self.get(self._authz(f"/{kind}/search"), name=name) or None

    def authz_list(self, kind: str, **params: Any) -> list[dict]:
        """Every policy (kind="policy", permissions excluded) or permission (brief representations)."""
        if kind == "policy":
            params.setdefault("permission", "false")
        return self.paged(self._authz(f"/{kind}"), **params)

    def create_group_policy(self, name: str, group_ids: list[str], description: str = "") -> str:
        """A POSITIVE group policy granting members of exactly these groups (not their subgroups); its id."""
        body = {"name": name, "description": description, "logic": "POSITIVE",
                "groups": [{"id": g, "extendChildren": False} for g in group_ids]}
        return self.post_json(self._authz("/policy/group"), body)["id"]

    def update_group_policy(self, policy_id: str, name: str, group_ids: list[str], description: str = "") -> None:
        body = {"id": policy_id, "name": name, "description": description, "type": "group", "logic": "POSITIVE",
                "decisionStrategy": "UNANIMOUS",
                "groups": [{"id": g, "extendChildren": False} for g in group_ids]}
        self.put(self._authz(f"/policy/group/{policy_id}"), body)

    def group_policy_groups(self, policy_id: str) -> list[str] | None:
        """The group ids of a group policy (None when the policy is gone)."""
        rep = self.get(self._authz(f"/policy/group/{policy_id}"))
        return None if rep is None else sorted(g["id"] for g in rep.get("groups") or [])

    def create_groups_permission(self, name: str, group_ids: list[str], scopes: list[str], policy_ids: list[str],
                                 description: str = "") -> str:
        """A scope permission over exactly these groups (resourceType Groups); its id."""
        body = {"name": name, "description": description, "resourceType": "Groups", "resources": group_ids,
                "scopes": scopes, "policies": policy_ids}
        return self.post_json(self._authz("/permission/scope"), body)["id"]

    def update_groups_permission(self, permission_id: str, name: str, group_ids: list[str], scopes: list[str],
                                 policy_ids: list[str], description: str = "") -> None:
        """Replace the permission whole (Keycloak answers 201 to this PUT)."""
        body = {"id": permission_id, "name": name, "description": description, "type": "scope",
                "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS", "resourceType": "Groups",
                "resources": group_ids, "scopes": scopes, "policies": policy_ids}
        self.put(self._authz(f"/permission/scope/{permission_id}"), body)

    def permission_details(self, permission_id: str) -> dict | None:
        """{"resources": sorted group (or user) ids, "scopes": sorted names, "policies": sorted ids}; None if gone."""
        resources = self.get(self._authz(f"/policy/{permission_id}/resources"))
        if resources is None:
            return None
        scopes = self.get(self._authz(f"/policy/{permission_id}/scopes")) or []
        policies = self.get(self._authz(f"/policy/{permission_id}/associatedPolicies")) or []
        return {"resources": sorted(r["name"] for r in resources), "scopes": sorted(s["name"] for s in scopes),
                "policies": sorted(p["id"] for p in policies)}

    def delete_authz(self, policy_or_permission_id: str) -> None:
        """Delete a policy or a permission; already gone is fine."""
        try:
            self.delete(self._authz(f"/policy/{policy_or_permission_id}"))
        except NotFound:
            pass

    def _group_by_search(self, path: str) -> Group | None:
        """The group at `path` found by an exact-name search. Keycloak 26.7 answers 404 to group-by-path for an
        admin confined by fine-grained permissions until the path's top-level group is in its cache (after a
        restart or an eviction); the search works cold (bench/bench_permissions.py, docs/security.md)."""
        name = path.rstrip("/").rsplit("/", 1)[-1]
        todo = list(self.get("/groups", search=name, exact="true", briefRepresentation="false") or [])
        while todo:
            rep = todo.pop()
            if rep.get("path") == path:
                return Group.from_rep(rep)
            todo.extend(rep.get("subGroups") or [])
        return None

    def subtree(self, group: Group) -> list[Group]:
        """The group and all its descendants, parents before children."""
        out, todo = [], [group]
        while todo:
            current = todo.pop(0)
            out.append(current)
            todo.extend(self.children(current.id))
        return out

    # --- issue 5: audit, read-only bulk reads (the realm's `auditor` service account) ----------------
    # The audit never makes one request per user (nor per group): users with their memberships, the group
    # tree and events come from our Keycloak extension in pages, role holders from one listing per role;
    # independent reads go over a few keep-alive connections at once.
    @classmethod
    def as_auditor(cls, settings: Settings) -> "Gateway":
        """The security team's read-only client (view-*/query-* roles, no manage-*, no export)."""
        client_id, secret = settings.require_auditor()
        return cls.as_service_account(settings, client_id, secret)

    def get_many(self, requests_: list[str | tuple[str, dict]], workers: int = 4,
                 base: str | None = None) -> list[Any]:
        """GET each (path, params) relative to the realm's Admin API (or ``base``, a path under Keycloak's root),
        ``workers`` at a time; results in order, None for 404.

        Plain keep-alive connections (one per worker): at thousands of small reads, the client's own cost per
        request matters on a small machine. Raises the translated error of the first failure (Forbidden for
        a read the caller may not do).
        """
        import http.client
        import threading
        from concurrent.futures import ThreadPoolExecutor
        from urllib.parse import urlencode, urlsplit

        lock = threading.Lock()

        def fresh_headers(expired: str | None = None) -> dict:
            with lock:  # one refresh for all workers when the access token expires mid-batch
                with translated():
                    if expired and self._conn.headers.get("Authorization") == expired:
                        self._conn.refresh_token() if self._conn.token.get("refresh_token") else self._conn.get_token()
                    self._conn._refresh_if_required()
                return {"Authorization": self._conn.headers["Authorization"], "Accept": "application/json"}

        headers = fresh_headers()
        url = urlsplit(self.settings.keycloak_url)
        connection_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        prefix = f"{url.path.rstrip('/')}/{base or self._path('')}"
        local, connections = threading.local(), []
        self.bulk_reads = getattr(self, "bulk_reads", 0) + len(requests_)

        def one(item: str | tuple[str, dict]) -> Any:
            path, params = (item, {}) if isinstance(item, str) else item
            nonlocal headers
            target = prefix + path + (f"?{urlencode(params)}" if params else "")
            for attempt in (0, 1, 2):
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = connection_cls(url.hostname, url.port, timeout=60)
                    connections.append(conn)
                sent = headers
                try:
                    conn.request("GET", target, headers=sent)
                    resp = conn.getresponse()
                    body = resp.read()
                except (http.client.HTTPException, OSError) as exc:  # a dropped keep-alive: reconnect once
                    conn.close()
                    local.conn = None
                    if attempt:
                        raise KeycloakUnavailable(f"Keycloak unreachable: {exc}") from exc
                    continue
                if resp.status == 401 and attempt < 2:  # the access token expired during a long batch
                    headers = fresh_headers(expired=sent["Authorization"])
                    continue
                break
            if resp.status == 404:
                return None
            if resp.status >= 400:
                raise _translate(KeycloakError(error_message=body.decode(errors="replace"),
                                               response_code=resp.status, response_body=body))
            return json.loads(body) if body else None

        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(one, requests_))
        finally:
            for conn in connections:
                conn.close()

    def get_pages(self, listings: list[tuple[str, dict]], page: int = 100, workers: int = 4) -> list[list]:
        """Every item of several paged listings, in rounds: one page of each still-open listing per round.

        ``page`` must not exceed what Keycloak serves per call (role -> groups/users listings stop at 100).
        """
        out: list[list] = [[] for _ in listings]
        still, first = list(range(len(listings))), 0
        while still:
            batch = self.get_many([(listings[i][0], {**listings[i][1], "first": first, "max": page}) for i in still],
                                  workers=workers)
            for i, items in zip(still, batch):
                out[i].extend(items or [])
            still = [i for i, items in zip(still, batch) if len(items or []) >= page]
            first += page
        return out

    # Our Keycloak extension (keycloak-extension/, /realms/<realm>/cimr-audit/...): the bulk reads the Admin
    # API lacks (group memberships of every user, the group tree, last logins, admin events without their
    # representations). Same rules as the Admin API: view-users, view-events.
    def _audit_pages(self, path: str, firsts: list[int], page: int, workers: int, **params: Any) -> list[list]:
        pages = self.get_many([(path, {**params, "first": f, "max": page}) for f in firsts], workers=workers,
                              base=f"realms/{self.realm}/cimr-audit")
        if pages and pages[0] is None:
            raise KeycloakRejected("Keycloak does not serve /realms/<realm>/cimr-audit: install the extension "
                                   "keycloak-extension/ in its providers/ directory (docs/audit.md)")
        return [batch or [] for batch in pages]

    def _audit_all(self, path: str, first_pages: int, then: int, page: int, workers: int,
                   **params: Any) -> list[dict]:
        """Every item of an extension listing: ``first_pages`` pages at once, then ``then`` more at a time
        until a short page."""
        items: list[dict] = []
        first, count = 0, first_pages
        while True:
            pages = self._audit_pages(path, [first + i * page for i in range(count)], page, workers, **params)
            for batch in pages:
                items.extend(batch)
            if any(len(batch) < page for batch in pages):
                return items
            first, count = first + count * page, then

    def audit_listing(self, kind: str, expected: int, workers: int = 4, page: int = 1000) -> list[dict]:
        """Every user ("users": attributes, ids of its groups) or group ("groups": parent, attributes) of the
        realm. ``expected`` (about how many there are) lets the pages be read at once; more are read until a
        short page. Raises KeycloakRejected when Keycloak lacks the extension.
        """
        items = self._audit_all(f"/{kind}", expected // page + 1, 1, page, workers)  # then: the realm grew
        return list({item["id"]: item for item in items}.values())  # a page may shift while others are read

    def audit_last_logins(self) -> dict[str, int]:
        """User id -> time (ms) of its last LOGIN event still stored."""
        return self._audit_pages("/last-logins", [0], 1, 1)[0] or {}

    def audit_admin_events(self, since_ms: int, workers: int = 4, page: int = 5000) -> list[dict]:
        """Admin events since ``since_ms``, newest first (time, operation, resource, authDetails)."""
        return self._audit_all("/admin-events", workers, workers, page, workers, since=since_ms)

    def audit_role_users(self, role_paths: list[str], workers: int = 4) -> dict[str, list[str]]:
        """User ids holding each role by a direct mapping (not through groups)."""
        pages = self.get_pages([(f"{p}/users", {"briefRepresentation": "true"}) for p in role_paths], workers=workers)
        return {p: [u["id"] for u in users] for p, users in zip(role_paths, pages)}

    @property
    def python_keycloak(self) -> KeycloakAdmin:
        """The underlying python-keycloak client, for bench/'s naive baseline only (never for actions)."""
        return self._admin
