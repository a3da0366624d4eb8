"""`provisioner` verbs: human output, --json, exit codes 0 ok / 1 error / 2 usage / 3 findings, errors naming
the field and the rule, the person acting recorded in the audit trail."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import update

from devstack.builders import numero
from provisioner.trail import events
from provisioner.cli import cli
from provisioner.db import subscriptions
from tests.provisioning import mailed_link



@pytest.fixture
def run(test_env):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), env=test_env, input=input, catch_exceptions=False)
    return invoke


def form_file(tmp_path, n: str, **delegate) -> str:
    data = {"company": {"numero": n, "raison_sociale": "Sahara Foods SA", "rc": "RC 998", "patente": "P 77"},
            "responsable": {"nom": "Berrada", "prenom": "Leila", "fonction": "PDG"},
            "delegate": {"nom": "Naciri", "prenom": "Yassine", "fonction": "RH", "email": f"y.{n}@sahara.ma"}
            | delegate}
    path = tmp_path / f"form-{n}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def cli_adherent(test_env, cli_agent, tmp_path_factory):
    """An adherent subscribed and approved through the CLI itself."""
    runner, n = CliRunner(), numero()
    path = form_file(tmp_path_factory.mktemp("forms"), n)
    out = runner.invoke(cli, ["--json", "subscription", "submit", path], env=test_env, input="Sahara26\nSahara26\n")
    assert out.exit_code == 0, out.output
    sub_id = json.loads(out.stdout)["id"]
    out = runner.invoke(cli, ["subscription", "receive", str(sub_id), "--as", cli_agent], env=test_env)
    assert out.exit_code == 0 and "paper received" in out.output, out.output  # the signed form arrived
    out = runner.invoke(cli, ["subscription", "approve", str(sub_id), "--as", cli_agent], env=test_env)
    assert out.exit_code == 0 and f"adherent {n} is active" in out.output, out.output
    return n


def test_subscription_verbs_and_the_person_in_the_trail(run, services, cli_adherent, cli_agent):
    out = run("--json", "subscription", "list", "--status", "approved")
    assert out.exit_code == 0
    assert cli_adherent in [s["adherent"] for s in json.loads(out.stdout)]
    ev = events(services.db, adherent=cli_adherent, action="subscription.approve")[0]
    assert (ev.actor, ev.actor_role, ev.outcome) == (cli_agent, "agent", "ok")


def test_a_bad_field_names_the_field_and_the_rule(run, tmp_path):
    out = run("subscription", "submit", form_file(tmp_path, numero(), email="pas-une-adresse"),
              input="Sahara26\nSahara26\n")
    assert out.exit_code == 1
    assert "error: delegate.email: « pas-une-adresse » n'est pas une adresse e-mail valide" in out.stderr
    out = run("--json", "subscription", "submit", form_file(tmp_path, "12"), input="ab\nab\n")
    assert out.exit_code == 1
    fields = json.loads(out.stdout)["fields"]
    assert set(fields) == {"company.numero", "delegate.password"}
    assert fields["delegate.password"]["en"] == "The password must be 5 to 10 characters long (it has 2)."


@pytest.mark.parametrize("args", [
    ("user", "list"),                                    # missing NUMERO
    ("user", "disable", "1234", "x"),                    # missing --as (and no PROVISIONER_AS)
    ("adherent", "confirmations", "1234", "deux", "--as", "x"),
    ("user", "create", "1234", "--login", "x", "--as", "x"),
])
def test_usage_errors_exit_2(run, args):
    assert run(*args).exit_code == 2


def test_overdue_pending_subscriptions_exit_3(run, services, tmp_path):
    n = numero()
    assert run("subscription", "submit", form_file(tmp_path, n), input="Sahara26\nSahara26\n").exit_code == 0
    long_ago = datetime.now(timezone.utc) - timedelta(hours=50)  # the promise counts from the signed paper
    with services.db.begin() as conn:
        conn.execute(update(subscriptions).where(subscriptions.c.adherent == n)
                     .values(submitted_at=long_ago, paper_received_at=long_ago))
    out = run("subscription", "list")
    assert out.exit_code == 3 and any(n in line and "OVERDUE" in line for line in out.stdout.splitlines())


def test_delegate_user_verbs(run, cli_adherent, services):
    n = cli_adherent
    create = ("user", "create", n, "--login", f"v1.{n}", "--nom", "Rami", "--prenom", "Aya", "--email",
              "aya@sahara.ma", "--teleservice", "easypaiement", "--power", "validateur", "--question", "Couleur ?",
              "--question", "Plat ?", "--as", n)
    out = run(*create, input="Sahara26\nSahara26\nBleu\nCouscous\n")
    assert out.exit_code == 0 and f"v1.{n}" in out.stdout, out.output
    out = run(*create, input="Sahara26\nSahara26\nBleu\nCouscous\n")
    assert out.exit_code == 1 and f"error: login: L'identifiant « v1.{n} » est déjà utilisé" in out.stderr

    out = run("--json", "user", "list", n, "--as", n)
    listed = json.loads(out.stdout)
    assert [u["login"] for u in listed["easypaiement"]] == [f"v1.{n}"]
    assert listed["easypaiement"][0]["access"]["powers"] == ["validateur"]
    assert "aya@sahara.ma" in run("user", "find", n, "aya", "--as", n).stdout
    assert "validateur" in run("user", "show", n, f"v1.{n}", "--as", n).stdout

    # The brochure's order: 2 confirmations before the second validator; the adherent is incomplete meanwhile.
    out = run("adherent", "confirmations", n, "2", "--as", n)
    assert out.exit_code == 0 and f"confirmations of {n}: 2" in out.stdout, out.output
    assert "Incomplete" in out.stdout and "Add a second validator" in out.stdout
    out = run("user", "access", n, f"v1.{n}", "--teleservice", "compte-adherent", "--as", n)
    assert out.exit_code == 1 and "error: teleservice: Un identifiant ne sert qu'un seul téléservice" in out.stderr
    out = run("user", "access", n, f"v1.{n}", "--teleservice", "easypaiement", "--power", "ordonnateur",
              "--power", "validateur", "--as", n)
    assert out.exit_code == 0 and "ordonnateur,validateur" in out.stdout
    assert run("user", "set-password", n, f"v1.{n}", "--as", n, input="Neuf2026\nNeuf2026\n").exit_code == 0
    assert run("user", "update", n, f"v1.{n}", "--nom", "Rami", "--prenom", "Aya", "--email", "aya2@sahara.ma",
               "--as", n).exit_code == 0
    # Its only validator leaves: the warning first, then disabled with --confirm.
    out = run("user", "disable", n, f"v1.{n}", "--as", n)
    assert out.exit_code == 1 and "n'aura plus que 0 validateur(s) actif(s)" in out.stderr, out.output
    assert "Run again with --confirm" in out.stderr
    assert run("user", "disable", n, f"v1.{n}", "--confirm", "--as", n).exit_code == 0
    for verb in ("enable", "unlock"):
        out = run(verb_args := "user", verb, n, f"v1.{n}", "--as", n)
        assert out.exit_code == 0, (verb_args, verb, out.output)
    assert [e.actor for e in events(services.db, target=f"v1.{n}")][:3] == [n, n, n]


def test_a_delegate_cannot_use_the_cli_on_another_adherent(run, cli_adherent, make_adherent):
    other = make_adherent()
    out = run("user", "list", other, "--as", cli_adherent)
    assert out.exit_code == 1 and "may not act" in out.stderr
    out = run("adherent", "suspend", cli_adherent, "--as", cli_adherent)
    assert out.exit_code == 1


def test_agent_verbs_on_an_adherent(run, make_adherent, cli_agent, tmp_path, smtp_server):
    n = make_adherent()
    assert run("adherent", "change-delegate-email", n, f"new.{n}@atlas.ma", "--as", cli_agent).exit_code == 0
    assert run("adherent", "reset-delegate-password", n, "--as", cli_agent,
               input="Reset2026\nReset2026\n").exit_code == 0
    delegate = tmp_path / "delegate.yaml"
    delegate.write_text(yaml.safe_dump({"nom": "Kabbaj", "prenom": "Ines", "fonction": "RH",
                                        "email": f"ines.{n}@atlas.ma"}), encoding="utf-8")
    out = run("--json", "adherent", "replace-delegate", n, str(delegate), "--as", cli_agent)
    assert out.exit_code == 0 and json.loads(out.stdout)["link_mailed"] is True, out.output
    assert mailed_link(smtp_server, f"ines.{n}@atlas.ma")  # the new delegate chooses its own password
    delegate.write_text(yaml.safe_dump({"nom": "Kabbaj", "prenom": "Ines", "fonction": "RH", "email": "i@atlas.ma",
                                        "password": "Ines2026"}), encoding="utf-8")
    refused = run("adherent", "replace-delegate", n, str(delegate), "--as", cli_agent)
    assert refused.exit_code == 2 and "unknown key 'delegate.password'" in refused.output  # the agent types none
    out = run("adherent", "history", n, "--as", cli_agent)
    assert "Bennani" in out.stdout and "Kabbaj" in out.stdout and "now" in out.stdout
    out = run("--json", "adherent", "categories", n, "--retire", "ouvriers", "--add", "retraites", "--as", cli_agent)
    assert out.exit_code == 0 and json.loads(out.stdout)["categories"] == ["cadres", "employes", "retraites"]
    unknown = run("adherent", "categories", n, "--retire", "artisans", "--as", cli_agent)
    assert unknown.exit_code == 2 and "'artisans' is not an active category" in unknown.output
    out = run("--json", "adherent", "suspend", n, "--reason", "Courrier du 12/11", "--as", cli_agent)
    assert json.loads(out.stdout) == {"adherent": n, "disabled": 1}
    assert "status=suspended" in run("adherent", "show", n, "--as", cli_agent).stdout
    assert run("adherent", "reactivate", n, "--as", cli_agent).exit_code == 0


def test_bulk_import_reports_bad_rows_and_exits_3(run, cli_adherent, tmp_path):
    from tests.test_bulk import HEADER, row

    path = tmp_path / "users.csv"
    path.write_text("\n".join([HEADER, row(f"b1.{cli_adherent}"), row("Bad Login")]) + "\n", encoding="utf-8")
    out = run("bulk", "import", cli_adherent, str(path), "--as", cli_adherent)
    assert out.exit_code == 3
    assert "created: 1, already present: 0, refused: 1" in out.stdout
    assert "line 3: Bad Login: login: L'identifiant doit compter 3 à 30 caractères" in out.stdout
    out = run("bulk", "import", cli_adherent, "docs/sample-users.csv", "--as", cli_adherent)
    assert out.exit_code == 0, out.output


def test_secret_questions_and_the_trail_verbs(run, cli_adherent, services):
    n = cli_adherent
    login = f"q1.{n}"
    assert run("user", "create", n, "--login", login, "--nom", "Idrissi", "--prenom", "Sami", "--email",
               "sami@sahara.ma", "--teleservice", "eliquidation", "--question", "Couleur ?", "--question", "Plat ?",
               "--as", n, input="Sahara26\nSahara26\nBleu\nCouscous\n").exit_code == 0
    out = run("user", "set-questions", n, login, "--question", "Ville ?", "--as", n, input="Rabat\n")
    assert out.exit_code == 1 and "error: secret_questions:" in out.stderr
    assert run("user", "set-questions", n, login, "--question", "Ville ?", "--question", "Sport ?", "--as", n,
               input="Rabat\nTennis\n").exit_code == 0
    out = run("trail", "--target", login)
    assert out.exit_code == 0
    assert [line.split()[2] for line in out.stdout.splitlines()] == ["ok", "refused", "ok"]
    assert "user.set_secret_questions" in out.stdout and "Tennis" not in out.stdout
    events_json = json.loads(run("--json", "trail", "--target", login, "--action", "user.create").stdout)
    assert events_json[0]["actor"] == n and events_json[0]["after"]["teleservice"] == "eliquidation"


@pytest.mark.parametrize("args, env_drop, kind, exit_code", [
    (("plan",), "KEYCLOAK_ADMIN_PASSWORD", "ConfigError", 1),           # realm verbs
    (("apply",), "KEYCLOAK_ADMIN_PASSWORD", "ConfigError", 1),
    (("audit", "--no-drift"), "AUDITOR_CLIENT_SECRET", "ConfigError", 1),  # the audit
    (("user", "list", "1234", "--as", "nobody.here"), None, "NotFound", 1),  # action verbs
    (("user", "list"), None, "UsageError", 2),                           # click's own usage errors
    (("adherent", "confirmations", "1234", "deux", "--as", "x"), None, "UsageError", 2),
])
def test_with_json_every_verbs_errors_are_json_on_stdout(test_env, args, env_drop, kind, exit_code):
    env = {k: v for k, v in test_env.items() if k != env_drop}
    out = CliRunner().invoke(cli, ["--json", *args], env=env | ({env_drop: ""} if env_drop else {}))
    assert out.exit_code == exit_code, out.output
    error = json.loads(out.stdout)
    assert error["error"] == kind and error["message"], error
    assert out.stderr == ""


def test_a_mismatched_password_confirmation_names_the_field(run, tmp_path):
    out = run("subscription", "submit", form_file(tmp_path, numero()), input="Sahara26\nSahara27\n")
    assert out.exit_code == 1 and "Aborted" not in out.output + out.stderr
    assert "error: delegate.password_confirm: Les deux mots de passe ne sont pas identiques." in out.stderr


@pytest.mark.parametrize("change, key", [
    (lambda d: d.update(colour="red"), "'colour'"),
    (lambda d: d["company"].update(capital="1 MDH"), "'company.capital'"),
    (lambda d: d["delegate"].update(password="Sahara26"), "'delegate.password'"),  # never in the file
    (lambda d: d["responsable"].pop("nom"), "missing key 'responsable.nom'"),
])
def test_a_bad_key_in_a_form_file_is_named(run, tmp_path, change, key):
    path = form_file(tmp_path, numero())
    data = yaml.safe_load(open(path, encoding="utf-8"))
    change(data)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, allow_unicode=True)
    out = run("subscription", "submit", path, input="Sahara26\nSahara26\n")
    assert out.exit_code == 2 and key in out.stderr and "TypeError" not in out.stderr
    assert "Delegate password" not in out.stderr  # refused before the password is asked


def test_tenant_refusals_are_bilingual(run, cli_adherent, make_adherent):
    other = make_adherent()
    out = run("user", "list", other, "--as", cli_adherent)
    assert out.exit_code == 1
    assert "ne peut pas agir sur" in out.stderr and "may not act on" in out.stderr


def test_the_password_is_checked_before_the_secret_answers_are_asked(run, cli_adherent):
    out = run("user", "create", cli_adherent, "--login", "qz.policy", "--nom", "Alami", "--prenom", "Sara",
              "--email", "s.alami@example.ma", "--teleservice", "compte-adherent", "--question", "Ville ?",
              "--question", "Animal ?", "--as", cli_adherent, input="ab\nab\n")
    assert out.exit_code == 1 and "error: password:" in out.stderr
    assert "Answer to" not in out.stderr  # no secret answer was asked for a password that cannot pass
