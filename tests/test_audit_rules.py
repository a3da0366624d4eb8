"""The audit's rules as pure functions over hand-made data (no Keycloak): one case per rule, and what is
deliberately not a finding."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dataclasses import replace

from provisioner.audit.data import (Account, AdherentInfo, AdminEvent, AuditData, ClientConfig, Mapper, RealmConfig,
                                    ServiceAccounts)
from provisioner.audit.findings import KINDS
from provisioner.audit.render import render_csv, render_table
from provisioner.audit.report import build_report, token_holders
from provisioner.trail import TrailEntry

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
TELESERVICES = ("teledeclaration", "compte-adherent", "easypaiement", "eliquidation")
A = "12345678"
LEAVES = {f"/adherents/{n}/{c}/{r}": (f"{c}:{r}",) for n in (A, "87654321") for c, r in [
    ("teledeclaration", "fichier-preetabli"), ("compte-adherent", "utilisateur"), ("easypaiement", "ordonnateur"),
    ("easypaiement", "validateur"), ("eliquidation", "utilisateur")]}
GROUP_ROLES = {**LEAVES, "/delegates": ("realm:delegate",), f"/delegates/{A}": ("realm:delegate",),
               "/agents": ("realm:agent",), "/auditors": ("realm:auditor",)}
DELEGATE = Account("d", A, True, NOW, A, None, None, (f"/delegates/{A}",))


def user(name: str, *groups: str, enabled: bool = True, adherent: str | None = A, direct: tuple = (),
         created: datetime = NOW, sa: str | None = None, categories: tuple = ()) -> Account:
    return Account(name, name, enabled, created, adherent, None, sa, tuple(groups), direct, categories)


def leaf(client: str, role: str, n: str = A) -> str:
    return f"/adherents/{n}/{client}/{role}"


def data(*accounts: Account, adherent: AdherentInfo = AdherentInfo(A), questions: set | None = None,
         **kw) -> AuditData:
    everyone = (DELEGATE, *accounts)
    return AuditData("cimr", NOW, everyone, (adherent,), GROUP_ROLES, TELESERVICES,
                     secret_question_users=frozenset(questions if questions is not None else
                                                     {a.id for a in everyone}), **kw)


def kinds(d: AuditData, **kw) -> set[tuple[str, str]]:
    return {(f.kind, f.subject) for f in build_report(d, **kw).findings}


@pytest.mark.parametrize("accounts, adherent, expected", [
    ([user("u1", leaf("compte-adherent", "utilisateur"))], AdherentInfo(A), set()),
    ([user("u1", leaf("teledeclaration", "fichier-preetabli"), leaf("eliquidation", "utilisateur"))],
     AdherentInfo(A), {("two-teleservices", "u1")}),
    ([user("u1", leaf("compte-adherent", "utilisateur"), direct=("compte-adherent:utilisateur",))],
     AdherentInfo(A), {("direct-role", "u1")}),
    ([user("u1", leaf("eliquidation", "utilisateur", "87654321"))], AdherentInfo(A),
     {("foreign-adherent", "u1")}),
    ([user("u1", adherent=None)], AdherentInfo(A), {("outside-adherent", "u1")}),
    ([user("v1", leaf("easypaiement", "validateur")),
      user("v2", leaf("easypaiement", "validateur"), enabled=False)], AdherentInfo(A, confirmations=2),
     {("validators-missing", A)}),
    ([user("v1", leaf("easypaiement", "validateur")), user("v2", leaf("easypaiement", "validateur"))],
     AdherentInfo(A, confirmations=2), set()),
    ([user("u1", leaf("eliquidation", "utilisateur"))], AdherentInfo(A, status="suspended"),
     {("suspended-enabled", A)}),
    # the user was disabled, but the delegate was left enabled:
    ([user("u1", leaf("eliquidation", "utilisateur"), enabled=False)], AdherentInfo(A, status="suspended"),
     {("suspended-enabled", A)}),
    ([user("u1", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=100))], AdherentInfo(A),
     {("inactive", "u1")}),
    # Télédéclaration users must, together, declare every active category of the adherent:
    ([user("t1", leaf("teledeclaration", "fichier-preetabli"), categories=("cadres",))],
     AdherentInfo(A, categories=("cadres", "ouvriers")), {("categories-uncovered", A)}),
    ([user("t1", leaf("teledeclaration", "fichier-preetabli"), categories=("cadres",)),
      user("t2", leaf("teledeclaration", "fichier-preetabli"), categories=("ouvriers",))],
     AdherentInfo(A, categories=("cadres", "ouvriers")), set()),
    ([user("t1", leaf("teledeclaration", "fichier-preetabli"), categories=("cadres",)),
      user("t2", leaf("teledeclaration", "fichier-preetabli"), categories=("ouvriers",), enabled=False)],
     AdherentInfo(A, categories=("cadres", "ouvriers")), {("categories-uncovered", A)}),
    # No Télédéclaration user yet: nothing to cover.
    ([user("u1", leaf("compte-adherent", "utilisateur"))], AdherentInfo(A, categories=("cadres",)), set()),
])
def test_rules(accounts, adherent, expected):
    assert kinds(data(*accounts, adherent=adherent), inactive_days=90) - {("inactive", A)} == expected


def test_a_suspended_adherent_with_every_account_disabled_is_not_a_finding():
    d = AuditData("cimr", NOW, (user("u1", leaf("eliquidation", "utilisateur"), enabled=False),
                                Account("d", A, False, NOW, A, None, None, (f"/delegates/{A}",))),
                  (AdherentInfo(A, status="suspended"),), GROUP_ROLES, TELESERVICES)
    assert kinds(d) == set()


def test_no_delegate():
    d = AuditData("cimr", NOW, (user("u1", leaf("eliquidation", "utilisateur")),), (AdherentInfo(A),), GROUP_ROLES,
                  TELESERVICES, secret_question_users=frozenset({"u1"}))
    assert kinds(d) == {("no-delegate", A)}


def test_no_secret_questions_for_teleservice_users_only():
    d = data(user("u1", leaf("eliquidation", "utilisateur")), user("agent1", "/agents", adherent=None),
             questions=set())
    assert kinds(d) == {("no-secret-questions", "u1")}


@pytest.mark.parametrize("account", [
    user("svc", adherent=None, sa="provisioner", direct=("realm-management:manage-users",)),
    user("agent1", "/agents", adherent=None),
    user("auditor1", "/auditors", adherent=None),
])
def test_not_findings(account):
    assert kinds(data(account)) == set()


def test_recent_login_is_not_inactive():
    u = user("u1", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400))
    assert ("inactive", "u1") not in kinds(data(u, last_logins={"u1": NOW - timedelta(days=3)}))


def test_drift_is_a_finding_only_when_computed():
    assert ("realm-drift", "cimr") in kinds(data(drift=("~ realm cimr",), drift_note="computed: 1"))
    report = build_report(data(drift=None, drift_note="not computed: forbidden"))
    assert not [f for f in report.findings if f.kind == "realm-drift"] and report.drift_note.startswith("not")


def test_activity_joins_the_person_with_what_keycloak_changed():
    t = TrailEntry(NOW, A, "delegate", A, "user.disable", "u1", "ok")
    k = AdminEvent(NOW - timedelta(seconds=1), "service-account-provisioner", "UPDATE", "USER", "users/x", "u1")
    stray = AdminEvent(NOW, "master/admin", "UPDATE", "REALM", "", None)
    rows = build_report(data(trail=(t,), admin_events=(k, stray))).activity
    joined = next(r for r in rows if r.source == "trail+keycloak")
    assert (joined.actor, joined.action, joined.keycloak) == (A, "user.disable", ("UPDATE users/x",))
    assert [r.actor for r in rows if r.source == "keycloak"] == ["master/admin"]


PROVISIONER, DELEGATIONS = "service-account-provisioner", "service-account-delegations"


@pytest.mark.parametrize("role, actor, holders", [
    # the portal: the delegate's own token; the CLI (--as) and the adherent group's attributes: the provisioner's
    ("delegate", A, {A, PROVISIONER}),
    # agents: the provisioner's service account; an approval writes the permissions with the delegations one
    ("agent", "agent.benali", {PROVISIONER, DELEGATIONS}),
    # the public forms and the auditors' space: the provisioner's service account
    ("subscriber", f"subscriber:{A}", {PROVISIONER}),
    ("user", "u1", {PROVISIONER}),
    ("auditor", "auditeur.x", {PROVISIONER}),
])
def test_whose_token_each_kind_of_person_acts_with(role, actor, holders):
    entry = TrailEntry(NOW, actor, role, A, "user.update_details", "u1", "ok")
    assert token_holders(entry, ServiceAccounts()) == holders


def activity(trail: tuple[TrailEntry, ...], events: tuple[AdminEvent, ...]) -> set[tuple]:
    rows = build_report(data(trail=trail, admin_events=events)).activity
    return {(r.actor, r.source, r.keycloak) for r in rows}


def test_a_console_change_before_an_agents_action_on_the_same_user_stays_on_its_own_row():
    console = AdminEvent(NOW - timedelta(seconds=61), "master/admin", "UPDATE", "USER", "users/x", "u1")
    agents = AdminEvent(NOW - timedelta(seconds=1), PROVISIONER, "UPDATE", "USER", "users/x", "u1")
    agent = TrailEntry(NOW, "agent.benali", "agent", A, "user.update_details", "u1", "ok")
    assert activity((agent,), (console, agents)) == {("agent.benali", "trail+keycloak", ("UPDATE users/x",)),
                                                     ("master/admin", "keycloak", ("UPDATE users/x",))}


@pytest.mark.parametrize("holder, joined", [
    (A, True),                 # the delegate's own token (portal)
    (PROVISIONER, True),       # the CLI acting for the delegate
    ("87654321", False),       # another delegate
    ("agent.benali", False),   # a person's own token that is not the delegate's
    ("master/admin", False),
])
def test_a_delegates_entry_takes_only_events_made_with_its_own_token_or_the_provisioners(holder, joined):
    event = AdminEvent(NOW - timedelta(seconds=1), holder, "UPDATE", "USER", "users/x", "u1")
    entry = TrailEntry(NOW, A, "delegate", A, "user.disable", "u1", "ok")
    rows = activity((entry,), (event,))
    assert ((A, "trail+keycloak", ("UPDATE users/x",)) in rows) == joined
    assert ((holder, "keycloak", ("UPDATE users/x",)) in rows) == (not joined)


def test_an_event_made_by_the_person_acting_is_still_joined_only_inside_the_window():
    late = AdminEvent(NOW - timedelta(seconds=121), PROVISIONER, "UPDATE", "USER", "users/x", "u1")
    agent = TrailEntry(NOW, "agent.benali", "agent", A, "user.update_details", "u1", "ok")
    assert activity((agent,), (late,)) == {("agent.benali", "trail", ()),
                                           (PROVISIONER, "keycloak", ("UPDATE users/x",))}


# --- the live realm's configuration against absolute rules ---------------------------------------------------
OWN_CLAIM = Mapper("adherent", "cimr-membership-mapper", "adherent")
SECURE = RealmConfig(
    clients=(ClientConfig("compte-adherent", pkce="S256", redirect_uris=("https://ca.cimr.ma/callback",),
                          default_scopes=("profile", "email"), optional_scopes=("phone",), mappers=(OWN_CLAIM,)),
             ClientConfig("portal", pkce="S256", redirect_uris=("https://portail.cimr.ma/auth/callback",),
                          mappers=(OWN_CLAIM,)),
             ClientConfig("account", public=True, pkce="S256", redirect_uris=("/realms/cimr/account/*",),
                          optional_scopes=("offline_access",)),
             ClientConfig("admin-cli", enabled=False, public=True, standard_flow=False, direct_grants=True),
             ClientConfig("provisioner", standard_flow=False)),
    scope_mappers={"profile": (Mapper("given name", "oidc-usermodel-attribute-mapper", "given_name"),)},
    delegate_roles=("query-groups", "query-users"),
    our_clients=("compte-adherent", "portal", "provisioner"))


def client(name: str, **changes) -> RealmConfig:
    """SECURE with one client changed."""
    return replace(SECURE, clients=tuple(replace(c, **changes) if c.client_id == name else c
                                         for c in SECURE.clients))


ATTRIBUTE_CLAIM = Mapper("adherent", "oidc-usermodel-attribute-mapper", "adherent")


@pytest.mark.parametrize("config, kind, subject", [
    # a claim the teleservices trust, from a user attribute the delegate can rewrite (#40259)
    (client("compte-adherent", mappers=(ATTRIBUTE_CLAIM,)), "claim-forgeable", "compte-adherent"),
    (client("portal", mappers=(OWN_CLAIM, Mapper("cats", "oidc-hardcoded-claim-mapper", "categories"))),
     "claim-forgeable", "portal"),
    (replace(SECURE, scope_mappers={"email": (ATTRIBUTE_CLAIM,)}), "claim-forgeable", "compte-adherent"),
    # E@syPaiement's "enough validators" from anything but our mapper: a delegate could claim a complete adherent
    (client("compte-adherent", mappers=(Mapper("ok", "oidc-usermodel-attribute-mapper",
                                               "easypaiement_enough_validators"),)), "claim-forgeable",
     "compte-adherent"),
    # the delegate role, directly or through composites, holding a role that skips fine-grained permissions
    (replace(SECURE, delegate_roles=("manage-users", "query-groups", "query-users")), "delegate-role-bypass",
     "delegate"),
    (replace(SECURE, delegate_roles=("query-users", "view-users")), "delegate-role-bypass", "delegate"),
    (replace(SECURE, delegate_roles=("realm-admin",)), "delegate-role-bypass", "delegate"),
    (replace(SECURE, delegate_roles=("impersonation", "query-users")), "delegate-role-bypass", "delegate"),
    # password grants on a public client (Keycloak's admin-cli left on) or on a teleservice
    (client("admin-cli", enabled=True), "direct-grant-public", "admin-cli"),
    (client("compte-adherent", direct_grants=True), "direct-grant-public", "compte-adherent"),
    (client("account", pkce=None), "public-client-no-pkce", "account"),
    (client("account", pkce="plain"), "public-client-no-pkce", "account"),
    (replace(SECURE, revoke_refresh_token=False), "refresh-token-reuse", "cimr"),
    (replace(SECURE, refresh_token_max_reuse=2), "refresh-token-reuse", "cimr"),
    (client("compte-adherent", optional_scopes=("phone", "offline_access")), "offline-access-teleservice",
     "compte-adherent"),
    (client("compte-adherent", default_scopes=("offline_access",)), "offline-access-teleservice", "compte-adherent"),
    (client("portal", redirect_uris=("https://portail.cimr.ma/*",)), "wildcard-redirect", "portal"),
    (client("account", implicit_flow=True), "wildcard-redirect", "account"),
    (replace(SECURE, brute_force_protected=False), "brute-force-off", "cimr"),
    (replace(SECURE, events_enabled=False), "events-off", "cimr"),
    (replace(SECURE, admin_events_enabled=False), "events-off", "cimr"),
])
def test_each_configuration_rule(config, kind, subject):
    assert kinds(data(config=SECURE)) == set()
    found = build_report(data(config=config)).findings
    assert [(f.kind, f.subject, f.severity) for f in found] == [(kind, subject, KINDS[kind][0])]


@pytest.mark.parametrize("kind, severity", [
    ("claim-forgeable", "critical"), ("delegate-role-bypass", "critical"), ("direct-grant-public", "high"),
    ("wildcard-redirect", "high"), ("brute-force-off", "high"), ("events-off", "high"),
    ("public-client-no-pkce", "medium"), ("refresh-token-reuse", "medium"), ("offline-access-teleservice", "medium"),
])
def test_configuration_severities(kind, severity):
    assert KINDS[kind][0] == severity


@pytest.mark.parametrize("config", [
    client("account", redirect_uris=("/realms/cimr/account/*",)),        # Keycloak's own clients: its own URIs
    client("compte-adherent", enabled=False, mappers=(ATTRIBUTE_CLAIM,), direct_grants=True),  # issues no token
    client("provisioner", direct_grants=True),                            # confidential, not a teleservice
    client("account", optional_scopes=("offline_access",)),              # offline access: teleservices only
    replace(SECURE, delegate_roles=("query-users", "query-groups", "query-clients", "query-realms")),
])
def test_what_the_configuration_rules_leave_alone(config):
    assert kinds(data(config=config)) == set()


def test_configuration_not_read_is_judged_nowhere():
    assert kinds(data(config=None)) == set()


def test_creator_and_fail_on_threshold():
    u = user("u1", leaf("eliquidation", "utilisateur"), "/adherents/x", direct=("eliquidation:utilisateur",))
    report = build_report(data(u, trail=(TrailEntry(NOW, A, "delegate", A, "user.create", "u1", "ok"),)))
    assert {h.created_by for h in report.holdings if h.username == "u1"} == {A}
    assert report.at_or_above("high") and not report.at_or_above("critical")
    assert "direct-role" in render_table(report) and render_csv(report).startswith("severity,kind,")


# --- E@syPaiement: 2 confirmations chosen before the second validator (the brochure's order) ----------------
ONE_VALIDATOR = (user("v1", leaf("easypaiement", "validateur")),)


@pytest.mark.parametrize("since_days, incomplete_days, reported", [
    (None, 7, True),    # not recorded (made outside our actions): nobody knows how long, reported at once
    (3, 7, False),      # the delegate is creating its second validator: not a finding yet
    (8, 7, True),       # it lasts: a finding
    (3, 2, True),       # N is a setting
    (0.5, 0, True)])
def test_two_confirmations_without_two_validators_is_a_finding_when_it_lasts(since_days, incomplete_days, reported):
    since = None if since_days is None else NOW - timedelta(days=since_days)
    report = build_report(data(*ONE_VALIDATOR, adherent=AdherentInfo(A, confirmations=2, incomplete_since=since)),
                          inactive_days=90, incomplete_days=incomplete_days)
    found = [f for f in report.findings if f.kind == "validators-missing"]
    assert bool(found) == reported
    if found and since is not None:
        assert f"since {since:%Y-%m-%d}" in found[0].detail and f"threshold {incomplete_days} days" in found[0].detail


def test_a_stale_since_on_a_complete_adherent_is_not_a_finding():
    two = (*ONE_VALIDATOR, user("v2", leaf("easypaiement", "validateur")))
    d = data(*two, adherent=AdherentInfo(A, confirmations=2, incomplete_since=NOW - timedelta(days=30)))
    assert ("validators-missing", A) not in kinds(d, inactive_days=90)


def test_users_about_to_be_disabled_as_dormant_and_those_the_timer_missed():
    soon = user("soon", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400))
    late = user("late", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400))
    fine = user("fine", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400))
    off = user("off", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400), enabled=False)
    found = kinds(data(soon, late, fine, off, last_logins={
        "soon": NOW - timedelta(days=170), "late": NOW - timedelta(days=181), "fine": NOW - timedelta(days=100)}),
        dormant_days=180)
    assert {k for k in found if k[0].startswith("dormant")} == {("dormant-soon", "soon"), ("dormant-overdue", "late")}
    assert ("dormant-soon", "d") not in found  # a delegate is never disabled by the timer


def test_a_user_the_dormant_rule_reports_is_not_also_reported_inactive():
    late = user("late", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400))
    quiet = user("quiet", leaf("eliquidation", "utilisateur"), created=NOW - timedelta(days=400))
    found = kinds(data(late, quiet, last_logins={"late": NOW - timedelta(days=200),
                                                 "quiet": NOW - timedelta(days=100)}),
                  inactive_days=90, dormant_days=180)
    assert {k for k in found if k[1] == "late"} == {("dormant-overdue", "late")}
    assert ("inactive", "quiet") in found  # not dormant yet: the 90-day heads-up still holds


def test_adherents_being_terminated_and_overdue_purges():
    recent = AdherentInfo(A, status="terminated", terminated_at=NOW - timedelta(days=3))
    assert ("adherent-terminated", A) in kinds(data(adherent=recent), grace_days=30)
    old = AdherentInfo(A, status="terminated", terminated_at=NOW - timedelta(days=45))
    assert ("purge-overdue", A) in kinds(data(adherent=old), grace_days=30)
    assert not {k for k in kinds(data()) if k[0] in ("adherent-terminated", "purge-overdue")}


def test_open_access_reviews_and_their_completion():
    from provisioner.audit.data import ReviewProgress

    running = ReviewProgress(7, "Revue annuelle", NOW + timedelta(days=5), 40, 30, ("10000002", "10000003"))
    late = ReviewProgress(8, "Revue E@syPaiement", NOW - timedelta(days=1), 10, 10, ())
    findings = {f.subject: f for f in build_report(data(reviews=(running, late))).findings if f.kind.startswith("review")}
    assert (findings["review 7"].kind, findings["review 8"].kind) == ("review-open", "review-overdue")
    assert "30/40 users reviewed (75%)" in findings["review 7"].detail and "10000002, 10000003" in findings["review 7"].detail
