"""What realm/ asks of Keycloak: the desired state, every declared object in Keycloak's representation (pure).

``desired_state(spec)`` is keyed by (kind, key) like the live state ``realm.live.read_live`` reads; ``realm.plan``
compares the two. Only what we declare is in it (Keycloak's defaults are never drift).
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.realm.spec import ADHERENT_CLAIMS, BUILTIN_CLIENT_IDS, BuiltinClient, Client, RealmSpec, SecondFactor

FLOW_PREFIX = "cimr-browser-"
# The realm's own browser flow (clients without a flow of their own: the account console): ours, so that no login
# anywhere in the realm opens an SSO session for a powerful account without its second factor.
DEFAULT_FLOW = FLOW_PREFIX + "default"
# Level-1 authentications stay valid for the longest SSO session; level 2 (the second factor asked for with
# acr_values) is asked again at every such request: max age 0.
PASSWORD_MAX_AGE = 36000
SECOND_FACTORS = "otp"  # credential types that count as a second factor (conditional-credential)
BUILTIN_CLIENTS = frozenset({*BUILTIN_CLIENT_IDS, "admin-permissions"})
# Our own Keycloak extension (keycloak-extension/): claims from group membership, a refusal that is no failed login.
MEMBERSHIP_MAPPER = "cimr-membership-mapper"
# User-profile attributes whose claim our mapper derives from group membership instead of reading the attribute: a
# delegate could forge them if they came from attributes (it can rewrite user attributes through the Admin API,
# Keycloak #40259).
MEMBERSHIP_ATTRIBUTES = ("adherent", "categories")
# Every claim only our mapper may put in tokens: those and the adherent's own claims (ADHERENT_CLAIMS, from its group).
# The teleservices trust them to pick the company's data; the audit reports any other mapper emitting one.
MEMBERSHIP_CLAIMS = (*MEMBERSHIP_ATTRIBUTES, *ADHERENT_CLAIMS)
REFUSE_ACCESS = "cimr-refuse-access"
# Grants that skip the per-teleservice browser flows: off on every client we declare.
CLOSED_GRANTS = {"oauth2.device.authorization.grant.enabled": "false", "oidc.ciba.grant.enabled": "false",
                 "standard.token.exchange.enabled": "false"}
# Keycloak's client scope that hands out offline tokens, which outlive every session.
OFFLINE_ACCESS = "offline_access"
# Client scopes the realm must not have: nothing of ours uses offline tokens; Keycloak links the scope to its own
# clients, `realm-management` included, whose settings nobody may change (403, even to the master admin): without
# the scope, no client can offer it.
ABSENT_CLIENT_SCOPES = (OFFLINE_ACCESS,)
# Client policies of ours are named with this prefix (the others are Keycloak's or someone's: compared by the audit).
CLIENT_POLICY_PREFIX = "cimr-"
# Our client-policy executor (keycloak-extension/, RefreshTokenOnceExecutor): with rotation on, a client session
# accepts only the latest refresh token it issued, even within the second of its rotation (Keycloak #50999).
REFRESH_TOKEN_ONCE = "cimr-refresh-token-once"
# A message key of our login theme (theme/cimr/login/messages): the refusal names the teleservice and says what to
# do. The authenticator passes the client's name as {0}.
DENY_MESSAGE = "cimrAccessDenied"


# --- desired state ---------------------------------------------------------------------------------

def desired_state(spec: RealmSpec) -> dict[tuple[str, str], Any]:
    """Every object realm/ declares, keyed by (kind, key), in Keycloak's representation."""
    state: dict[tuple[str, str], Any] = {("realm", spec.name): _realm(spec)}
    state[("flow", DEFAULT_FLOW)] = default_browser_flow(spec.second_factor)
    state[("flow-binding", "browser")] = {"browserFlow": DEFAULT_FLOW}
    for role in spec.realm_roles:
        state[("realm-role", role.name)] = {"name": role.name, "description": role.description,
                                            "composites": composite_keys(role.composites)}
    for attr in spec.attributes:
        state[("user-profile-attribute", attr.name)] = _attribute(attr)
    for builtin in spec.builtin_clients:
        state[("builtin-client", builtin.client_id)] = _builtin_client(builtin, spec.name)
    for group in spec.groups:
        state[("group", "/" + group.name)] = {"name": group.name, "realmRoles": sorted(group.realm_roles)}
    for client in spec.clients:
        state[("client", client.client_id)] = _client(client)
        for role in client.roles:
            state[("client-role", f"{client.client_id}/{role.name}")] = {"name": role.name,
                                                                         "description": role.description}
        for claim in client.claims:
            state[("mapper", f"{client.client_id}/{claim}")] = _mapper(claim, spec)
        if client.url:
            state[("mapper", f"{client.client_id}/audience")] = _audience_mapper(client.client_id)
        if client.has_login_flow:
            state[("flow", FLOW_PREFIX + client.client_id)] = browser_flow(client, spec.second_factor)
        if client.service_account_roles:
            state[("service-account-roles", client.client_id)] = {
                owner: sorted(roles) for owner, roles in client.service_account_roles}
    for scope in ABSENT_CLIENT_SCOPES:
        state[("client-scope", scope)] = {"present": False}
    if spec.sessions.rotate_refresh_tokens:
        state[("client-profile", REFRESH_TOKEN_ONCE)] = {
            "name": REFRESH_TOKEN_ONCE, "executors": [{"executor": REFRESH_TOKEN_ONCE, "configuration": {}}],
            "description": "Only the latest refresh token of a client session (Keycloak #50999)"}
        state[("client-policy", REFRESH_TOKEN_ONCE)] = {
            "name": REFRESH_TOKEN_ONCE, "enabled": True, "profiles": [REFRESH_TOKEN_ONCE],
            "conditions": [{"condition": "any-client", "configuration": {}}],
            "description": "Every client: a refresh token is accepted once, even within its rotation's second"}
    return state


def composite_keys(composites: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    """A role's composites as a sorted list of "client/role" ("role" for realm roles): compared exactly, so a
    composite added by hand (e.g. manage-users on `delegate`) is drift."""
    return sorted(f"{owner}/{name}" for owner, names in composites for name in names)


def _realm(spec: RealmSpec) -> dict:
    bf, ev, se, sf = spec.brute_force, spec.events, spec.sessions, spec.second_factor
    return {
        "enabled": True,
        "displayName": spec.display_name,
        "internationalizationEnabled": True,
        "supportedLocales": sorted(spec.locales),
        "defaultLocale": spec.default_locale,
        "passwordPolicy": spec.password_policy.to_keycloak(),
        "bruteForceProtected": bf.enabled,
        "permanentLockout": bf.permanent_lockout,
        "failureFactor": bf.max_failures,
        "waitIncrementSeconds": bf.wait_increment_seconds,
        "maxFailureWaitSeconds": bf.max_wait_seconds,
        "maxDeltaTimeSeconds": bf.failure_reset_seconds,
        "ssoSessionIdleTimeout": se.idle_seconds,
        "ssoSessionMaxLifespan": se.max_seconds,
        "accessTokenLifespan": se.access_token_seconds,
        # Rotation: a refresh token is accepted once; a stolen one replayed after its owner used it fails.
        "revokeRefreshToken": se.rotate_refresh_tokens,
        "refreshTokenMaxReuse": 0,
        "eventsEnabled": ev.login,
        "eventsExpiration": ev.retention_days * 86400,
        "adminEventsEnabled": ev.admin,
        "adminEventsDetailsEnabled": ev.admin_details,
        # The acr values clients may ask for (acr_values) and the level each one names (step-up).
        "attributes": {"adminEventsExpiration": str(ev.retention_days * 86400),
                       "acr.loa.map": json.dumps(dict(sf.levels), separators=(",", ":")),
                       **({"cimrForgotPasswordUrl": spec.login_pages.forgot_password_url}
                          if spec.login_pages else {})},
        # TOTP, as every authenticator app does it; a code is accepted once (a watched or replayed code fails).
        "otpPolicyType": "totp",
        "otpPolicyAlgorithm": sf.otp_algorithm,
        "otpPolicyDigits": sf.otp_digits,
        "otpPolicyPeriod": sf.otp_period,
        "otpPolicyLookAheadWindow": sf.otp_look_around,
        "otpPolicyCodeReusable": False,
        # One person may hold several logins (one per teleservice) with the same e-mail address.
        "duplicateEmailsAllowed": True,
        "loginWithEmailAllowed": False,
        "registrationAllowed": False,
        "resetPasswordAllowed": False,  # forgotten passwords go through the delegate or secret questions
        "rememberMe": False,
        # Fine-grained admin permissions v2: Keycloak confines each delegate to its adherent's groups.
        "adminPermissionsEnabled": True,
        **_login_pages(spec.login_pages),
    }


def _login_pages(lp) -> dict:
    """The theme, the brand band and the forgotten-password link (read by the theme's login.ftl)."""
    if lp is None:
        return {}
    return {"loginTheme": lp.theme, "displayNameHtml": lp.display_name_html}


def _attribute(attr) -> dict:
    who = ["admin"] if attr.admin_only else ["admin", "user"]
    validations: dict[str, Any] = {}
    if attr.values:
        validations["options"] = {"options": list(attr.values)}
    if attr.pattern:
        validations["pattern"] = {"pattern": attr.pattern, "error-message": f"invalid {attr.name}"}
    if attr.max_length:
        validations["length"] = {"max": attr.max_length}
    return {"name": attr.name, "displayName": attr.display, "multivalued": attr.multivalued,
            "permissions": {"view": who, "edit": ["admin"] if attr.admin_only else who},
            "validations": validations}


def _client(client: Client) -> dict:
    rep: dict[str, Any] = {
        "clientId": client.client_id,
        "name": client.name,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": client.secret,  # compared by plan (masked in its output), set by apply
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "standardFlowEnabled": client.kind != "service",
        "serviceAccountsEnabled": client.kind == "service",
        "frontchannelLogout": False,
        # Teleservice tokens carry only their own client's roles.
        "fullScopeAllowed": client.kind != "teleservice",
        # No offline tokens (nor address/phone/... scopes): nothing of ours needs them.
        "optionalClientScopes": [],
        "attributes": dict(CLOSED_GRANTS),
    }
    if client.url:
        rep.update(
            rootUrl=client.url,
            baseUrl="/",
            redirectUris=sorted(client.url + p for p in client.redirect_paths),
            webOrigins=[client.url],
        )
        rep["attributes"].update({
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": client.url + "/",
            "backchannel.logout.url": client.url + "/backchannel-logout",
            "backchannel.logout.session.required": "true",
        })
    else:
        rep.update(redirectUris=[], webOrigins=[])
    if client.has_login_flow:
        rep["authenticationFlowBindingOverrides"] = {"browser": FLOW_PREFIX + client.client_id}
    return rep


# Where Keycloak's own consoles send people back after a login: exact, where Keycloak makes them wildcards
# (`/realms/<realm>/account/*`), so that no other path of the server receives a code (a redirect through an open
# page, parameter pollution: CVE-2026-18209). Relative to the client's root URL, as Keycloak declares them.
BUILTIN_REDIRECTS = {"account": "/realms/{realm}/account/", "account-console": "/realms/{realm}/account/",
                     "security-admin-console": "/admin/{realm}/console/"}


def _builtin_client(builtin: BuiltinClient, realm: str) -> dict:
    """A built-in client closed to every grant that skips our flows, with no optional client scope (no offline
    tokens); PKCE and exact redirect URIs where it logs people in."""
    rep = {"enabled": builtin.enabled, "directAccessGrantsEnabled": False, "implicitFlowEnabled": False,
           "optionalClientScopes": [], "attributes": {**CLOSED_GRANTS, "pkce.code.challenge.method": "S256"}}
    if builtin.client_id in BUILTIN_REDIRECTS:
        rep["redirectUris"] = [BUILTIN_REDIRECTS[builtin.client_id].format(realm=realm)]
    return rep


def _mapper(claim: str, spec: RealmSpec) -> dict:
    """The claim in every token of the client. ``adherent`` and ``categories`` are derived from group membership,
    which Keycloak confines to the delegate's own adherent: an attribute a delegate writes through the Admin API
    (#40259) never reaches the token. The adherent's E@syPaiement claims are computed from its group (the
    confirmations CIMR's provisioner writes there, the enabled members of its validateur group). The others are the
    user's attribute."""
    if claim in ADHERENT_CLAIMS:
        return _adherent_mapper(claim, ADHERENT_CLAIMS[claim])
    attr = next(a for a in spec.attributes if a.name == claim)
    derived = claim in MEMBERSHIP_ATTRIBUTES
    return {
        "name": claim,
        "protocol": "openid-connect",
        "protocolMapper": MEMBERSHIP_MAPPER if derived else "oidc-usermodel-attribute-mapper",
        "config": {
            **({"cimr.source": claim} if derived else {"user.attribute": claim}),
            "claim.name": claim,
            "jsonType.label": "String",
            "multivalued": "true" if attr.multivalued else "false",
            "id.token.claim": "true",
            "access.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }


def _adherent_mapper(claim: str, json_type: str) -> dict:
    return {
        "name": claim,
        "protocol": "openid-connect",
        "protocolMapper": MEMBERSHIP_MAPPER,
        "config": {"cimr.source": claim, "claim.name": claim, "jsonType.label": json_type,
                   "id.token.claim": "true", "access.token.claim": "true", "userinfo.token.claim": "true",
                   "introspection.token.claim": "true"},
    }


def _audience_mapper(client_id: str) -> dict:
    """Put the client itself in `aud`, so applications can check the token was issued for them."""
    return {
        "name": "audience",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {"included.client.audience": client_id, "access.token.claim": "true",
                   "id.token.claim": "false", "introspection.token.claim": "true"},
    }


def browser_flow(client: Client, second: SecondFactor) -> dict:
    """A client's browser flow: authenticate (SSO cookie, or the forms with their second factor and step-up), then,
    for a teleservice, refuse users holding none of its roles.

    The role check sits at the top level, after the REQUIRED authentication sub-flow, so that it also runs when an
    SSO cookie from another teleservice authenticates the user. The second factor is required of the holders of
    the client's roles that ``second_factor.required_for`` names (the realm roles for the portal).
    """
    owner = "realm" if client.kind == "portal" else client.client_id
    steps = authentication_steps(second.roles_for(owner))
    if client.restricts_login:
        steps.append({"level": 0, "flow": "restrict", "requirement": "CONDITIONAL"})
        # Conditions of one sub-flow must all hold: "lacks role A" and "lacks role B" ... -> deny.
        for role in client.roles:
            steps.append({"level": 1, "provider": "conditional-user-role", "requirement": "REQUIRED",
                          "config": {"condUserRole": f"{client.client_id}.{role.name}", "negate": "true"}})
        # Our refusal, not Keycloak's deny-access-authenticator: that one counts as a failed login, so refused
        # attempts (even prompt=none with only the SSO cookie) locked users out of their own teleservice.
        steps.append({"level": 1, "provider": REFUSE_ACCESS, "requirement": "REQUIRED",
                      "config": {"denyErrorMessage": DENY_MESSAGE}})
        what = "only holders of its roles"
    else:
        what = "no role restriction"
    return {"alias": FLOW_PREFIX + client.client_id,
            "description": f"Browser login for {client.name}: {what}, second factor for powerful accounts",
            "steps": steps}


def default_browser_flow(second: SecondFactor) -> dict:
    """The realm's browser flow (clients without a flow of their own): every powerful role needs its second factor,
    or an SSO session opened there (e.g. the account console) would carry a delegate into the portal without one."""
    return {"alias": DEFAULT_FLOW, "description": "Browser login of the realm: second factor for powerful accounts",
            "steps": authentication_steps(second.roles_for(None))}


def authentication_steps(required_roles: tuple[str, ...]) -> list[dict]:
    """Cookie, or the forms: the password (level 1), the second factor when a client asks for level 2 (step-up,
    asked again at each such request), and the second factor of every holder of a required role.

    One sub-flow per role (a sub-flow's conditions are all required: an "or" needs several); each is skipped once a
    second factor was used in this authentication, so a step-up or a holder of two roles is asked once. A holder
    without a TOTP is made to set one up (a REQUIRED OTP form sets Keycloak's CONFIGURE_TOTP required action).
    """
    steps: list[dict] = [
        {"level": 0, "flow": "authenticate", "requirement": "REQUIRED"},
        {"level": 1, "provider": "auth-cookie", "requirement": "ALTERNATIVE"},
        {"level": 1, "flow": "forms", "requirement": "ALTERNATIVE"},
        {"level": 2, "flow": "password", "requirement": "CONDITIONAL"},
        {"level": 3, "provider": "conditional-level-of-authentication", "requirement": "REQUIRED",
         "config": {"loa-condition-level": "1", "loa-max-age": str(PASSWORD_MAX_AGE)}},
        {"level": 3, "provider": "auth-username-password-form", "requirement": "REQUIRED"},
        {"level": 2, "flow": "step-up", "requirement": "CONDITIONAL"},
        {"level": 3, "provider": "conditional-level-of-authentication", "requirement": "REQUIRED",
         "config": {"loa-condition-level": "2", "loa-max-age": "0"}},
        {"level": 3, "provider": "auth-otp-form", "requirement": "REQUIRED"},
    ]
    for role in required_roles:
        steps += [
            {"level": 2, "flow": "second-factor-" + role.replace(".", "-"), "requirement": "CONDITIONAL"},
            {"level": 3, "provider": "conditional-user-role", "requirement": "REQUIRED",
             "config": {"condUserRole": role, "negate": "false"}},
            {"level": 3, "provider": "conditional-credential", "requirement": "REQUIRED",
             "config": {"credentials": SECOND_FACTORS, "included": "false"}},
            {"level": 3, "provider": "auth-otp-form", "requirement": "REQUIRED"},
        ]
    return steps
