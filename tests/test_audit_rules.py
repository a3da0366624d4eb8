"""The audit's rules as pure functions over hand-made data (no Keycloak): one case per rule, and what is
deliberately not a finding."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from provisioner.audit import (Account, AdherentInfo, AdminEvent, AuditData, TrailEvent, build_report,
                               render_csv, render_table)

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
    t = TrailEvent(NOW, A, "delegate", A, "user.disable", "u1", "ok")
    k = AdminEvent(NOW - timedelta(seconds=1), "service-account-provisioner", "UPDATE", "USER", "users/x", "u1")
    stray = AdminEvent(NOW, "master:admin", "UPDATE", "REALM", "", None)
    rows = build_report(data(trail=(t,), admin_events=(k, stray))).activity
    joined = next(r for r in rows if r.source == "trail+keycloak")
    assert (joined.actor, joined.action, joined.keycloak) == (A, "user.disable", ("UPDATE users/x",))
    assert [r.actor for r in rows if r.source == "keycloak"] == ["master:admin"]


def test_creator_and_fail_on_threshold():
    u = user("u1", leaf("eliquidation", "utilisateur"), "/adherents/x", direct=("eliquidation:utilisateur",))
    report = build_report(data(u, trail=(TrailEvent(NOW, A, "delegate", A, "user.create", "u1", "ok"),)))
    assert {h.created_by for h in report.holdings if h.username == "u1"} == {A}
    assert report.at_or_above("high") and not report.at_or_above("critical")
    assert "direct-role" in render_table(report) and render_csv(report).startswith("severity,kind,")
