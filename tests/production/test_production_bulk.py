"""A Keycloak node killed in the middle of `provisioner bulk import` of 500 users: the import says what failed,
and a re-run leaves every user present exactly once."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time

from provisioner.settings import PROJECT_ROOT
from tests.production.conftest import unique

USERS = 500
COLUMNS = ["login", "civilite", "nom", "prenom", "fonction", "email", "telephone", "password", "teleservice"]


def users_csv(prefix: str) -> tuple[str, list[str]]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    logins = [f"{prefix}{i:03d}" for i in range(USERS)]
    for login in logins:
        writer.writerow([login, "Mme", "Bennani", "Salma", "Comptable", f"{login}@atlas.ma", "", "Bulk2026",
                         "compte-adherent"])
    return out.getvalue(), logins


def bulk_import(stack, numero: str, path, kill_at: int | None = None, node: int = 0
                ) -> tuple[int, dict, int | None]:
    """Run the CLI (through the proxy, like an operator); with ``kill_at``, SIGKILL ``node`` once that many rows
    are done. Returns (exit code, the JSON report, rows done when the node died)."""
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "--json", "bulk", "import", numero, str(path)],
                            env={**stack.env(), "PROVISIONER_AS": numero}, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at: list[int] = []

    def watch() -> None:
        for line in proc.stderr:
            if line.startswith("progress ") and kill_at is not None and not killed_at:
                done = int(line.split()[1].split("/")[0])
                if done >= kill_at:
                    stack.kill_node(node)
                    killed_at.append(done)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out = proc.stdout.read()
    code = proc.wait(timeout=600)
    watcher.join(timeout=10)
    return code, json.loads(out), (killed_at[0] if killed_at else None)


def present(gw, prefix: str) -> list[str]:
    return [u.username for u in gw.search_users(prefix) if u.username.startswith(prefix)]


def test_a_node_killed_mid_import_then_a_re_run_leaves_every_user_exactly_once(both_nodes, service_gw,
                                                                                make_adherent, tmp_path):
    stack = both_nodes
    n = make_adherent()
    prefix = unique("bk") + "."
    text, logins = users_csv(prefix)
    path = tmp_path / "users.csv"
    path.write_text(text, encoding="utf-8")

    # The node that is not the coordinator: the other one serves on at once (the coordinator's loss is
    # test_production_failover's case). Its in-flight requests die with it.
    victim = 1 - stack.coordinator()
    started = time.monotonic()
    code, report, killed_at = bulk_import(stack, n, path, kill_at=USERS // 4, node=victim)
    first_run = time.monotonic() - started
    assert killed_at is not None and killed_at < USERS, "the node was not killed during the import"
    # Every row is accounted for, and each failure names its line, its login and what went wrong.
    failed = {e["login"] for e in report["errors"]}
    assert len(report["created"]) + len(report["already_present"]) + len(failed) == USERS, report
    assert code == (3 if failed else 0)
    for error in report["errors"]:
        assert error["line"] >= 2 and error["login"].startswith(prefix) and error["message"], error

    code, again, _ = bulk_import(stack, n, path)
    assert code == 0 and not again.get("errors"), again
    # The re-run creates exactly what the first run did not, and finds the rest.
    assert set(again["created"]) | set(again["already_present"]) == set(logins)
    assert set(again["created"]) <= failed | (set(logins) - set(report["created"]) - set(report["already_present"]))
    holdings = present(service_gw, prefix)
    assert sorted(holdings) == sorted(logins), (len(holdings), len(set(holdings)))
    print(f"\nfirst run {first_run:.0f}s, node {victim + 1} killed at row {killed_at}: {len(report['created'])} created, "
          f"{len(failed)} failed; re-run created {len(again['created'])}; first failure: "
          f"{report['errors'][0] if report['errors'] else None}")
