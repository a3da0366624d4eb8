"""One teleservice catalogue: a fifth teleservice added to realm/ shows up everywhere, without touching code."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import pytest
import yaml
from click.testing import CliRunner

from portal.views.delegate import _tabs
from provisioner import rules
from provisioner.audit.data import Account, AdherentInfo, AuditData
from provisioner.audit.report import build_report
from provisioner.catalogue import Catalogue
from provisioner.cli import cli
from provisioner.realm.desired import desired_state
from provisioner.realm.schema import load_realm_spec
from provisioner.rules import Access
from provisioner.settings import PROJECT_ROOT
from teleservice.config import TeleserviceConfig
from teleservice.powers import role_labels

COTISATIONS = {"name": "Cotisations en ligne", "url": "${TELESERVICES_HOST}:8105", "secret": "dev-cotisations-secret",
               "roles": {"consultant": "Consultant : lit les appels de cotisations",
                         "gestionnaire": "Gestionnaire : règle les appels de cotisations"},
               "claims": ["adherent"]}


@pytest.fixture(scope="module")
def realm_dir(tmp_path_factory):
    """realm/ with a fifth teleservice, `cotisations`."""
    target = tmp_path_factory.mktemp("realm") / "realm"
    shutil.copytree(PROJECT_ROOT / "realm", target)
    clients = yaml.safe_load((target / "clients.yaml").read_text(encoding="utf-8"))
    clients["teleservices"]["cotisations"] = COTISATIONS
    (target / "clients.yaml").write_text(yaml.safe_dump(clients, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def catalogue(realm_dir) -> Catalogue:
    return load_realm_spec(realm_dir, "cimr").catalogue()


def test_the_catalogue_lists_it_with_its_powers(catalogue):
    assert catalogue.ids[-1] == "cotisations" and len(catalogue.ids) == 5
    t = catalogue["cotisations"]
    assert t.powers == ("consultant", "gestionnaire") and t.chooses_powers and not t.declares
    assert catalogue.powers()["cotisations"] == ("consultant", "gestionnaire")  # the adherent's group tree


def test_the_rules_take_its_powers_and_refuse_others(catalogue):
    assert rules.check_access(Access("cotisations", ("gestionnaire",)), (), catalogue) == {}
    assert rules.check_access(Access("cotisations"), (), catalogue)["powers"].fr == \
        "Choisissez Consultant et/ou Gestionnaire."
    assert "powers" in rules.check_access(Access("cotisations", ("validateur",)), (), catalogue)
    assert Access("cotisations", ("consultant",), "interne").normalised((), catalogue) == \
        Access("cotisations", ("consultant",))


def test_the_realm_gets_its_client_roles_restricted_login_and_claims(realm_dir):
    desired = desired_state(load_realm_spec(realm_dir, "cimr"))
    assert ("client", "cotisations") in desired and ("flow", "cimr-browser-cotisations") in desired
    assert {("client-role", "cotisations/consultant"), ("client-role", "cotisations/gestionnaire")} <= set(desired)
    assert desired[("mapper", "cotisations/adherent")]["protocolMapper"] == "cimr-membership-mapper"


def test_the_portal_gives_it_a_tab_with_its_powers(catalogue):
    tab = next(t for t in _tabs(catalogue) if t.teleservice == "cotisations")
    assert (tab.slug, tab.label, tab.chooses_powers, tab.declares) == ("cotisations", "Cotisations en ligne", True,
                                                                      False)
    assert catalogue["cotisations"].description("gestionnaire") == "Gestionnaire : règle les appels de cotisations"


def test_the_cli_offers_it(realm_dir):
    env = {"REALM_DIR": str(realm_dir), "KEYCLOAK_URL": "http://127.0.0.1:9", "PROVISIONER_CLIENT_SECRET": "x"}
    known = CliRunner().invoke(cli, ["--json", "user", "list", "1234", "--teleservice", "cotisations", "--as", "x"],
                               env=env)
    assert json.loads(known.stdout)["error"] != "UsageError"  # accepted: it fails further on (no Keycloak here)
    unknown = CliRunner().invoke(cli, ["--json", "user", "list", "1234", "--teleservice", "paie", "--as", "x"],
                                 env=env)
    assert unknown.exit_code == 2 and "cotisations" in json.loads(unknown.stdout)["message"]


def test_the_audit_reports_who_holds_its_powers(catalogue):
    path = "/adherents/12345/cotisations/gestionnaire"
    data = AuditData("cimr", datetime.now(timezone.utc),
                     (Account("u1", "gest.atlas", True, adherent="12345", teleservice="cotisations", groups=(path,)),),
                     (AdherentInfo("12345", "Atlas"),), {path: ("cotisations:gestionnaire",)}, catalogue.ids)
    holdings = build_report(data).holdings
    assert [(h.teleservice, h.role, h.username) for h in holdings] == [("cotisations", "gestionnaire", "gest.atlas")]


def test_the_reference_app_names_its_powers(realm_dir):
    config = TeleserviceConfig.from_env("cotisations", {"REALM_DIR": str(realm_dir)})
    assert config.base_url == "http://127.0.0.1:8105" and config.roles == ("consultant", "gestionnaire")
    assert role_labels(dict(config.role_descriptions), ("consultant",)) == ["Consultant : lit les appels de cotisations"]
