"""The agent's actions on signed letters: delegate password, e-mail, replacement; suspension of an adherent."""

from __future__ import annotations

import pytest

from provisioner.adherents import (change_delegate_email, delegate_history, get_adherent, reactivate_adherent,
                                   replace_delegate, reset_delegate_password, suspend_adherent)
from provisioner.trail import events
from provisioner.errors import RuleViolation, TenantViolation, ValidationError
from provisioner.rules import Access
from provisioner.subscriptions import NewDelegate
from provisioner.tenancy import Actor
from provisioner.users import create_user, enable_user
from tests.oidc_flow import password_login
from tests.provisioning import DELEGATE_PASSWORD, USER_PASSWORD, make_user, new_user

pytestmark = pytest.mark.usefixtures("password_grant_client")



OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"


def totp_now(secret: str = OTP_SECRET) -> str:
    """RFC 6238 code (SHA-1, 6 digits, 30 s) for Keycloak's raw secret (its QR code shows it base32-encoded)."""
    import hashlib
    import hmac
    import struct
    import time

    mac = hmac.new(secret.encode(), struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


def ready_to_log_in(gw, login: str) -> None:
    """Skip the temporary-password step so the test can log in with the password it set."""
    user = gw.user_by_username(login)
    gw.update_user(user.id, {**gw.user_rep(user.id), "requiredActions": []})


def test_reset_delegate_password_is_temporary_and_ends_sessions(service_gw, services, agent, make_adherent, settings,
                                                                smtp_server):
    n = make_adherent()
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code == 200
    delegate = service_gw.user_by_username(n)
    assert service_gw.user_sessions(delegate.id)
    reset_delegate_password(service_gw, services, agent, n, "Reset2026", "Reset2026")
    assert service_gw.user_sessions(delegate.id) == []
    assert service_gw.user_rep(delegate.id)["requiredActions"] == ["UPDATE_PASSWORD"]
    old = password_login(settings, n, DELEGATE_PASSWORD)
    assert old.status_code != 200, old.text
    assert old.json().get("error_description") == "Invalid user credentials", old.text
    notice = smtp_server.bodies(to=delegate.email)[-1]
    assert "réinitialisé" in notice and "Reset2026" not in notice
    ev = events(services.db, adherent=n, action="delegate.reset_password")[0]
    assert ev.outcome == "ok" and ev.actor == agent.username and "Reset2026" not in repr(ev)


@pytest.mark.parametrize("password, confirm, field, message", [
    ("abc", "abc", "password", "de 5 à 10 caractères"),
    ("Reset202611", "Reset202611", "password", "de 5 à 10 caractères"),
    ("Reset#26", "Reset#26", "password", "que des lettres et des chiffres"),
    ("Reset2026", "Reset2027", "password_confirm", "ne sont pas identiques"),
])
def test_reset_delegate_password_refusals(service_gw, services, agent, adherent, password, confirm, field, message):
    with pytest.raises(ValidationError) as exc:
        reset_delegate_password(service_gw, services, agent, adherent, password, confirm)
    assert message in exc.value.errors[field].fr


def test_change_delegate_email_notifies_both_addresses(service_gw, services, agent, make_adherent, smtp_server):
    n = make_adherent()
    old = service_gw.user_by_username(n).email
    change_delegate_email(service_gw, services, agent, n, f"nouveau.{n}@atlas-textile.ma")
    assert service_gw.user_by_username(n).email == f"nouveau.{n}@atlas-textile.ma"
    assert smtp_server.messages(to=old) and smtp_server.messages(to=f"nouveau.{n}@atlas-textile.ma")
    ev = events(services.db, adherent=n, action="delegate.change_email")[0]
    assert ev.before == {"email": old} and ev.after == {"email": f"nouveau.{n}@atlas-textile.ma"}
    with pytest.raises(ValidationError) as exc:
        change_delegate_email(service_gw, services, agent, n, "pas-une-adresse")
    assert "n'est pas une adresse e-mail valide" in exc.value.errors["email"].fr
    assert get_adherent(service_gw, services, agent, n).delegate_email == f"nouveau.{n}@atlas-textile.ma"


def give_otp(admin_gw, user_id: str) -> None:
    """Plant a TOTP credential on the account (Keycloak's import is the only Admin API way to add one)."""
    rep = admin_gw.user_rep(user_id)
    groups = [g.path for g in admin_gw.user_groups(user_id)]
    otp = {"type": "otp", "userLabel": "Téléphone", "secretData": f'{{"value":"{OTP_SECRET}"}}',
           "credentialData": '{"subType":"totp","digits":6,"period":30,"algorithm":"HmacSHA1","counter":0}'}
    user = {k: rep[k] for k in ("id", "username", "enabled", "email", "firstName", "lastName", "attributes")}
    admin_gw.partial_import({"ifResourceExists": "OVERWRITE", "users": [{
        **user, "groups": groups, "credentials": [{"type": "password", "value": DELEGATE_PASSWORD}, otp]}]})


def test_replace_delegate_cuts_the_previous_one_off_and_keeps_history(service_gw, services, agent, make_adherent,
                                                                      settings, admin_gw):
    n = make_adherent()
    delegate = service_gw.user_by_username(n)
    give_otp(admin_gw, delegate.id)
    assert sorted(c["type"] for c in service_gw.credentials(delegate.id)) == ["otp", "password"]
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code != 200            # OTP required...
    with_otp = password_login(settings, n, DELEGATE_PASSWORD, totp_now())
    assert with_otp.status_code == 200, with_otp.text  # ...and working
    new = NewDelegate("Ouazzani", "Hicham", "DAF", f"hicham.{n}@atlas-textile.ma", "Hicham26", "Hicham26", "M")
    replace_delegate(service_gw, services, agent, n, new)

    old = password_login(settings, n, DELEGATE_PASSWORD, totp_now())         # old password and OTP: gone
    assert old.status_code != 200 and old.json()["error_description"] == "Invalid user credentials", old.text
    assert service_gw.user_sessions(delegate.id) == []                        # old sessions: gone
    assert [c["type"] for c in service_gw.credentials(delegate.id)] == ["password"]  # OTP etc.: gone
    new_login = password_login(settings, n, "Hicham26")
    assert new_login.status_code == 200, new_login.text
    kc = service_gw.user_by_username(n)
    assert (kc.last_name, kc.first_name, kc.email, kc.attr("fonction")) == ("Ouazzani", "Hicham",
                                                                             f"hicham.{n}@atlas-textile.ma", "DAF")
    history = delegate_history(services, agent, n)
    assert [(t.nom, t.until is None) for t in history] == [("Bennani", False), ("Ouazzani", True)]
    assert history[0].ended_by == agent.username and history[0].until <= history[1].since
    assert "Hicham26" not in repr(events(services.db, adherent=n, action="delegate.replace"))


def test_replace_delegate_refuses_a_bad_form(service_gw, services, agent, adherent):
    bad = NewDelegate("", "Hicham", "DAF", "hicham@", "Hi", "Hi")
    with pytest.raises(ValidationError) as exc:
        replace_delegate(service_gw, services, agent, adherent, bad)
    assert set(exc.value.errors) == {"delegate.nom", "delegate.email", "delegate.password"}


def test_suspension_refuses_every_login_and_reactivation_restores_exactly_those(service_gw, services, agent,
                                                                                make_adherent, settings):
    n = make_adherent()
    me = Actor.delegate(n)
    active = make_user(service_gw, services, me, n, "eliquidation")
    departed = make_user(service_gw, services, me, n, "compte-adherent")
    ready_to_log_in(service_gw, active.login)
    from provisioner.users import disable_user
    disable_user(service_gw, services, me, n, departed.login)

    assert suspend_adherent(service_gw, services, agent, n, "Cotisations impayées") == 2  # delegate + active user
    assert get_adherent(service_gw, services, agent, n).status == "suspended"
    for username, password in ((n, DELEGATE_PASSWORD), (active.login, USER_PASSWORD)):
        resp = password_login(settings, username, password)
        assert resp.status_code != 200 and resp.json()["error_description"] == "Account disabled"
    with pytest.raises(RuleViolation) as exc:  # the delegate (say, via an agent's hand) can change nothing
        create_user(service_gw, services, me, n, new_user())
    assert exc.value.field == "adherent" and "suspendu" in exc.value.message.fr

    assert reactivate_adherent(service_gw, services, agent, n) == 2
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code == 200
    assert password_login(settings, active.login, USER_PASSWORD).status_code == 200
    assert not service_gw.user_by_username(departed.login).enabled  # disabled before: stays disabled
    assert service_gw.user_by_username(active.login).attr("suspended_by_cimr") is None
    enable_user(service_gw, services, me, n, departed.login)


AGENT_ACTIONS = [
    lambda gw, s, actor, n: reset_delegate_password(gw, s, actor, n, "Reset2026", "Reset2026"),
    lambda gw, s, actor, n: change_delegate_email(gw, s, actor, n, "x@atlas.ma"),
    lambda gw, s, actor, n: replace_delegate(gw, s, actor, n, NewDelegate("A", "B", "C", "d@e.ma", "Abcde1",
                                                                             "Abcde1")),
    lambda gw, s, actor, n: suspend_adherent(gw, s, actor, n),
    lambda gw, s, actor, n: reactivate_adherent(gw, s, actor, n),
]


@pytest.mark.parametrize("action", AGENT_ACTIONS, ids=["reset", "email", "replace", "suspend", "reactivate"])
def test_signed_letter_actions_are_for_agents_only(service_gw, services, adherent, action):
    # Even the adherent's own delegate may not do them (a signed letter goes through CIMR).
    with pytest.raises(TenantViolation):
        action(service_gw, services, Actor.delegate(adherent), adherent)
    assert events(services.db, adherent=adherent, actor=adherent)[0].outcome == "refused"
    assert get_adherent(service_gw, services, Actor.agent("a"), adherent).status == "active"


def test_replace_delegate_rerun_after_a_crash_finishes_without_duplicating_history(service_gw, services, agent,
                                                                                  make_adherent, settings):
    from provisioner.adherents import _delegate_rep

    n = make_adherent()
    delegate = service_gw.user_by_username(n)
    new = NewDelegate("Lahlou", "Mehdi", "DRH", f"mehdi.{n}@atlas-textile.ma", "Mehdi2026", "Mehdi2026", "M")
    # The crash: details and password already changed, history and OTP clean-up not done.
    service_gw.update_user(delegate.id, _delegate_rep(service_gw.user_rep(delegate.id), new))
    service_gw.set_password(delegate.id, new.password, temporary=False)
    replace_delegate(service_gw, services, agent, n, new)
    replace_delegate(service_gw, services, agent, n, new)  # and once more: nothing changes
    assert [(t.nom, t.until is None) for t in delegate_history(services, agent, n)] == [("Bennani", False),
                                                                                        ("Lahlou", True)]
    assert password_login(settings, n, "Mehdi2026").status_code == 200


def test_replace_delegate_refused_by_keycloak_changes_nothing(service_gw, services, agent, make_adherent):
    n = make_adherent()
    same_password = NewDelegate("Lahlou", "Mehdi", "DRH", f"m.{n}@atlas.ma", DELEGATE_PASSWORD, DELEGATE_PASSWORD)
    with pytest.raises(RuleViolation) as exc:  # password history: Keycloak's final word
        replace_delegate(service_gw, services, agent, n, same_password)
    assert exc.value.field == "password"
    kc = service_gw.user_by_username(n)
    assert (kc.last_name, kc.email) == ("Bennani", f"delegue.{n}@atlas-textile.ma")  # undone
    assert [t.nom for t in delegate_history(services, agent, n)] == ["Bennani"]
