"""Keycloak's published advisories, attacked on our realm (realm/advisories.yaml names these tests).

For each advisory the pinned Keycloak does not fix, the attack is made first where our control is absent — to show
that Keycloak is still open to it, so the test can fail — then on our realm, where it must fail. For those the pin
fixes, the attack shows the fix (or our configuration) holds.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from devstack.builders import make_user
from provisioner.context import Context
from provisioner.realm.desired import REFRESH_TOKEN_ONCE
from provisioner.tenancy import Actor
from tests.oidc_flow import Browser, decode_unverified, redirect_uri, visible_text

PASSWORD = "Adv2026ok"


@pytest.fixture(scope="module")
def teleservice_user(admin_gw, service_gw, services, adherent) -> str:
    """A Compte Adhérent user with a permanent password (its login needs no second factor)."""
    user = make_user(service_gw, services, Actor.agent("agent.advisories"), adherent, "compte-adherent")
    admin_gw.set_password(user.id, PASSWORD, temporary=False)
    return user.login


# --- KC-50999: a refresh token replayed within the second of its rotation -----------------------------------

def _policy_enabled(gw, enabled: bool) -> None:
    gw.set_client_policies([{**p, "enabled": enabled} if p["name"] == REFRESH_TOKEN_ONCE else p
                            for p in gw.client_policies()])


def _same_second_replay(settings, spec, username: str) -> tuple[int, int]:
    """Log in to Compte Adhérent and refresh (token 1); then, within the second token 1 was issued, refresh with
    token 1 (token 2) and with token 2 (token 3) — and replay token 1, older than the last one used. Returns the
    replay's status, then token 3's. Keycloak judges an older token stale by whole seconds: the login is tried
    again until the three refreshes fall within one second."""
    client, secret = "compte-adherent", spec.client("compte-adherent").secret
    for _ in range(8):
        browser = Browser(settings.keycloak_url, settings.realm)
        login = browser.login(client, redirect_uri(spec, client), username, PASSWORD)
        assert login.code, visible_text(login.page)[:300]
        tokens = browser.exchange(client, secret, redirect_uri(spec, client), login.code, login.verifier)
        time.sleep(1.02 - time.time() % 1)  # just after a second starts
        chain = [tokens["refresh_token"]]
        for _ in range(3):
            answer = browser.refresh(client, secret, chain[-1])
            assert answer.status_code == 200, answer.text
            chain.append(answer.json()["refresh_token"])
        if decode_unverified(chain[1])["iat"] != decode_unverified(chain[3])["iat"]:
            continue  # the machine was too slow for one second: try again
        replay = browser.refresh(client, secret, chain[1])
        return replay.status_code, browser.refresh(client, secret, chain[3]).status_code
    pytest.fail("three refreshes never fell within one second")


def test_a_refresh_token_replayed_within_its_rotations_second_is_refused(settings, spec, admin_gw, teleservice_user):
    _policy_enabled(admin_gw, False)
    try:  # Keycloak alone (26.7): the replay is accepted
        assert _same_second_replay(settings, spec, teleservice_user)[0] == 200
    finally:
        _policy_enabled(admin_gw, True)
    # Our client policy: refused, and the client session ends (the newer token is refused too), as Keycloak does
    # for an older replay.
    assert _same_second_replay(settings, spec, teleservice_user) == (400, 400)


# --- fixtures: two companies with their delegates' own tokens, staff, the auditor's view ---------------------

@pytest.fixture(scope="module")
def companies(settings, admin_gw, service_gw, services, make_adherent, password_grant_client):
    from tests.test_keycloak_confinement import build_company

    return (build_company(settings, admin_gw, service_gw, services, make_adherent),
            build_company(settings, admin_gw, service_gw, services, make_adherent))


@pytest.fixture
def as_a(settings, companies):
    from tests.test_keycloak_confinement import Api

    return Api(settings, companies[0].token)


@pytest.fixture(scope="module")
def auditor_facts(settings, spec, realm):
    """A function reading, as the audit does, what the advisory controls judge on the live realm."""
    from dataclasses import replace as with_

    from provisioner.audit.collect import collect
    from provisioner.gateway import Gateway

    auditor = Gateway.as_auditor(with_(settings, auditor_client_secret="dev-auditor-secret"))
    return lambda: collect(auditor, None, spec, with_drift=False)


def open_advisories(data) -> dict[str, str]:
    """The advisories the audit reports as open: id -> detail."""
    from provisioner.audit.report import build_report

    return {f.subject: f.detail for f in build_report(data).findings if f.kind == "keycloak-advisory"}


# --- CVE-2026-18963: Keycloak's own reset-credentials flow ---------------------------------------------------

def _reset_credentials_page(settings) -> str:
    import requests

    url = f"{settings.keycloak_url}/realms/{settings.realm}/login-actions/reset-credentials"
    return requests.get(url, params={"client_id": "account-console"}, timeout=30).text


def test_keycloaks_own_reset_credentials_flow_answers_no_one(settings, admin_gw, realm):
    realm = admin_gw.get_realm()
    admin_gw.update_realm({"resetPasswordAllowed": True})
    try:  # with Keycloak's « Forgot password » on, the flow the advisory abuses is there for anyone
        assert 'id="kc-reset-password-form"' in _reset_credentials_page(settings)
    finally:
        admin_gw.update_realm({"resetPasswordAllowed": realm["resetPasswordAllowed"]})
    page = _reset_credentials_page(settings)
    assert 'id="kc-reset-password-form"' not in page and 'id="kc-passwd-update-form"' not in page, \
        visible_text(page)[:300]


# --- role endpoints (CVE-2026-14613, CVE-2026-97311, CVE-2026-17059, CVE-2026-16106) -------------------------

ROLE_READS = ["/roles", "/roles/delegate", "/roles/delegate/users", "/roles/delegate/groups", "/roles/agent/groups",
              "/roles/auditor/users", "/clients/{easypaiement}/roles/validateur/users",
              "/clients/{easypaiement}/roles/validateur/groups", "/roles-by-id/{delegate}"]


@pytest.mark.parametrize("path", ROLE_READS)
def test_a_delegate_reads_no_role_nor_who_holds_it(admin_gw, as_a, path):
    ids = {"easypaiement": admin_gw.client_uuid("easypaiement"), "delegate": admin_gw.realm_role("delegate")["id"]}
    answer = as_a("GET", path.format(**ids))
    assert answer.status_code == 403, (answer.status_code, answer.text[:300])


def test_a_delegate_cannot_strip_the_delegate_roles_composites(admin_gw, as_a):
    role = admin_gw.realm_role("delegate")
    before = admin_gw.get(f"/roles-by-id/{role['id']}/composites")
    rm = admin_gw.client_uuid("realm-management")
    query_users = admin_gw.client_role(rm, "query-users")
    for path in ("/roles/delegate/composites", f"/roles-by-id/{role['id']}/composites"):
        assert as_a("DELETE", path, [query_users]).status_code == 403
    realm_admin = admin_gw.client_role(rm, "realm-admin")
    assert as_a("DELETE", f"/clients/{rm}/roles/realm-admin/composites",
                [admin_gw.client_role(rm, "manage-users")]).status_code == 403
    assert admin_gw.get(f"/roles-by-id/{role['id']}/composites") == before
    assert admin_gw.get(f"/roles-by-id/{realm_admin['id']}/composites")


# --- group policies (CVE-2026-18203, CVE-2026-19608) ----------------------------------------------------------

def numbered_adherent(service_gw, services, numero: str) -> str:
    """An approved adherent with this numéro (the real approval: tree, delegation, delegate enabled)."""
    from provisioner.subscriptions import approve_subscription, receive_paper, submit_subscription
    from devstack.builders import subscription_form

    agent = Actor.agent("agent.advisories")
    sub = submit_subscription(service_gw, services, subscription_form(numero))
    receive_paper(services, agent, sub.id)
    approve_subscription(Context(service_gw, services, agent), sub.id)
    return numero


def test_every_group_policy_names_exact_groups_by_membership(settings, admin_gw, service_gw, services,
                                                             password_grant_client):
    """Numéros of 4 to 10 digits: /delegates/<n> is a string prefix of /delegates/<n>9. With extendChildren (or a
    token's group claim), the longer numéro's delegate would pass the shorter one's policy."""
    from tests.oidc_flow import password_token
    from devstack.builders import DELEGATE_PASSWORD
    from tests.test_keycloak_confinement import Api

    short = numbered_adherent(service_gw, services, str(uuid.uuid4().int % 10**6).rjust(6, "5"))
    longer = numbered_adherent(service_gw, services, short + "9")
    user = make_user(service_gw, services, Actor.agent("agent.advisories"), short, "compte-adherent")
    api = Api(settings, password_token(settings, longer, DELEGATE_PASSWORD))
    assert api("GET", f"/users/{user.id}").status_code == 403
    assert api("PUT", f"/users/{user.id}", {"firstName": "Pirate"}).status_code == 403
    policies = [p for p in admin_gw.authz_list("policy") if p.get("type") == "group"]
    assert {f"delegate-{short}", f"delegate-{longer}"} <= {p["name"] for p in policies}
    for policy in policies:
        groups = json.loads(policy["config"]["groups"])
        assert groups and not any(g.get("extendChildren") for g in groups), policy["name"]
        assert not policy["config"].get("groupsClaim"), policy["name"]


# --- client registration (CVE-2026-18206/18207, CVE-2026-96547) ----------------------------------------------

def test_no_one_registers_a_client_anonymously(settings, admin_gw, companies):
    import requests

    url = f"{settings.keycloak_url}/realms/{settings.realm}/clients-registrations/openid-connect"
    body = {"client_name": "intrus", "redirect_uris": ["https://intrus.example/cb"]}
    before = {c["clientId"] for c in admin_gw.clients()}
    assert requests.post(url, json=body, timeout=30).status_code in (401, 403)
    as_delegate = requests.post(url, json=body, timeout=30, headers={"Authorization": f"Bearer {companies[0].token}"})
    assert as_delegate.status_code in (401, 403), as_delegate.text[:300]
    assert {c["clientId"] for c in admin_gw.clients()} == before


# --- CVE-2026-94000 (and CVE-2026-18571, CVE-2026-9099): groups that make administrators -------------------

def _conferring_groups(admin_gw, auditor_facts) -> dict[str, str]:
    """Every group outside the adherents' trees that confers a realm role or a realm-management role (through a
    realm role's composites too): path -> id, read from the live realm."""
    facts = auditor_facts().security
    paths = set(facts.group_admin_roles)
    found = {}
    for name in ("delegates", "agents", "auditors"):
        group = admin_gw.group_by_path("/" + name)
        if admin_gw.group_realm_roles(group.id):
            found[group.path] = group.id
        for child in admin_gw.children(group.id):
            found[child.path] = child.id
    for path in paths - set(found):
        found[path] = admin_gw.group_by_path(path).id
    return found


def test_a_delegate_cannot_join_or_create_into_a_group_carrying_administration_roles(settings, admin_gw, companies,
                                                                                    as_a, auditor_facts):
    from tests.test_keycloak_confinement import new_user_body

    a, b = companies
    groups = _conferring_groups(admin_gw, auditor_facts)
    assert {"/delegates", "/agents", "/auditors", f"/delegates/{a.numero}", f"/delegates/{b.numero}"} <= set(groups)
    mine = a.users["utilisateur"]
    before = {uid: sorted(g.path for g in admin_gw.user_groups(uid)) for uid in (a.delegate_id, mine)}
    users = admin_gw.count_users()
    for path, gid in sorted(groups.items()):
        assert as_a("PUT", f"/users/{a.delegate_id}/groups/{gid}").status_code == 403, path  # itself
        assert as_a("PUT", f"/users/{mine}/groups/{gid}").status_code == 403, path         # one of its users
        body = {**new_user_body(a.numero, "compte-adherent/utilisateur"), "groups": [path]}
        assert as_a("POST", "/users", body).status_code == 403, path                       # a new user in it
        # CVE-2026-9099: move the group under the delegate's own tree, or its own tree under it.
        assert as_a("POST", f"/groups/{a.groups['']}/children", {"id": gid}).status_code == 403, path
        assert as_a("POST", f"/groups/{gid}/children", {"id": a.groups['compte-adherent']}).status_code == 403, path
    assert {uid: sorted(g.path for g in admin_gw.user_groups(uid)) for uid in before} == before
    assert admin_gw.count_users() == users


def test_keycloak_still_lets_a_manage_users_holder_join_an_administrators_group(admin_gw, service_gw,
                                                                                 auditor_facts):
    """CVE-2026-94000 as Keycloak 26.7 does it today: the provisioner account (manage-users) may not map
    manage-realm to a user, but may put the user in a group that maps it. Our realm has no such group; the audit
    reports one the moment it exists."""
    rm = admin_gw.client_uuid("realm-management")
    manage_realm = admin_gw.client_role(rm, "manage-realm")
    name = f"planted-admins-{uuid.uuid4().hex[:6]}"
    gid = admin_gw.create_group(name)
    user_id = service_gw.create_user({"username": f"x{uuid.uuid4().hex[:8]}", "enabled": True})
    try:
        admin_gw.post(f"/groups/{gid}/role-mappings/clients/{rm}", [manage_realm])
        from provisioner.errors import Forbidden

        with pytest.raises(Forbidden):  # the direct path is closed...
            service_gw.map_client_roles_to_user(user_id, rm, [manage_realm])
        service_gw.put(f"/users/{user_id}/groups/{gid}", None)  # ...the group path is not (Keycloak #53060)
        held = admin_gw.get(f"/users/{user_id}/role-mappings/clients/{rm}/composite")
        assert "manage-realm" in {r["name"] for r in held}
        assert f"/{name} confers manage-realm" in open_advisories(auditor_facts())["CVE-2026-94000"]
    finally:
        admin_gw.delete_user(user_id)
        admin_gw.delete_group(gid)
    assert "CVE-2026-94000" not in open_advisories(auditor_facts())


# --- CVE-2026-94001: deleting a credential where resetting the password is denied ---------------------------

def _password_credential(admin_gw, user_id: str) -> str:
    return next(c["id"] for c in admin_gw.get(f"/users/{user_id}/credentials") if c["type"] == "password")


def test_a_delegate_deletes_no_credential_where_it_may_not_reset_the_password(admin_gw, service_gw, services,
                                                                             companies, as_a, staff):
    a, b = companies
    targets = {"another adherent's user": b.users["utilisateur"], "another delegate": b.delegate_id,
               "itself": a.delegate_id, "an agent": admin_gw.user_by_username(staff["agent"]).id,
               "an auditor": admin_gw.user_by_username(staff["auditor"]).id}
    for who, user_id in targets.items():
        credential = _password_credential(admin_gw, user_id)
        reset = as_a("PUT", f"/users/{user_id}/reset-password", {"type": "password", "value": "Pirate2026",
                                                                 "temporary": False})
        assert reset.status_code == 403, who
        assert as_a("DELETE", f"/users/{user_id}/credentials/{credential}").status_code == 403, who
        assert _password_credential(admin_gw, user_id) == credential, who
    # Where the delegate may reset the password (its own users), it may delete the credential too: by design.
    own = make_user(service_gw, services, Actor.agent("agent.advisories"), a.numero, "compte-adherent")
    assert as_a("DELETE", f"/users/{own.id}/credentials/{_password_credential(admin_gw, own.id)}").status_code == 204


def test_keycloak_still_deletes_a_credential_whose_reset_is_denied(settings, admin_gw, password_grant_client,
                                                                   auditor_facts):
    """CVE-2026-94001 as Keycloak 26.7 does it today, on a planted permission pair (manage granted, reset-password
    denied) that our realm never has; the audit reports the pair as soon as it exists."""
    from tests.oidc_flow import password_token
    from tests.test_keycloak_confinement import Api

    def person(password: str) -> tuple[str, str]:
        name = f"x{uuid.uuid4().hex[:8]}"
        return name, admin_gw.create_user({
            "username": name, "enabled": True, "firstName": "Planted", "lastName": "Person",
            "email": f"{name}@example.ma", "credentials": [{"type": "password", "value": password, "temporary": False}]})

    # Outside every adherent: a member of an adherent's groups is covered by its delegate's permission too, and
    # every permission covering a user must grant.
    _, target_id = person("Target2026")
    admin_name, admin_id = person("Plant2026")
    planted = []
    try:
        allow = admin_gw.post_json(admin_gw.authz_path("/policy/user"),
                                   {"name": f"planted-allow-{admin_name}", "users": [admin_id], "logic": "POSITIVE"})
        deny = admin_gw.post_json(admin_gw.authz_path("/policy/user"),
                                  {"name": f"planted-deny-{admin_name}", "users": [admin_id], "logic": "NEGATIVE"})
        planted += [allow["id"], deny["id"]]
        for name, scopes, policy in ((f"planted-manage-{admin_name}", ["view", "manage"], allow["id"]),
                                     (f"planted-no-reset-{admin_name}", ["reset-password"], deny["id"])):
            planted.append(admin_gw.post_json(admin_gw.authz_path("/permission/scope"), {
                "name": name, "resourceType": "Users", "resources": [target_id], "scopes": scopes,
                "policies": [policy]})["id"])
        api = Api(settings, password_token(settings, admin_name, "Plant2026"))
        assert api("PUT", f"/users/{target_id}/reset-password", {"type": "password", "value": "Pirate2026",
                                                                 "temporary": False}).status_code == 403
        assert api("DELETE", f"/users/{target_id}/credentials/"
                             f"{_password_credential(admin_gw, target_id)}").status_code == 204  # Keycloak #53057
        assert "denies reset-password" in open_advisories(auditor_facts())["CVE-2026-94001"]
    finally:
        for object_id in reversed(planted):
            admin_gw.delete_authz(object_id)
        admin_gw.delete_user(admin_id)
        admin_gw.delete_user(target_id)
    assert "CVE-2026-94001" not in open_advisories(auditor_facts())


# --- CVE-2026-94218: a session restart before the first TOTP setup ------------------------------------------

def _restart_then_log_in_again(settings, browser: Browser, client_id: str, redirect: str, username: str,
                               password: str):
    """Log in with the password only, then — on whatever page Keycloak shows next (its TOTP setup) — restart the
    session (/login-actions/restart) and log in with the password again. Returns (first page, last result)."""
    import html
    import re

    first = browser.login(client_id, redirect, username, password, second_factor=False)
    assert first.code is None, f"{client_id}: a code with the password alone"
    tab = re.search(r"tab_id=([\w-]+)", html.unescape(first.page))
    assert tab, visible_text(first.page)[:300]
    restart = f"{settings.keycloak_url}/realms/{settings.realm}/login-actions/restart"
    resp = browser.session.get(restart, params={"client_id": client_id, "tab_id": tab.group(1)}, allow_redirects=True)
    for cookie in browser.session.cookies:
        cookie.secure = False
    form = re.search(r'id="kc-form-login"[^>]*action="([^"]+)"', resp.text) or \
        re.search(r'action="([^"]+)"[^>]*id="kc-form-login"', resp.text)
    assert form, f"{client_id}: no login form after the restart: {visible_text(resp.text)[:300]}"
    again = browser.session.post(html.unescape(form.group(1)), data={"username": username, "password": password,
                                                                    "credentialId": ""}, allow_redirects=False)
    while again.status_code in (302, 303) and "/login-actions/" in again.headers.get("Location", ""):
        again = browser.session.get(again.headers["Location"], allow_redirects=False)
    return first, again


RESTART_CLIENTS = ["portal", "account-console", "teledeclaration", "compte-adherent", "easypaiement", "eliquidation"]


@pytest.mark.parametrize("client_id", RESTART_CLIENTS)
def test_a_session_restart_before_the_first_totp_setup_still_demands_it(settings, spec, admin_gw, service_gw,
                                                                        services, make_adherent, client_id):
    from devstack.builders import DELEGATE_PASSWORD
    from devstack.totp import SETUP_FORM

    if client_id == "easypaiement":  # a new validator: its second factor is E@syPaiement's to ask
        user = make_user(service_gw, services, Actor.agent("agent.advisories"), make_adherent(), "easypaiement",
                         ("validateur",))
        admin_gw.set_password(user.id, PASSWORD, temporary=False)
        username, password = user.login, PASSWORD
    else:  # a new delegate, who has not set up its TOTP yet
        username, password = make_adherent(), DELEGATE_PASSWORD
    redirect = (f"{settings.keycloak_url}/realms/{settings.realm}/account/" if client_id == "account-console"
                else redirect_uri(spec, client_id))
    first, again = _restart_then_log_in_again(settings, Browser(settings.keycloak_url, settings.realm), client_id,
                                              redirect, username, password)
    assert not again.headers.get("Location", "").startswith(redirect), f"{client_id}: logged in without a TOTP"
    if client_id in ("portal", "account-console", "easypaiement"):  # asked to set up its TOTP, asked again
        assert SETUP_FORM in first.page and SETUP_FORM in again.text, visible_text(again.text)[:300]
    else:  # a teleservice the delegate may not enter: refused, before and after
        assert again.status_code == 403 and SETUP_FORM not in first.page + again.text


def test_keycloak_still_drops_an_enforced_totp_setup_on_a_restart(settings, admin_gw, make_adherent, auditor_facts):
    """CVE-2026-94218 as Keycloak 26.7 does it today, on what our realm never does: a client logging in through
    Keycloak's plain browser flow, with a client policy (auth-flow-enforcer) picking our flow that demands the
    TOTP. The restart forgets the policy's choice. The audit reports such a policy as soon as it exists."""
    from devstack.builders import DELEGATE_PASSWORD
    from devstack.totp import SETUP_FORM
    from provisioner.realm.desired import DEFAULT_FLOW

    name, redirect = f"planted-enforced-{uuid.uuid4().hex[:6]}", "http://127.0.0.1:9/callback"
    delegate = make_adherent()
    browser_flow = next(f["id"] for f in admin_gw.flows() if f["alias"] == "browser")
    admin_gw.post("/clients", {"clientId": name, "publicClient": True, "standardFlowEnabled": True,
                               "redirectUris": [redirect], "authenticationFlowBindingOverrides": {"browser": browser_flow},
                               "attributes": {"pkce.code.challenge.method": "S256", "cimr.planted": name}})
    profiles, policies = admin_gw.client_profiles(), admin_gw.client_policies()
    try:
        admin_gw.set_client_profiles([*profiles, {"name": name, "executors": [
            {"executor": "auth-flow-enforcer", "configuration": {"auth-flow-alias": DEFAULT_FLOW}}]}])
        admin_gw.set_client_policies([*policies, {"name": name, "enabled": True, "profiles": [name], "conditions": [
            {"condition": "client-attributes", "configuration": {
                "attributes": json.dumps([{"key": "cimr.planted", "value": name}])}}]}])
        first, again = _restart_then_log_in_again(settings, Browser(settings.keycloak_url, settings.realm), name,
                                                  redirect, delegate, DELEGATE_PASSWORD)
        assert SETUP_FORM in first.page  # the enforced flow asks the delegate to set up its TOTP...
        assert again.headers.get("Location", "").startswith(redirect + "?")  # ...not after a restart (#53070)
        assert "code=" in again.headers["Location"]
        assert "auth-flow-enforcer" in open_advisories(auditor_facts())["CVE-2026-94218"]
    finally:
        admin_gw.set_client_policies(policies)
        admin_gw.set_client_profiles(profiles)
        admin_gw.delete(f"/clients/{admin_gw.client_uuid(name)}")
    assert "CVE-2026-94218" not in open_advisories(auditor_facts())


# --- CVE-2026-15945, CVE-2026-16108: what a delegate's group searches show ------------------------------------

def _names(groups: list[dict]) -> set[str]:
    return {g["name"] for g in groups} | {n for g in groups for n in _names(g.get("subGroups") or [])}


def test_a_delegates_group_search_shows_its_own_adherent_only(companies, as_a):
    a, b = companies
    for query in ({"search": b.numero, "briefRepresentation": "false"}, {"search": b.numero},
                  {"q": f"status:active", "briefRepresentation": "false"}, {"search": "easypaiement"}, {}):
        answer = as_a("GET", "/groups", **query)
        assert answer.status_code == 200, query
        assert b.numero not in _names(answer.json()), query
    assert a.numero in _names(as_a("GET", "/groups", search=a.numero).json())
    assert as_a("GET", "/default-groups").status_code == 403


# --- what no account of the realm may hold (CVE-2026-17526, CVE-2026-9797, CVE-2026-12388...) ----------------

def test_no_account_of_the_realm_administers_it(admin_gw, auditor_facts):
    from provisioner.audit.advisories import CONTROLS

    facts = auditor_facts().security
    for control in ("no-realm-administrators", "no-identity-providers", "organizations-off",
                    "client-registration-closed", "no-role-delegation", "no-client-registration-conditions"):
        assert CONTROLS[control](facts) == [], control
    assert facts.account_admin_roles["service-account-provisioner"] >= {"manage-users"}  # the control sees roles
    rm = admin_gw.client_uuid("realm-management")
    user_id = admin_gw.create_user({"username": f"x{uuid.uuid4().hex[:8]}", "enabled": True})
    try:  # one administration role given by hand, and the audit names who holds it
        admin_gw.map_client_roles_to_user(user_id, rm, [admin_gw.client_role(rm, "impersonation")])
        problems = CONTROLS["no-realm-administrators"](auditor_facts().security)
        assert [p.en for p in problems] == [f"{admin_gw.user(user_id).username} holds impersonation"]
    finally:
        admin_gw.delete_user(user_id)


# --- the register against the running Keycloak ---------------------------------------------------------------

def test_the_pinned_keycloak_is_the_one_running_and_fixes_what_the_register_says(settings, admin_gw, auditor_facts):
    from devstack.keycloak_server import KEYCLOAK_VERSION
    from provisioner.audit.advisories import load_register

    register = load_register(settings.realm_dir)
    running = admin_gw.get_many(["/serverinfo"], base="admin")[0]["systemInfo"]["version"]
    assert running == KEYCLOAK_VERSION == register.keycloak
    assert auditor_facts().security.keycloak_version == running  # what the audit reads (our extension)
    for advisory in register.advisories:
        if advisory.exposure == "fixed":
            assert not advisory.affects(running), advisory.id
        else:  # open in the pinned version: closed here by controls, and attacked by tests
            assert advisory.affects(running) and advisory.controls and advisory.tests, advisory.id


# --- the security audit reports what our realm leaves open ---------------------------------------------------

def test_the_audit_says_each_advisory_of_the_pinned_keycloak_is_closed_here(settings, auditor_facts):
    from provisioner.audit.advisories import load_register
    from provisioner.audit.report import build_report

    data = auditor_facts()
    findings = build_report(data).findings
    affecting = {a.id for a in load_register(settings.realm_dir).advisories
                 if a.affects(data.security.keycloak_version)}
    assert not [f for f in findings if f.kind == "keycloak-advisory"]
    assert {f.subject for f in findings if f.kind == "keycloak-advisory-mitigated"} == affecting
    assert {f.severity for f in findings if f.kind == "keycloak-advisory-mitigated"} == {"info"}


def test_the_audit_reports_an_advisory_whose_control_fails_and_exits_3(settings, admin_gw, auditor_facts, test_env,
                                                                       monkeypatch):
    from click.testing import CliRunner

    from provisioner.cli import cli

    _policy_enabled(admin_gw, False)
    try:
        assert "no enabled client policy applies cimr-refresh-token-once" in open_advisories(auditor_facts())[
            "KC-50999"]
        for name, value in {**test_env, "AUDITOR_CLIENT_SECRET": "dev-auditor-secret"}.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(cli, ["--json", "audit", "--fail-on", "medium", "--no-drift"])
        assert result.exit_code == 3, result.output
        found = {(f["kind"], f["subject"], f["severity"]) for f in json.loads(result.output)["findings"]}
        assert ("keycloak-advisory", "KC-50999", "medium") in found
    finally:
        _policy_enabled(admin_gw, True)
    assert "KC-50999" not in open_advisories(auditor_facts())


def test_a_group_a_delegate_manages_that_confers_an_administration_role_is_critical(admin_gw, companies,
                                                                                    auditor_facts):
    from provisioner.audit.report import build_report

    a = companies[0]
    rm = admin_gw.client_uuid("realm-management")
    gid = admin_gw.create_group("planted", a.groups[""])
    try:
        admin_gw.post(f"/groups/{gid}/role-mappings/clients/{rm}", [admin_gw.client_role(rm, "view-users")])
        data = auditor_facts()
        found = {(f.kind, f.subject, f.severity) for f in build_report(data).findings}
        assert ("admin-group-delegated", f"/adherents/{a.numero}/planted", "critical") in found
        assert f"/adherents/{a.numero}/planted confers view-users, and delegates manage its members" in \
            open_advisories(data)["CVE-2026-94000"]
    finally:
        admin_gw.delete_group(gid)


# --- built-in clients, and a peer auditor's opinion ------------------------------------------------------------

def test_every_client_of_the_realm_has_exact_redirect_uris(admin_gw, realm):
    for client in admin_gw.clients():
        logout = (client.get("attributes") or {}).get("post.logout.redirect.uris") or ""
        uris = [*(client.get("redirectUris") or ()), *filter(None, logout.split("##"))]
        assert not [u for u in uris if "*" in u], client["clientId"]
    scopes = {sc["name"] for sc in admin_gw.client_scopes()}
    assert "offline_access" not in scopes  # no client of the realm can offer offline tokens
