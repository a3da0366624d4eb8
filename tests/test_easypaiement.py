"""E@syPaiement's confirmations in the brochure's order: choose 2, then create the validators. The pure record of
"since when" first, then the actions, the token claims and the audit against the real Keycloak."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from provisioner.context import Context
from provisioner.easypaiement import SINCE, Completeness, parse_since, since_attribute

NOW = datetime(2026, 11, 29, 11, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("current, change", [
    (Completeness(2, 1), {SINCE: ["2026-11-29T11:00:00+00:00"]}),                 # becomes incomplete: now
    (Completeness(2, 0, NOW - timedelta(days=3)), None),                          # still incomplete: kept
    (Completeness(2, 2, NOW - timedelta(days=3)), {SINCE: []}),                   # complete again: removed
    (Completeness(1, 0, NOW - timedelta(days=3)), {SINCE: []}),                   # back to 1 confirmation
    (Completeness(1, 0), None), (Completeness(2, 2), None)])
def test_since_when_is_started_kept_and_ended(current, change):
    assert since_attribute(NOW, current) == change


def test_since_is_read_back_and_garbage_is_not_a_date():
    assert parse_since("2026-11-29T11:00:00+00:00") == NOW
    assert parse_since("2026-11-29T11:00:00") == NOW
    assert parse_since("hier") is None and parse_since(None) is None


# --- against the real Keycloak ---------------------------------------------------------------------------------
def easypaiement_claims(settings, spec, login: str) -> dict:
    """The access token E@syPaiement gets for ``login`` (browser flow with its TOTP), validated like the app does."""
    from teleservice.tokens import validate_access_token
    from tests.oidc_flow import Browser, redirect_uri
    from tests.test_teleservice_sso import jwks

    browser = Browser(settings.keycloak_url, settings.realm)
    result = browser.login("easypaiement", redirect_uri(spec, "easypaiement"), login, PASSWORD)
    assert result.code, result.error[:300]
    tokens = browser.exchange("easypaiement", spec.client("easypaiement").secret, redirect_uri(spec, "easypaiement"),
                              result.code, result.verifier)
    return validate_access_token(tokens["access_token"], jwks(settings),
                                 f"{settings.keycloak_url}/realms/{settings.realm}", "easypaiement")


PASSWORD = "Pass2026"


def validator(service_gw, admin_gw, services, me, n: str, powers=("validateur",)):
    """A validator created by the delegate's action, with a final password to log in to E@syPaiement."""
    from devstack.builders import make_user

    user = make_user(service_gw, services, me, n, "easypaiement", powers)
    admin_gw.set_password(user.id, PASSWORD, temporary=False)
    return user


def test_the_brochures_order_two_confirmations_then_the_validators(service_gw, admin_gw, services, make_adherent,
                                                                  settings, spec):
    from provisioner.adherents import set_easypaiement_confirmations
    from provisioner.adherents import completeness
    from provisioner.tenancy import Actor
    from provisioner.trail import events

    n = make_adherent()
    me = Actor.delegate(n)
    group = lambda: admin_gw.group_by_path(f"/adherents/{n}")  # noqa: E731
    # 1. "Choisir le nombre de confirmation (1 ou 2)": 2, before any validator exists.
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    after = set_easypaiement_confirmations(Context(service_gw, services, me, n), 2)
    assert (after.confirmations, after.validators, after.missing) == (2, 0, 2)
    assert "aucun validateur actif" in after.message.fr
    assert group().attr("easypaiement_confirmations") == "2"
    since = parse_since(group().attr(SINCE))
    assert since is not None and since >= before.replace(microsecond=0)
    assert events(services.db, adherent=n, action="adherent.easypaiement_confirmations")[0].outcome == "ok"

    # 2. the first validator: still incomplete, since when unchanged; E@syPaiement's token says so.
    v1 = validator(service_gw, admin_gw, services, me, n, ("ordonnateur", "validateur"))
    now = completeness(Context(service_gw, services, me, n))
    assert (now.validators, now.missing, now.since) == (1, 1, since)
    assert "n'a que 1 validateur actif" in now.message.fr
    claims = easypaiement_claims(settings, spec, v1.login)
    assert claims["easypaiement_confirmations"] == 2 and claims["easypaiement_enough_validators"] is False

    # 3. "refaites l'opération pour ajouter un deuxième validateur": complete, the record of since when is gone.
    v2 = validator(service_gw, admin_gw, services, me, n)
    assert completeness(Context(service_gw, services, me, n)).missing == 0
    assert group().attr(SINCE) is None
    claims = easypaiement_claims(settings, spec, v1.login)
    assert claims["easypaiement_confirmations"] == 2 and claims["easypaiement_enough_validators"] is True

    # 4. a validator leaves: allowed after the warning, and the adherent is incomplete again from now.
    from provisioner.errors import NeedsConfirmation
    from provisioner.teleservice_users import disable_user

    with pytest.raises(NeedsConfirmation) as exc:
        disable_user(Context(service_gw, services, me, n), v2.login)
    assert "n'aura plus que 1 validateur(s) actif(s)" in exc.value.message.fr
    assert admin_gw.user_by_username(v2.login).enabled
    left_at = datetime.now(timezone.utc).replace(microsecond=0)  # the record keeps whole seconds
    disable_user(Context(service_gw, services, me, n), v2.login, confirmed=True)
    assert not admin_gw.user_by_username(v2.login).enabled
    assert parse_since(group().attr(SINCE)) >= left_at  # from now, not from step 1 (steps 1-4 may take < 1 s)
    assert [e.outcome for e in events(services.db, target=v2.login, action="user.disable")][:2] == ["ok", "refused"]
    assert easypaiement_claims(settings, spec, v1.login)["easypaiement_enough_validators"] is False

    # 5. back to 1 confirmation: complete (one validator is enough), nothing left to report.
    set_easypaiement_confirmations(Context(service_gw, services, me, n), 1)
    assert group().attr(SINCE) is None
    claims = easypaiement_claims(settings, spec, v1.login)
    assert claims["easypaiement_confirmations"] == 1 and claims["easypaiement_enough_validators"] is True


def test_other_teleservices_get_no_easypaiement_claims(make_adherent, admin_gw, settings, spec):
    from teleservice.tokens import validate_access_token
    from tests import people
    from tests.oidc_flow import Browser, redirect_uri
    from tests.test_teleservice_sso import jwks

    _, login = people.create_user(admin_gw, people.adherent_of(admin_gw, make_adherent()), "compte-adherent",
                                  ("utilisateur",))
    browser = Browser(settings.keycloak_url, settings.realm)
    result = browser.login("compte-adherent", redirect_uri(spec, "compte-adherent"), login, people.PASSWORD)
    tokens = browser.exchange("compte-adherent", spec.client("compte-adherent").secret,
                              redirect_uri(spec, "compte-adherent"), result.code, result.verifier)
    claims = validate_access_token(tokens["access_token"], jwks(settings),
                                   f"{settings.keycloak_url}/realms/{settings.realm}", "compte-adherent")
    assert "adherent" in claims and not any(k.startswith("easypaiement_") for k in claims)


def test_a_delegate_cannot_write_the_group_attributes_the_claims_and_the_audit_read(settings, admin_gw, make_adherent,
                                                                                     password_grant_client):
    """The confirmations (claim) and since-when (audit) live on the adherent group, which the delegate's own token
    may read but not rewrite: Keycloak's per-adherent permissions give it no `manage` on the group itself."""
    from tests.test_keycloak_confinement import Api, delegate_token

    n = make_adherent()
    group = admin_gw.get(f"/groups/{admin_gw.group_by_path(f'/adherents/{n}').id}")
    api = Api(settings, delegate_token(settings, n))
    forged = {**group, "attributes": {**group["attributes"], "easypaiement_confirmations": ["1"],
                                      SINCE: ["2099-01-01T00:00:00+00:00"]}}
    assert api("PUT", f"/groups/{group['id']}", forged).status_code == 403
    after = admin_gw.get(f"/groups/{group['id']}")["attributes"]
    assert after.get("easypaiement_confirmations") == group["attributes"].get("easypaiement_confirmations")
    assert SINCE not in after
