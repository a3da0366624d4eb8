"""A Keycloak node's warm-up before it takes traffic: its hot paths exercised directly on its own HTTP port.

A node's first minute is slow (docs/benchmarks.md: delegate pages at p95 360-470 ms against 180 ms warm): the JVM
compiles, the local caches (realms, users, authorization) are empty, templates are parsed on first use. Keycloak has
no warm-up of its own and its /health/ready says UP before any of this (keycloak/keycloak#32726: extensions cannot
add a readiness check); its HAProxy guides ramp a node's share with `slowstart` instead (#48761). So the proxy holds
a restarted node in maintenance (ProductionStack.restart_node), this module plays the requests the node will get —
discovery and keys, each client's login page, a service account's token, the Admin API reads and our extension's
listing of a few adherents (what a delegate's page asks) — then the proxy lets it in, `slowstart` ramping its share.

It signs nobody in: no password is tried, no user session is made, no event is written but the service account's
token. Requests carry the proxy's X-Forwarded-* headers (the node trusts them from loopback), so the node builds the
same URLs as behind the proxy.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import requests

SECONDS = 25     # at most this long
MIN_ROUNDS = 8   # at least this many rounds (a round: ~20 requests)
ADHERENTS = 5    # adherents whose listing is read each round


def warm_up(stack, i: int, seconds: float = SECONDS, min_rounds: int = MIN_ROUNDS) -> dict:
    """Play the hot paths on node ``i`` until ``seconds`` passed (and at least ``min_rounds`` rounds); returns what
    was done: rounds, seconds, the first and last rounds' durations (ms), errors."""
    base = stack.node_url(i)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": f"{stack.hostname}:{stack.proxy_port}",
               "X-Forwarded-Port": str(stack.proxy_port), "Accept": "text/html,application/json"}
    realm = stack.realm
    started = time.monotonic()
    durations: list[float] = []
    errors: list[str] = []
    with requests.Session() as s:
        s.headers.update(headers)
        plan = _plan(stack, s, base, realm)
        while len(durations) < min_rounds or time.monotonic() - started < seconds:
            if time.monotonic() - started > 3 * seconds:
                break
            t0 = time.monotonic()
            for method, url, kwargs in plan():
                try:
                    resp = s.request(method, url, timeout=30, allow_redirects=False, **kwargs)
                    if resp.status_code >= 500:
                        errors.append(f"{resp.status_code} {url.split('?')[0]}")
                except requests.RequestException as exc:
                    errors.append(f"{type(exc).__name__} {url.split('?')[0]}")
                s.cookies.clear()  # every login page as a new visitor: no session piles up
            durations.append((time.monotonic() - t0) * 1000)
    return {"rounds": len(durations), "seconds": round(time.monotonic() - started, 1),
            "first_round_ms": round(durations[0]) if durations else None,
            "last_round_ms": round(durations[-1]) if durations else None, "errors": sorted(set(errors))[:5]}


def _plan(stack, s: requests.Session, base: str, realm: str):
    """The requests of one round (a function: the token and the adherents are read once, lazily)."""
    oidc = f"{base}/realms/{realm}/protocol/openid-connect"
    if not requests.get(f"{base}/realms/{realm}", timeout=30, headers=s.headers).ok:
        master = f"{base}/realms/master"
        return lambda: [("GET", f"{master}/.well-known/openid-configuration", {}),
                        ("GET", f"{master}/protocol/openid-connect/certs", {})]
    logins = [f"{base}{page}" for page in login_pages(stack)]
    secret = stack.secrets.get("PROVISIONER_CLIENT_SECRET")
    state: dict = {}

    def token() -> str | None:
        resp = s.post(f"{oidc}/token", timeout=30, data={"grant_type": "client_credentials", "client_id": "provisioner",
                                                         "client_secret": secret})
        return resp.json().get("access_token") if resp.ok else None

    def adherents(auth: dict) -> list[str]:
        found = s.get(f"{base}/admin/realms/{realm}/group-by-path/adherents", timeout=30, **auth)
        if not found.ok:
            return []
        children = s.get(f"{base}/admin/realms/{realm}/groups/{found.json()['id']}/children", timeout=30,
                         params={"first": 0, "max": ADHERENTS, "briefRepresentation": "true"}, **auth)
        return [g["name"] for g in children.json()] if children.ok else []

    def round_():
        out = [("GET", f"{base}/realms/{realm}/.well-known/openid-configuration", {}),
               ("GET", f"{oidc}/certs", {})]
        out += [("GET", url, {}) for url in logins]
        if secret:
            access = token()
            if access:
                auth = {"headers": {"Authorization": f"Bearer {access}", "Accept": "application/json"}}
                if "adherents" not in state:
                    state["adherents"] = adherents(auth)
                admin = f"{base}/admin/realms/{realm}"
                out += [("GET", f"{admin}/groups?first=0&max=20&briefRepresentation=true", auth),
                        ("GET", f"{admin}/users?first=0&max=20&briefRepresentation=true", auth),
                        ("GET", f"{admin}/clients?first=0&max=20", auth),
                        ("GET", f"{oidc}/userinfo", auth)]
                out += [("GET", f"{base}/realms/{realm}/cimr-adherent/users?adherent={n}", auth)
                        for n in state["adherents"]]
        return out

    return round_


def login_pages(stack) -> list[str]:
    """The path of the login page of the portal and of each teleservice, as realm/ declares them (a fixed PKCE
    challenge: nobody will redeem a code)."""
    from provisioner.realm.schema import load_realm_spec
    from provisioner.settings import Settings

    settings = Settings.from_env(stack.env())
    spec = load_realm_spec(settings.realm_dir, settings.realm, settings.realm_vars)
    return [f"/realms/{stack.realm}/protocol/openid-connect/auth?" + urlencode({
        "client_id": c.client_id, "redirect_uri": c.url + c.redirect_paths[0], "response_type": "code",
        "scope": "openid", "state": "warm-up", "ui_locales": "fr",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})
        for c in spec.clients if c.url and c.redirect_paths]
