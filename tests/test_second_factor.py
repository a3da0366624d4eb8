"""The second factor: required of the accounts that can do damage (delegates, agents, auditors, E@syPaiement
validators), enrolled at their first login, never asked of the others; asked again when E@syPaiement confirms a
payment (step-up, acr); reset on a lost phone by the agent (delegate, signed letter) or the delegate (its own
validators only); reported by the audit when missing.

Keycloak's pages are driven over HTTP (tests/oidc_flow.py) with ``second_factor=False`` where the test looks at
what Keycloak asks; devstack/totp.py computes the codes (RFC 6238) from the secret the setup page shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests
from click.testing import CliRunner

from devstack.builders import DELEGATE_PASSWORD, STAFF_PASSWORD
from devstack.totp import AUTHENTICATORS, OTP_FORM, SETUP_FORM, answer_second_factor, form_action, setup_secret, totp
from provisioner.audit.collect import collect
from provisioner.audit.data import Account, AuditData
from provisioner.audit.report import build_report
from provisioner.cli import cli
from provisioner.context import Context
from provisioner.errors import TenantViolation
from provisioner.gateway import Gateway
from provisioner.realm.desired import DEFAULT_FLOW, FLOW_PREFIX, desired_state
from provisioner.realm.schema import load_realm_spec
from provisioner.second_factor import reset_user_second_factor
from provisioner.settings import PROJECT_ROOT
from provisioner.tenancy import Actor
from provisioner.trail import events
from teleservice import step_up_satisfied
from tests import people
from tests.oidc_flow import Browser, decode_unverified, redirect_uri, visible_text
from tests.portal_support import csrf_token, login_client, text
from tests.test_teleservice_app import RunningApp, Visitor

SPEC = load_realm_spec(PROJECT_ROOT / "realm", "cimr")


def portal_callback(settings) -> str:
    """The test portal's callback: the session's realm was applied with its address (tests/conftest.py)."""
    return settings.portal_url + "/auth/callback"


# --- pure: the TOTP of the tests, the flows as data, the acr check, the audit rule -----------------------------

def test_our_totp_is_rfc_6238():
    """RFC 6238 appendix B (HMAC-SHA1, 8 digits)."""
    key = "12345678901234567890"
    assert [totp(key, t, digits=8) for t in (59, 1111111109, 1111111111, 1234567890, 2000000000)] == \
        ["94287082", "07081804", "14050471", "89005924", "69279037"]


def _sub_flows(flow: dict) -> dict[str, list[dict]]:
    """Each sub-flow of a flow (by name) with its direct steps."""
    out, current = {}, None
    for step in flow["steps"]:
        if "flow" in step:
            current = out.setdefault(step["flow"], [])
        elif current is not None and step["level"] == 3:
            current.append(step)
    return out


def _second_factor_roles(flow: dict) -> list[str]:
    return [s["config"]["condUserRole"] for name, steps in _sub_flows(flow).items() if name.startswith("second-factor")
            for s in steps if s["provider"] == "conditional-user-role"]


@pytest.mark.parametrize("flow, roles", [
    ("easypaiement", ["easypaiement.validateur"]),
    ("portal", ["delegate", "agent", "auditor"]),
    ("compte-adherent", []), ("teledeclaration", []), ("eliquidation", []),
    ("default", ["delegate", "agent", "auditor", "easypaiement.validateur"]),
])
def test_each_flow_requires_a_second_factor_of_exactly_the_powerful_roles(flow, roles):
    assert _second_factor_roles(desired_state(SPEC)[("flow", FLOW_PREFIX + flow)]) == roles


def test_a_powerful_account_is_made_to_enrol_and_asked_once():
    """REQUIRED OTP form (not configured: Keycloak's CONFIGURE_TOTP), skipped once a second factor was used."""
    flow = desired_state(SPEC)[("flow", FLOW_PREFIX + "easypaiement")]
    steps = _sub_flows(flow)["second-factor-easypaiement-validateur"]
    assert [(s["provider"], s["requirement"]) for s in steps] == [
        ("conditional-user-role", "REQUIRED"), ("conditional-credential", "REQUIRED"), ("auth-otp-form", "REQUIRED")]
    assert steps[1]["config"] == {"credentials": "otp", "included": "false"}
    assert {"level": 2, "flow": "second-factor-easypaiement-validateur", "requirement": "CONDITIONAL"} in flow["steps"]


def test_step_up_asks_the_second_factor_at_each_request_for_level_2():
    desired = desired_state(SPEC)
    realm = desired[("realm", "cimr")]
    assert json.loads(realm["attributes"]["acr.loa.map"]) == {"password": 1, "2fa": 2}
    assert realm["otpPolicyCodeReusable"] is False
    for (kind, key), flow in desired.items():
        if kind == "flow":
            levels = {name: [s.get("config") for s in steps if s["provider"] == "conditional-level-of-authentication"]
                      for name, steps in _sub_flows(flow).items()}
            assert levels["password"] == [{"loa-condition-level": "1", "loa-max-age": "36000"}], key
            assert levels["step-up"] == [{"loa-condition-level": "2", "loa-max-age": "0"}], key


def test_the_role_refusal_stays_last_at_the_top_level():
    for client in SPEC.teleservices:
        steps = desired_state(SPEC)[("flow", FLOW_PREFIX + client.client_id)]["steps"]
        restrict = steps.index({"level": 0, "flow": "restrict", "requirement": "CONDITIONAL"})
        assert all(s["level"] >= 1 for s in steps[restrict + 1:]) and steps[-1]["provider"] == "cimr-refuse-access"


def test_the_realm_logs_in_through_a_flow_of_ours():
    """Else an SSO session opened at the account console would carry a delegate into the portal without OTP."""
    desired = desired_state(SPEC)
    assert desired[("flow-binding", "browser")] == {"browserFlow": DEFAULT_FLOW}
    assert desired[("client", "portal")]["authenticationFlowBindingOverrides"] == {"browser": FLOW_PREFIX + "portal"}


@pytest.mark.parametrize("yaml_text, problem", [
    ("second_factor: {required_for: {realm: [nobody]}}", "role 'nobody' is not declared"),
    ("second_factor: {required_for: {paie: [x]}}", "not `realm` nor a declared client"),
    ("second_factor: {levels: {password: 1, otp: 3}}", "exactly two acr values"),
])
def test_the_spec_refuses_a_second_factor_it_cannot_enforce(tmp_path, yaml_text, problem):
    from provisioner.errors import RealmSpecError

    for name in ("realm.yaml", "clients.yaml", "user-profile.yaml"):
        source = (PROJECT_ROOT / "realm" / name).read_text(encoding="utf-8")
        if name == "realm.yaml":
            source = source[:source.index("\nsecond_factor:")] + "\n" + yaml_text + "\n"
        (tmp_path / name).write_text(source, encoding="utf-8")
    with pytest.raises(RealmSpecError, match=re.escape(problem)):
        load_realm_spec(tmp_path, "cimr")


@pytest.mark.parametrize("claims, ok", [
    ({"acr": "2fa", "iat": 1000}, True),
    ({"acr": "password", "iat": 1000}, False),   # a login without the second factor
    ({"iat": 1000}, False),
    ({"acr": "2fa", "iat": 800}, False),         # too old: asked again
])
def test_a_payment_is_confirmed_only_with_a_fresh_second_factor(claims, ok):
    assert step_up_satisfied(claims, "2fa", 120, now=1060) is ok


def test_the_audit_reports_powerful_accounts_without_a_second_factor():
    from datetime import datetime, timezone

    accounts = (Account("1", "10000001", True, groups=("/delegates/10000001",), adherent="10000001",
                        credential_types=("password",)),
                Account("2", "val.a", True, groups=("/adherents/10000001/easypaiement/validateur",),
                        adherent="10000001", teleservice="easypaiement", credential_types=("otp", "password")),
                Account("3", "val.b", True, groups=("/adherents/10000001/easypaiement/validateur",),
                        adherent="10000001", teleservice="easypaiement", credential_types=("password",)),
                Account("4", "ord.c", True, groups=("/adherents/10000001/easypaiement/ordonnateur",),
                        adherent="10000001", teleservice="easypaiement", credential_types=("password",)),
                Account("5", "agent.x", True, groups=("/agents",), credential_types=()),
                Account("6", "old.val", False, groups=("/adherents/10000001/easypaiement/validateur",),
                        adherent="10000001", teleservice="easypaiement", credential_types=()))
    data = AuditData("cimr", datetime.now(timezone.utc), accounts, (), {
        "/delegates/10000001": ("realm:delegate",), "/agents": ("realm:agent",),
        "/adherents/10000001/easypaiement/validateur": ("easypaiement:validateur",),
        "/adherents/10000001/easypaiement/ordonnateur": ("easypaiement:ordonnateur",)}, ("easypaiement",),
        second_factor_roles=("realm:delegate", "realm:agent", "realm:auditor", "easypaiement:validateur"))
    missing = {(f.subject, f.severity) for f in build_report(data).findings if f.kind == "second-factor-missing"}
    assert missing == {("10000001", "high"), ("val.b", "high"), ("agent.x", "high")}


# --- against Keycloak ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def company(make_adherent, admin_gw):
    return people.adherent_of(admin_gw, make_adherent())


def browser(settings) -> Browser:
    return Browser(settings.keycloak_url, settings.realm)


def enrolled(gw: Gateway, user_id: str) -> bool:
    return any(c["type"] == "otp" for c in gw.credentials(user_id))


def test_a_validator_without_a_second_factor_is_made_to_enrol(settings, admin_gw, company):
    user_id, login = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    b = browser(settings)
    asked = b.login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD, second_factor=False)
    assert asked.code is None and form_action(asked.page, SETUP_FORM), visible_text(asked.page)[:300]
    secret = setup_secret(asked.page)
    AUTHENTICATORS.enrol(login, secret)  # the validator's phone: scans the secret, shows a code (RFC 6238)
    resp = b.session.post(form_action(asked.page, SETUP_FORM), allow_redirects=False,
                          data={"totp": AUTHENTICATORS.code(login), "totpSecret": secret, "userLabel": "Téléphone"})
    assert resp.status_code == 302 and resp.headers["Location"].startswith(redirect_uri(SPEC, "easypaiement"))
    assert "code=" in resp.headers["Location"] and enrolled(admin_gw, user_id)
    # From now on every login asks for a code (a fresh browser: no SSO session).
    again = browser(settings).login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD,
                                    second_factor=False)
    assert again.code is None and form_action(again.page, OTP_FORM)
    assert browser(settings).login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD).code


def test_a_wrong_code_is_refused_and_counts_toward_brute_force(settings, admin_gw, company):
    user_id, login = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    assert browser(settings).login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD).code
    b = browser(settings)
    asked = b.login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD, second_factor=False)
    wrong = str((int(totp(AUTHENTICATORS.secrets[login])) + 1) % 10**6).zfill(6)
    resp = b.session.post(form_action(asked.page, OTP_FORM), data={"otp": wrong}, allow_redirects=False)
    assert resp.status_code == 200 and form_action(resp.text, OTP_FORM)  # asked again, no code
    assert "invalide" in visible_text(resp.text)
    assert admin_gw.brute_force_status(user_id)["numFailures"] == 1
    admin_gw.clear_brute_force(user_id)


@pytest.mark.parametrize("client_id, roles", [("easypaiement", ("ordonnateur",)),
                                              ("compte-adherent", ("utilisateur",)),
                                              ("teledeclaration", ("formulaire-saisie",)),
                                              ("eliquidation", ("utilisateur",))])
def test_other_teleservice_users_keep_the_password_only_login(settings, admin_gw, company, client_id, roles):
    extra = {"user_type": "interne"} if client_id == "teledeclaration" else {}
    user_id, login = people.create_user(admin_gw, company, client_id, roles, **extra)
    login_result = browser(settings).login(client_id, redirect_uri(SPEC, client_id), login, people.PASSWORD,
                                           second_factor=False)
    assert login_result.code, visible_text(login_result.page)[:300]
    assert not enrolled(admin_gw, user_id)


def _portal_asks(settings, username: str, password: str) -> str:
    result = browser(settings).login("portal", portal_callback(settings), username, password, second_factor=False)
    assert result.code is None
    return "setup" if form_action(result.page, SETUP_FORM) else "otp" if form_action(result.page, OTP_FORM) else \
        visible_text(result.page)[:200]


def test_delegates_agents_and_auditors_must_enrol_at_portal_login(settings, make_adherent, staff):
    assert _portal_asks(settings, make_adherent(), DELEGATE_PASSWORD) == "setup"
    assert _portal_asks(settings, staff["agent"], STAFF_PASSWORD) in ("setup", "otp")
    assert _portal_asks(settings, staff["auditor"], STAFF_PASSWORD) in ("setup", "otp")


def test_no_client_of_the_realm_opens_a_session_without_it(settings, make_adherent):
    """The account console (the realm's own flow) asks too: its SSO session would otherwise open the portal."""
    numero = make_adherent()
    client = "account-console"
    account = f"{settings.keycloak_url}/realms/{settings.realm}/account/"
    result = browser(settings).login(client, account, numero, DELEGATE_PASSWORD, second_factor=False)
    assert result.code is None and form_action(result.page, SETUP_FORM)


# --- step-up at E@syPaiement --------------------------------------------------------------------------------

@pytest.fixture
def easypaiement(realm, test_env, admin_gw):
    """The reference app, its client pointing at it for one test only (the other tests log in at realm/'s URL)."""
    app = RunningApp("easypaiement", test_env, admin_gw)
    yield app
    app.stop()


def _confirm(visitor: Visitor, app: RunningApp) -> requests.Response:
    page = visitor.get(app.base + "/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return visitor.http.post(app.base + "/paiements/confirmer", data={"csrf": csrf}, allow_redirects=False)


def test_confirming_a_payment_asks_for_the_second_factor_again(easypaiement, admin_gw, company):
    _, login = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    visitor = Visitor()
    assert "Vous êtes connecté(e)" in visible_text(visitor.login(easypaiement, login).text)
    assert decode_unverified(easypaiement.store.load(visitor.http.cookies.get("easypaiement_session"))
                             ["access_token"])["acr"] == "password"

    # The login's token (acr "password") does not confirm: back to Keycloak, asking for acr 2fa.
    sent = _confirm(visitor, easypaiement)
    assert sent.status_code == 302 and parse_qs(urlparse(sent.headers["Location"]).query)["acr_values"] == ["2fa"]
    keycloak = visitor._trust(visitor.http.get(sent.headers["Location"], allow_redirects=False))
    assert keycloak.status_code == 200 and form_action(keycloak.text, OTP_FORM)      # the code only: SSO session
    assert 'id="kc-form-login"' not in keycloak.text
    back = answer_second_factor(visitor.http, keycloak, login)
    done = visitor.get(urljoin(keycloak.url, back.headers["Location"]))
    assert "Paiement confirmé" in visible_text(done.text), visible_text(done.text)[:300]

    # One proof, one payment: the next confirmation asks again.
    assert _confirm(visitor, easypaiement).status_code == 302


def test_a_token_without_the_second_factors_acr_confirms_nothing(easypaiement, admin_gw, company):
    _, login = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    visitor = Visitor()
    visitor.login(easypaiement, login)
    assert _confirm(visitor, easypaiement).status_code == 302
    # Instead of the step-up, a plain login (no acr_values): Keycloak issues acr "password", the app refuses.
    page = visitor.get(easypaiement.base + "/login")
    assert "Paiement non confirmé" in visible_text(page.text) and page.status_code == 403


def test_an_ordonnateur_cannot_confirm(easypaiement, admin_gw, company):
    _, login = people.create_user(admin_gw, company, "easypaiement", ("ordonnateur",))
    visitor = Visitor()
    page = visitor.login(easypaiement, login)
    assert "confirm-payment" not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert visitor.http.post(easypaiement.base + "/paiements/confirmer", data={"csrf": csrf},
                             allow_redirects=False).status_code == 403


# --- resets (lost phone) ------------------------------------------------------------------------------------

def _enrolled_validator(settings, admin_gw, company) -> tuple[str, str]:
    user_id, login = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    assert browser(settings).login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD).code
    assert enrolled(admin_gw, user_id)
    return user_id, login


def test_the_delegate_sees_and_resets_its_validators_second_factor(settings, portal, admin_gw, services, company):
    user_id, login = _enrolled_validator(settings, admin_gw, company)
    delegate = login_client(portal, company.numero, DELEGATE_PASSWORD)
    shown = text(delegate.get(f"/delegue/utilisateurs/{login}"))
    assert "Second facteur Enregistré" in shown
    resp = delegate.post(f"/delegue/utilisateurs/{login}/second-facteur",
                         data={"csrf_token": csrf_token(delegate, f"/delegue/utilisateurs/{login}")})
    assert resp.status_code == 302
    assert not enrolled(admin_gw, user_id)
    assert "Non enregistré" in text(delegate.get(f"/delegue/utilisateurs/{login}"))
    entry = events(services.db, target=login, action="user.reset_second_factor")[0]
    assert (entry.actor, entry.actor_role, entry.outcome, entry.before) == (
        company.numero, "delegate", "ok", {"second_factor": ["otp"]})
    again = browser(settings).login("easypaiement", redirect_uri(SPEC, "easypaiement"), login, people.PASSWORD,
                                    second_factor=False)
    assert form_action(again.page, SETUP_FORM)  # enrols again


def test_a_delegate_cannot_reset_another_adherents_validator(settings, portal, admin_gw, service_gw, services,
                                                            company, make_adherent):
    other = people.adherent_of(admin_gw, make_adherent())
    victim_id, victim = _enrolled_validator(settings, admin_gw, other)
    # Through the portal: refused (Keycloak does not even show A's token B's user: 404, else our check: 403).
    delegate = login_client(portal, company.numero, DELEGATE_PASSWORD)
    resp = delegate.post(f"/delegue/utilisateurs/{victim}/second-facteur",
                         data={"csrf_token": csrf_token(delegate, "/delegue/")})
    assert resp.status_code in (403, 404)
    # Through the provisioner, naming its own adherent or the other one: refused and in the trail.
    for adherent in (company.numero, other.numero):
        with pytest.raises(TenantViolation):
            reset_user_second_factor(Context(service_gw, services, Actor.delegate(company.numero), adherent), victim)
    assert events(services.db, target=victim, action="user.reset_second_factor")[0].outcome == "refused"
    # Straight to the Admin API with its own token: Keycloak's fine-grained permissions refuse.
    token = Browser(settings.keycloak_url, settings.realm)
    result = token.login("portal", portal_callback(settings), company.numero, DELEGATE_PASSWORD)
    access = token.exchange("portal", SPEC.client("portal").secret, portal_callback(settings), result.code,
                            result.verifier)["access_token"]
    base = f"{settings.keycloak_url}/admin/realms/{settings.realm}/users/{victim_id}/credentials"
    otp_id = next(c["id"] for c in admin_gw.credentials(victim_id) if c["type"] == "otp")
    headers = {"Authorization": f"Bearer {access}"}
    assert requests.get(base, headers=headers, timeout=30).status_code == 403
    assert requests.delete(f"{base}/{otp_id}", headers=headers, timeout=30).status_code == 403
    assert enrolled(admin_gw, victim_id)


def test_an_agent_removes_the_delegates_second_factor_on_a_signed_letter(settings, test_env, make_adherent,
                                                                        cli_agent, services, admin_gw):
    numero = make_adherent()
    assert browser(settings).login("portal", portal_callback(settings), numero, DELEGATE_PASSWORD).code  # enrols
    delegate_id = admin_gw.user_by_username(numero).id
    assert enrolled(admin_gw, delegate_id)
    runner = CliRunner()
    refused = runner.invoke(cli, ["adherent", "reset-delegate-second-factor", numero, "--as", numero], env=test_env)
    assert refused.exit_code == 1 and enrolled(admin_gw, delegate_id)
    out = runner.invoke(cli, ["--json", "adherent", "reset-delegate-second-factor", numero, "--as", cli_agent],
                        env=test_env)
    assert out.exit_code == 0 and json.loads(out.stdout)["removed"] == ["otp"], out.output
    assert not enrolled(admin_gw, delegate_id)
    entry = events(services.db, adherent=numero, action="delegate.reset_second_factor")[0]
    assert (entry.actor, entry.actor_role, entry.outcome) == (cli_agent, "agent", "ok")
    assert _portal_asks(settings, numero, DELEGATE_PASSWORD) == "setup"


def test_the_cli_shows_who_has_enrolled(settings, test_env, admin_gw, company, cli_agent):
    _, enrolled_login = _enrolled_validator(settings, admin_gw, company)
    _, pending = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    _, ordonnateur = people.create_user(admin_gw, company, "easypaiement", ("ordonnateur",))
    runner = CliRunner()
    out = runner.invoke(cli, ["user", "list", company.numero, "--teleservice", "easypaiement", "--as", cli_agent],
                        env=test_env)
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert lines[enrolled_login].endswith("2FA: enrolled") and lines[pending].endswith("2FA: not enrolled")
    assert "2FA" not in lines[ordonnateur]
    shown = runner.invoke(cli, ["--json", "user", "show", company.numero, pending, "--as", cli_agent], env=test_env)
    assert json.loads(shown.stdout)["second_factor"] is False


def test_the_security_audit_reports_who_has_not_enrolled(settings, admin_gw, company, services, spec,
                                                         make_adherent):
    _, done = _enrolled_validator(settings, admin_gw, company)
    _, pending = people.create_user(admin_gw, company, "easypaiement", ("validateur",))
    never = make_adherent()  # its delegate has not logged in yet
    assert browser(settings).login("portal", portal_callback(settings), company.numero, DELEGATE_PASSWORD).code  # enrols
    auditor = Gateway.as_auditor(replace(settings, auditor_client_secret="dev-auditor-secret"))  # read-only account
    data = collect(auditor, services.db, spec, with_drift=False)
    missing = {f.subject for f in build_report(data).findings if f.kind == "second-factor-missing"}
    assert pending in missing and never in missing
    assert done not in missing and company.numero not in missing
