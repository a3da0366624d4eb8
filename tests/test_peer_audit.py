"""A peer auditor's opinion of the realm applied from realm/: kcwarden, a configuration auditor of Keycloak realms.

A module of its own: the clients other modules create for their tests (a password-grant client...) live only as long
as their module, and would be findings here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_peer_auditor_finds_nothing_above_low(settings, realm, tmp_path):
    """kcwarden (a configuration auditor of Keycloak realms) on the realm applied from realm/: no High or Medium
    finding but its version check, which asks GitHub for the latest release (out of reach here)."""
    kcwarden = [str(Path(sys.executable).with_name("kcwarden"))]  # its console script, in our virtualenv
    dump = tmp_path / "realm.json"
    env = {**os.environ, "KCWARDEN_KEYCLOAK_PASSWORD": settings.admin_password}
    subprocess.run([*kcwarden, "download", "-r", settings.realm, "-m", "password", "-u", settings.admin_user,
                    "-o", str(dump), settings.keycloak_url], env=env, check=True, capture_output=True, timeout=120)
    audit = subprocess.run([*kcwarden, "audit", str(dump), "--min-severity", "MEDIUM", "--format", "json"],
                           check=True, capture_output=True, text=True, timeout=120)
    found = [(f["severity"], f["entity"], f["short_description"]) for f in json.loads(audit.stdout)
             if f["reporting_auditor"] != "KeycloakVersionShouldBeUpToDate"]
    assert found == []
