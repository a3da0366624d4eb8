"""Bulk onboarding: bad rows reported with line and reason, good rows created, re-runs create only what is
missing — including after the process is killed mid-file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from provisioner import secret_questions
from provisioner.bulk import COLUMNS, import_users, parse_csv
from provisioner.context import Context
from provisioner.errors import TenantViolation
from provisioner.settings import PROJECT_ROOT
from provisioner.tenancy import Actor


HEADER = ",".join(COLUMNS[:17])
SAMPLE = (PROJECT_ROOT / "docs" / "sample-users.csv").read_text(encoding="utf-8")


def row(login: str, teleservice: str = "compte-adherent", powers: str = "", password: str = "Bulk2026",
        email: str | None = None, user_type: str = "", provider: str = "", categories: str = "",
        q: tuple[str, str, str, str] = ("Couleur ?", "Bleu", "Plat ?", "Tajine"), nom: str = "Amrani") -> str:
    email = f"{login}@atlas.ma" if email is None else email
    return ",".join([login, "M", nom, "Ali", "Agent", email, "", password, teleservice, powers, user_type, provider,
                     categories, *q])


def test_sample_file_parses_cleanly():
    rows, errors = parse_csv(SAMPLE)
    assert errors == [] and len(rows) == 6
    line, fid = rows[1]
    assert line == 3 and fid.access.user_type == "externe" and fid.access.categories == ("cadres", "employes")


@pytest.mark.parametrize("text, line, field, message", [
    ("login,nom\nabc,def\n", 1, "prenom", "Colonne obligatoire « prenom » absente."),
    (HEADER + ",couleur\n", 1, "couleur", "Colonne inconnue « couleur »"),
])
def test_bad_header_is_reported_on_line_one(text, line, field, message):
    rows, errors = parse_csv(text)
    assert rows == []
    assert (errors[0].line, errors[0].field) == (line, field) and message in errors[0].message.fr


BAD_ROWS = [
    (row("Bad Login"), "login", "L'identifiant doit compter 3 à 30 caractères"),
    (row("ok.pwd", password="abc"), "password", "de 5 à 10 caractères (il en a 3)"),
    (row("ok.pwd2", password="abc-def"), "password", "que des lettres et des chiffres"),
    (row("ok.mail", email="nope"), "email", "n'est pas une adresse e-mail valide"),
    (row("ok.ts", teleservice="paie"), "teleservice", "Téléservice inconnu"),
    (row("ok.pow", powers="validateur"), "powers", "Un identifiant ne sert qu'un téléservice"),
    (row("ok.ep", teleservice="easypaiement"), "powers", "Choisissez Ordonnateur et/ou Validateur."),
    (row("ok.td", teleservice="teledeclaration", powers="fichier-preetabli", user_type="externe"), "provider",
     "indiquez le nom du prestataire"),
    (row("ok.cat", teleservice="teledeclaration", powers="fichier-preetabli", user_type="interne",
         categories="cadres|marins"), "categories", "Catégorie « marins » non active"),
    (row("ok.q", q=("Couleur ?", "Bleu", "", "")), "secret_questions", "au moins deux questions"),
    (row("ok.nom", nom=""), "nom", "Ce champ est obligatoire."),
]


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_created(service_gw, services, make_adherent):
    n = make_adherent()
    me = Actor.delegate(n)
    good = [row(f"g{n}a"), row(f"g{n}b", "easypaiement", "ordonnateur|validateur", q=("", "", "", ""))]
    lines = [HEADER, good[0], *[r for r, _, _ in BAD_ROWS], good[1], good[0]]
    report = import_users(Context(service_gw, services, me, n), "\n".join(lines) + "\n")
    assert sorted(report.created) == [f"g{n}a", f"g{n}b"]
    expected = [(i + 3, field) for i, (_, field, _) in enumerate(BAD_ROWS)] + [(len(lines), "login")]
    assert [(e.line, e.field) for e in report.errors] == expected
    for error, (_, _, message) in zip(report.errors, BAD_ROWS):
        assert message in error.message.fr and error.message.en
    assert "déjà présent ligne 2" in report.errors[-1].message.fr
    kc = service_gw.user_by_username(f"g{n}b")
    assert sorted(g.path for g in service_gw.user_groups(kc.id)) == [
        f"/adherents/{n}/easypaiement/ordonnateur", f"/adherents/{n}/easypaiement/validateur"]
    assert secret_questions.questions_of(services.db, service_gw.user_by_username(f"g{n}a").id) == ["Couleur ?",
                                                                                                   "Plat ?"]

    # Fix one bad row and re-run the same file: only the fixed user is created.
    fixed = [HEADER, good[0], row("ok.pwd" + n), good[1]]
    again = import_users(Context(service_gw, services, me, n), "\n".join(fixed) + "\n")
    assert again.created == ["ok.pwd" + n] and sorted(again.already_present) == [f"g{n}a", f"g{n}b"]
    assert again.errors == []


def test_a_login_taken_by_another_adherent_is_a_row_error(service_gw, services, make_adherent):
    a, b = make_adherent(), make_adherent()
    import_users(Context(service_gw, services, Actor.delegate(a), a), f"{HEADER}\n{row('taken' + a)}\n")
    report = import_users(Context(service_gw, services, Actor.delegate(b), b), f"{HEADER}\n{row('taken' + a)}\n")
    assert report.created == [] and report.errors[0].line == 2
    assert report.errors[0].message.fr == f"L'identifiant « taken{a} » est déjà utilisé : choisissez-en un autre."


def test_bulk_import_is_tenant_checked(service_gw, services, make_adherent):
    a, b = make_adherent(), make_adherent()
    with pytest.raises(TenantViolation):
        import_users(Context(service_gw, services, Actor.delegate(a), b), f"{HEADER}\n{row('x' + b)}\n")
    assert service_gw.user_by_username("x" + b) is None


# --- crash and re-run, through the CLI in a subprocess -----------------------------------------------------------
def run_cli(test_env, *args, **kw):
    env = {**test_env, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "provisioner", *args], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_killed_mid_file_then_rerun_creates_only_what_is_missing(service_gw, services, make_adherent, test_env,
                                                                 cli_agent, tmp_path):
    n = make_adherent()
    total = 40
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("\n".join([HEADER] + [row(f"c{n}u{i:03d}") for i in range(total)]) + "\n", encoding="utf-8")
    args = ("--json", "bulk", "import", n, str(csv_file), "--concurrency", "2", "--as", cli_agent)

    proc = run_cli(test_env, *args)
    done = 0
    deadline = time.monotonic() + 120
    while done < 8 and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("progress "):
            done = int(line.split()[1].split("/")[0])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 8 <= done < total, "the import finished before it could be killed"
    present = {u.username for u in service_gw.users_by_attribute("adherent", n)} - {n}
    assert 8 <= len(present) < total

    rerun = run_cli(test_env, *args)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    result = json.loads(out)
    assert len(result["created"]) + len(result["already_present"]) == total
    # (Keycloak may still finish a POST the killed process had sent: such a user counts as present too.)
    assert present <= set(result["already_present"])
    assert not set(result["created"]) & set(result["already_present"])
    users = [u for u in service_gw.users_by_attribute("adherent", n) if u.username != n]
    assert sorted(u.username for u in users) == [f"c{n}u{i:03d}" for i in range(total)]  # none missing, no extra
    assert secret_questions.users_with_questions(services.db, [u.id for u in users]) == {u.id for u in users}
