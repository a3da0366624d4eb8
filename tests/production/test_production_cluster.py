"""Two Keycloak nodes, one cluster: both in the view, and what one node writes the other serves at once."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from devstack.logins import PinnedBrowser, pkce_pair
from provisioner.context import Context
from provisioner.gateway import Gateway
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.tenancy import Actor
from provisioner.teleservice_users import NewUser, UserDetails
from provisioner.users import create_user
from tests.oidc_flow import redirect_uri
from tests.production.conftest import node_settings, unique

ANSWERS = (SecretAnswer("Ville de naissance de votre père ?", "Fès"),
           SecretAnswer("Nom de votre premier animal de compagnie ?", "Mimi"))
VIEW = re.compile(r"ISPN000094: Received new cluster view for channel ISPN: \[[^\]]*\] \((\d+)\) \[([^\]]*)\]")


def test_both_nodes_are_in_one_cluster_view(stack):
    # Infinispan's own count (metrics on each node's management port), then the view it logged, by name.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [stack.cluster_size(i) for i in range(2)] != [2, 2]:
        time.sleep(2)
    assert [stack.cluster_size(i) for i in range(2)] == [2, 2]
    names = {stack.node_name(0), stack.node_name(1)}
    for i in range(2):
        views = VIEW.findall((stack.logs / f"keycloak-node{i + 1}.log").read_text(errors="replace"))
        size, members = views[-1]
        assert int(size) == 2 and {m.split("(")[0].strip() for m in members.split(",")} == names, views[-1]


def test_the_proxy_health_checks_every_node_on_its_management_port(stack):
    config = (stack.state / "haproxy.cfg").read_text()
    for n in stack.nodes:
        assert f"127.0.0.1:{n.http} port {n.management}" in config
    assert "option httpchk GET /health/ready" in config
    # And it serves Keycloak over TLS only, with a certificate our CA signed (verified, not ignored).
    assert requests.get(f"{stack.public_url}/realms/{stack.realm}", timeout=10, verify=str(stack.ca_file)).ok


def test_a_user_created_through_node_1_logs_in_through_node_2_at_once(stack, settings, services, spec,
                                                                      make_adherent):
    n = make_adherent()
    node1 = Gateway.as_service_account(node_settings(stack, settings, 0))
    login = unique("n1.")
    create_user(Context(node1, services, Actor.delegate(n), n), NewUser(
        login, UserDetails("Alami", "Rim", f"{login}@atlas.ma"), Access("compte-adherent"), "User2026",
        secret_answers=ANSWERS))

    browser = PinnedBrowser(stack.public_url, node=2)
    client = "compte-adherent"
    callback = redirect_uri(spec, client)
    verifier, challenge = pkce_pair()
    auth = f"{stack.public_url}/realms/{stack.realm}/protocol/openid-connect/auth?" + urlencode(
        {"client_id": client, "redirect_uri": callback, "response_type": "code", "scope": "openid",
         "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    location = browser.login(auth, login, "User2026", new_password="Neuf2026")
    code = parse_qs(urlparse(location).query).get("code", [None])[0]
    assert location.startswith(callback) and code, location
    assert browser.nodes_since(0) == {"kc2"}, browser.served_by  # every page came from node 2
    tokens = requests.post(f"{stack.public_url}/realms/{stack.realm}/protocol/openid-connect/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": callback, "client_id": client,
        "client_secret": settings.realm_vars["COMPTE_ADHERENT_CLIENT_SECRET"], "code_verifier": verifier},
        timeout=30)
    assert tokens.status_code == 200, tokens.text


def delegate_on_node_2(stack, settings, spec, numero: str) -> Gateway:
    """The delegate of ``numero`` logged in to the portal client through node 2, acting with its own token on node 2."""
    from devstack.builders import DELEGATE_PASSWORD

    browser = PinnedBrowser(stack.public_url, node=2)
    callback = redirect_uri(spec, "portal")
    verifier, challenge = pkce_pair()
    auth = f"{stack.public_url}/realms/{stack.realm}/protocol/openid-connect/auth?" + urlencode(
        {"client_id": "portal", "redirect_uri": callback, "response_type": "code", "scope": "openid",
         "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlparse(browser.login(auth, numero, DELEGATE_PASSWORD)).query)["code"][0]
    tokens = requests.post(f"{stack.node_url(1)}/realms/{stack.realm}/protocol/openid-connect/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": callback, "client_id": "portal",
        "client_secret": settings.portal_client_secret, "code_verifier": verifier}, timeout=30).json()
    return Gateway.with_token(node_settings(stack, settings, 1), tokens["access_token"])


def test_an_adherent_approved_through_node_1_is_delegated_on_node_2_at_once(stack, settings, services, spec):
    # The subscription approved through node 1 writes the delegate's fine-grained permissions there; node 2
    # must judge the delegate's very next request with them (Keycloak's cluster-wide cache invalidation).
    from provisioner import users
    from devstack.builders import approved_adherent

    node1 = Gateway.as_service_account(node_settings(stack, settings, 0))
    n = approved_adherent(node1, services, Actor.agent("agent.production-tests"))
    as_delegate = delegate_on_node_2(stack, settings, spec, n)
    state, by_service = users.overview(Context(as_delegate, services, Actor.delegate(n), n))
    assert state and set(by_service) >= {"compte-adherent"}


def test_a_restarted_node_serves_a_delegate_at_once(stack, settings, services, spec):
    # A node's cache is its own and starts empty. Cold, Keycloak 26.7 resolves a confined delegate's group paths
    # through a query filtered by what the delegate may view, which leaves out /adherents: POST /users with the
    # delegate's group paths answered 403 and our extension's listing 403, until something unconfined looked the
    # path up on that node (found when a node killed by another test served this package's next delegate).
    from provisioner import users
    from devstack.builders import approved_adherent

    stack.stop_node(1)
    stack.start_node(1, warm=False)  # cold: the warm-up would read /adherents first (devstack/warmup.py)
    node1 = Gateway.as_service_account(node_settings(stack, settings, 0))
    n = approved_adherent(node1, services, Actor.agent("agent.production-tests"))
    as_delegate = delegate_on_node_2(stack, settings, spec, n)
    login = unique("cold.")
    create_user(Context(as_delegate, services, Actor.delegate(n), n), NewUser(  # first: the listing would warm the path
        login, UserDetails("Alami", "Rim", f"{login}@atlas.ma"), Access("compte-adherent"), "User2026",
        secret_answers=ANSWERS))
    state, by_service = users.overview(Context(as_delegate, services, Actor.delegate(n), n))
    assert login in {u.login for u in by_service["compte-adherent"]}
