"""The pure part of provisioner/permissions.py: what Keycloak should hold per adherent, and the differences."""

from __future__ import annotations

import pytest

from provisioner.permissions import SCOPES, desired, differences, permission_name, policy_name

WANT = desired("dg", ["g3", "g1", "g2"], "pol")
GOOD = {"resources": ["g1", "g2", "g3"], "scopes": sorted(SCOPES), "policies": ["pol"]}


def test_names_and_the_desired_pair():
    assert (policy_name("1234567"), permission_name("1234567")) == ("delegate-1234567", "adherent-1234567")
    assert WANT == {"policy_groups": ["dg"], "permission": GOOD}
    assert "manage" not in SCOPES and "impersonate-members" not in SCOPES  # never rename/delete groups, no login-as


@pytest.mark.parametrize("policy_groups, permission, expected", [
    (["dg"], GOOD, []),
    (None, GOOD, ["policy missing"]),
    (["dg"], None, ["permission missing"]),
    (["other"], GOOD, ["policy grants ['other'], expected ['dg']"]),
    (["dg"], {**GOOD, "resources": ["g1"]}, ["permission resources: missing ['g2', 'g3'], extra []"]),
    (["dg"], {**GOOD, "resources": GOOD["resources"] + ["gB"]}, ["permission resources: missing [], extra ['gB']"]),
    (["dg"], {**GOOD, "scopes": ["view"]},
     ["permission scopes: missing ['manage-members', 'manage-membership', 'manage-membership-of-members', "
      "'view-members'], extra []"]),
    (["dg"], {**GOOD, "policies": ["pol", "someone"]}, ["permission policies: missing [], extra ['someone']"]),
])
def test_differences_name_exactly_what_is_wrong(policy_groups, permission, expected):
    assert differences(WANT, policy_groups, permission) == expected
