"""The security report in words (provisioner/audit/words.py): every finding the rules write is said in French, and
in English when chosen, with no code, raw key or slug; the report's own codes and English details are unchanged
(the CLI, CSV and JSON rely on them). The findings come from the real rules, on hand-made data."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from provisioner.audit import words
from provisioner.audit.data import AdherentInfo, ReviewProgress
from provisioner.audit.findings import KINDS
from provisioner.audit.report import build_report
from tests.page_words import codes_in
from tests.test_audit_rules import A, ATTRIBUTE_CLAIM, NOW, client, data, leaf, user

NAMES = {"teledeclaration": "Télédéclaration", "compte-adherent": "Compte Adhérent", "easypaiement": "E@syPaiement",
         "eliquidation": "e-liquidation@"}
OLD = NOW - timedelta(days=400)
SCENARIOS = [
    data(user("u1", leaf("teledeclaration", "fichier-preetabli"), leaf("eliquidation", "utilisateur"),
              direct=("compte-adherent:utilisateur",)),
         user("u2", leaf("eliquidation", "utilisateur", "87654321")), user("u3", adherent=None),
         replace(user("v1", leaf("easypaiement", "validateur"), created=NOW - timedelta(days=100)),
                 credential_types=("password",)),
         user("t1", leaf("teledeclaration", "fichier-preetabli"), categories=("cadres",)),
         adherent=AdherentInfo(A, confirmations=2, categories=("cadres", "ouvriers")), questions=set(),
         drift=("~ client portal", "+ realm-role auditor"), drift_note="computed: 2 difference(s) with realm/",
         reviews=(ReviewProgress(7, "Revue annuelle", NOW + timedelta(days=5), 40, 30, ("10000002",)),
                  ReviewProgress(8, "Revue E@syPaiement", NOW - timedelta(days=1), 10, 10, ())),
         second_factor_roles=("realm:delegate", "easypaiement:validateur"),
         last_logins={"u1": NOW - timedelta(days=170)}, config=replace(
             client("compte-adherent", mappers=(ATTRIBUTE_CLAIM,), direct_grants=True,
                    optional_scopes=("offline_access",)), brute_force_protected=False, events_enabled=False,
             revoke_refresh_token=False, delegate_roles=("manage-users",))),
    data(user("late", leaf("eliquidation", "utilisateur"), created=OLD),
         user("soon", leaf("eliquidation", "utilisateur"), created=OLD),
         last_logins={"late": NOW - timedelta(days=200), "soon": NOW - timedelta(days=170)},
         adherent=AdherentInfo(A, status="terminated", terminated_at=NOW - timedelta(days=45)),
         config=replace(client("account", pkce=None, implicit_flow=True), scope_mappers={"email": (ATTRIBUTE_CLAIM,)})),
    data(user("u1", leaf("eliquidation", "utilisateur")), adherent=AdherentInfo(A, status="suspended"),
         config=client("portal", redirect_uris=("https://portail.cimr.ma/*",))),
    data(adherent=AdherentInfo(A, status="terminated", terminated_at=NOW - timedelta(days=3))),
]
FINDINGS = [f for d in SCENARIOS for f in build_report(d, inactive_days=90, dormant_days=180).findings]


def test_the_scenarios_reach_most_rules():
    assert len({f.kind for f in FINDINGS}) >= 25, sorted(set(KINDS) - {f.kind for f in FINDINGS})


@pytest.mark.parametrize("finding", FINDINGS, ids=[f"{f.kind}-{f.subject}" for f in FINDINGS])
def test_each_finding_is_said_in_words(finding):
    said = words.detail(finding.kind, finding.detail, NAMES)
    assert said is not None, finding.detail
    assert not codes_in(said.fr), (finding.detail, said.fr)
    assert said.en and said.en != said.fr
    assert words.severity(finding.severity).fr != finding.severity or finding.severity == "information"


def test_held_roles_are_said_with_the_teleservices_names():
    held = next(f for f in FINDINGS if f.kind == "two-teleservices")
    said = words.detail(held.kind, held.detail, NAMES).fr
    assert "Télédéclaration (Fichier préétabli)" in said and "e-liquidation@ (Utilisateur)" in said
    said = words.detail("second-factor-missing", "holds realm:delegate; credentials: password (enrols at its next "
                        "login)", NAMES).fr
    assert said.startswith("pouvoirs : personne déléguée ; moyens de connexion : mot de passe")


def test_a_detail_the_table_does_not_know_is_not_shown():
    assert words.detail("inactive", "some new English sentence", NAMES) is None
    assert words.note("A brand new English note.").fr.startswith("Remarque technique")


@pytest.mark.parametrize("note, fragment", [
    ("computed: 2 difference(s) with realm/", "calculée : 2 différence(s)"),
    ("not computed (--no-drift)", "non calculée"),
    ("not computed: this read-only account may not read what `plan` reads (403)", "non calculée"),
    ("Login events are kept 180 days: 'inactive' cannot see logins older than that.", "gardées 180 jours"),
])
def test_the_drift_and_notes_in_words(note, fragment):
    assert fragment in words.note(note).fr and not re.search(r"`|--", words.note(note).fr)


def test_a_review_is_named_by_its_number():
    assert words.subject("review-open", "review 7").fr == "revue des accès n° 7"
    assert words.subject("inactive", "compta.atlas") == "compta.atlas"
    assert words.subject("direct-grant-public", "compte-adherent", NAMES) == "Compte Adhérent"


def test_the_advisory_findings_say_themselves_in_words():
    """Keycloak's advisories (provisioner/audit/advisories.py) give their detail in both languages themselves."""
    from provisioner.audit.advisories import SecurityFacts, load_register
    from provisioner.settings import PROJECT_ROOT

    facts = SecurityFacts("26.7.5", group_admin_roles={f"/adherents/{A}/x": frozenset({"view-users"})},
                          account_admin_roles={"service-account-provisioner": frozenset({"manage-users"})})
    report = build_report(replace(SCENARIOS[0], security=facts, register=load_register(PROJECT_ROOT / "realm")))
    ours = [f for f in report.findings if f.kind in ("keycloak-advisory", "keycloak-advisory-mitigated",
                                                      "admin-group-delegated")]
    assert {f.kind for f in ours} == {"keycloak-advisory", "keycloak-advisory-mitigated", "admin-group-delegated"}
    for f in ours:
        said = words.detail(f.kind, f.detail, NAMES, f.said)
        assert said is not None and said.en and said.en != said.fr
        assert not codes_in(said.fr), (f.detail, said.fr)
