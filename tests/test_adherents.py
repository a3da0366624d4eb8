"""The agent's actions on signed letters: delegate password, e-mail, replacement; suspension of an adherent."""

from __future__ import annotations

import pytest

from devstack.builders import DELEGATE_PASSWORD, USER_PASSWORD, make_user, new_user
from provisioner.adherents import (change_delegate_email, delegate_history, get_adherent, reactivate_adherent,
                                   replace_delegate, reset_delegate_password, suspend_adherent)
from provisioner.context import Context
from provisioner.trail import events
from provisioner.errors import RuleViolation, TenantViolation, ValidationError
from provisioner.rules import Access
from provisioner.delegates import NewDelegate
from provisioner.tenancy import Actor
from provisioner.users import create_user, enable_user
from tests.oidc_flow import password_login
from provisioner.password_links import PATH
from tests.provisioning import choose_delegate_password, mailed_link

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
    reset_delegate_password(Context(service_gw, services, agent, n), "Reset2026", "Reset2026")
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
        reset_delegate_password(Context(service_gw, services, agent, adherent), password, confirm)
    assert message in exc.value.errors[field].fr


def test_change_delegate_email_notifies_both_addresses(service_gw, services, agent, make_adherent, smtp_server):
    n = make_adherent()
    old = service_gw.user_by_username(n).email
    change_delegate_email(Context(service_gw, services, agent, n), f"nouveau.{n}@atlas-textile.ma")
    assert service_gw.user_by_username(n).email == f"nouveau.{n}@atlas-textile.ma"
    assert smtp_server.messages(to=old) and smtp_server.messages(to=f"nouveau.{n}@atlas-textile.ma")
    ev = events(services.db, adherent=n, action="delegate.change_email")[0]
    assert ev.before == {"email": old} and ev.after == {"email": f"nouveau.{n}@atlas-textile.ma"}
    with pytest.raises(ValidationError) as exc:
        change_delegate_email(Context(service_gw, services, agent, n), "pas-une-adresse")
    assert "n'est pas une adresse e-mail valide" in exc.value.errors["email"].fr
    assert get_adherent(Context(service_gw, services, agent, n)).delegate_email == f"nouveau.{n}@atlas-textile.ma"


def give_otp(admin_gw, user_id: str) -> None:
    """Plant a TOTP credential on the account (Keycloak's import is the only Admin API way to add one)."""
    rep = admin_gw.user_rep(user_id)
    groups = [g.path for g in admin_gw.user_groups(user_id)]
    otp = {"type": "otp", "userLabel": "Téléphone", "secretData": f'{{"value":"{OTP_SECRET}"}}',
           "credentialData": '{"subType":"totp","digits":6,"period":30,"algorithm":"HmacSHA1","counter":0}'}
    user = {k: rep[k] for k in ("id", "username", "enabled", "email", "firstName", "lastName", "attributes")}
    admin_gw.partial_import({"ifResourceExists": "OVERWRITE", "users": [{
        **user, "groups": groups, "credentials": [{"type": "password", "value": DELEGATE_PASSWORD}, otp]}]})


def test_replace_delegate_cuts_the_previous_one_off_and_the_new_one_chooses_its_password(
        service_gw, services, agent, make_adherent, settings, admin_gw, smtp_server):
    n = make_adherent()
    delegate = service_gw.user_by_username(n)
    give_otp(admin_gw, delegate.id)
    assert sorted(c["type"] for c in service_gw.credentials(delegate.id)) == ["otp", "password"]
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code != 200            # OTP required...
    with_otp = password_login(settings, n, DELEGATE_PASSWORD, totp_now())
    assert with_otp.status_code == 200, with_otp.text  # ...and working
    email = f"hicham.{n}@atlas-textile.ma"
    mailed = replace_delegate(Context(service_gw, services, agent, n), NewDelegate("Ouazzani", "Hicham", "DAF", email,
                                                                          civilite="M"))
    assert mailed.sent

    old = password_login(settings, n, DELEGATE_PASSWORD, totp_now())         # old password and OTP: gone
    assert old.status_code != 200 and old.json()["error_description"] == "Invalid user credentials", old.text
    assert service_gw.user_sessions(delegate.id) == []                        # old sessions: gone
    assert service_gw.credentials(delegate.id) == []                          # nobody can log in until...
    (body,) = smtp_server.bodies(email)
    assert f"identifiant est votre numéro d'adhérent : {n}" in body and "mot de passe que vous avez choisi" not in body
    assert choose_delegate_password(service_gw, services, smtp_server, email, "Hicham26") == n  # ...the link
    new_login = password_login(settings, n, "Hicham26")
    assert new_login.status_code == 200, new_login.text
    kc = service_gw.user_by_username(n)
    assert (kc.last_name, kc.first_name, kc.email, kc.attr("fonction")) == ("Ouazzani", "Hicham", email, "DAF")
    history = delegate_history(services, agent, n)
    assert [(t.nom, t.until is None) for t in history] == [("Bennani", False), ("Ouazzani", True)]
    assert history[0].ended_by == agent.username and history[0].until <= history[1].since
    token = mailed_link(smtp_server, email)
    assert token not in repr(events(services.db, adherent=n)) and "Hicham26" not in repr(events(services.db, adherent=n))


def test_a_details_only_update_of_the_delegate_in_office_keeps_its_password(service_gw, services, agent,
                                                                           make_adherent, settings, smtp_server):
    n = make_adherent()
    email = f"delegue.{n}@atlas-textile.ma"  # the delegate in office (devstack/builders.py), new phone number
    same = NewDelegate("Bennani", "Salma", "Responsable RH", email, civilite="Mme", telephone="+212 522 99 88 77")
    assert replace_delegate(Context(service_gw, services, agent, n), same) is None
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code == 200
    assert service_gw.user_by_username(n).attr("telephone") == "+212 522 99 88 77"
    assert [t.nom for t in delegate_history(services, agent, n)] == ["Bennani"]
    assert not [b for b in smtp_server.bodies(email) if PATH in b]  # no link mailed
    entry = events(services.db, adherent=n, action="delegate.replace")[0]
    assert entry.after["details_only"] is True


def test_replace_delegate_refuses_a_bad_form(service_gw, services, agent, adherent):
    bad = NewDelegate("", "Hicham", "DAF", "hicham@")
    with pytest.raises(ValidationError) as exc:
        replace_delegate(Context(service_gw, services, agent, adherent), bad)
    assert set(exc.value.errors) == {"delegate.nom", "delegate.email"}


def test_suspension_refuses_every_login_and_reactivation_restores_exactly_those(service_gw, services, agent,
                                                                                make_adherent, settings):
    n = make_adherent()
    me = Actor.delegate(n)
    active = make_user(service_gw, services, me, n, "eliquidation")
    departed = make_user(service_gw, services, me, n, "compte-adherent")
    ready_to_log_in(service_gw, active.login)
    from provisioner.teleservice_users import disable_user
    disable_user(Context(service_gw, services, me, n), departed.login)

    assert suspend_adherent(Context(service_gw, services, agent, n), "Cotisations impayées") == 2  # delegate + active user
    assert get_adherent(Context(service_gw, services, agent, n)).status == "suspended"
    for username, password in ((n, DELEGATE_PASSWORD), (active.login, USER_PASSWORD)):
        resp = password_login(settings, username, password)
        assert resp.status_code != 200 and resp.json()["error_description"] == "Account disabled"
    with pytest.raises(RuleViolation) as exc:  # the delegate (say, via an agent's hand) can change nothing
        create_user(Context(service_gw, services, me, n), new_user())
    assert exc.value.field == "adherent" and "suspendu" in exc.value.message.fr

    assert reactivate_adherent(Context(service_gw, services, agent, n)) == 2
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code == 200
    assert password_login(settings, active.login, USER_PASSWORD).status_code == 200
    assert not service_gw.user_by_username(departed.login).enabled  # disabled before: stays disabled
    assert service_gw.user_by_username(active.login).attr("suspended_by_cimr") is None
    enable_user(Context(service_gw, services, me, n), departed.login)


AGENT_ACTIONS = [
    lambda gw, s, actor, n: reset_delegate_password(Context(gw, s, actor, n), "Reset2026", "Reset2026"),
    lambda gw, s, actor, n: change_delegate_email(Context(gw, s, actor, n), "x@atlas.ma"),
    lambda gw, s, actor, n: replace_delegate(Context(gw, s, actor, n), NewDelegate("A", "B", "C", "d@e.ma")),
    lambda gw, s, actor, n: suspend_adherent(Context(gw, s, actor, n)),
    lambda gw, s, actor, n: reactivate_adherent(Context(gw, s, actor, n)),
]


@pytest.mark.parametrize("action", AGENT_ACTIONS, ids=["reset", "email", "replace", "suspend", "reactivate"])
def test_signed_letter_actions_are_for_agents_only(service_gw, services, adherent, action):
    # Even the adherent's own delegate may not do them (a signed letter goes through CIMR).
    with pytest.raises(TenantViolation):
        action(service_gw, services, Actor.delegate(adherent), adherent)
    assert events(services.db, adherent=adherent, actor=adherent)[0].outcome == "refused"
    assert get_adherent(Context(service_gw, services, Actor.agent("a"), adherent)).status == "active"


def test_replace_delegate_rerun_after_a_crash_finishes_without_duplicating_history(service_gw, services, agent,
                                                                                  make_adherent, settings, smtp_server):
    from provisioner.delegates import replaced_rep

    n = make_adherent()
    delegate = service_gw.user_by_username(n)
    email = f"mehdi.{n}@atlas-textile.ma"
    new = NewDelegate("Lahlou", "Mehdi", "DRH", email, civilite="M")
    # The crash: details already changed; credentials, sessions, link and history not done.
    service_gw.update_user(delegate.id, replaced_rep(service_gw.user_rep(delegate.id), new))
    assert replace_delegate(Context(service_gw, services, agent, n), new).sent  # finishes the replacement
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code != 200
    assert replace_delegate(Context(service_gw, services, agent, n), new) is None  # and once more: nothing changes
    assert [(t.nom, t.until is None) for t in delegate_history(services, agent, n)] == [("Bennani", False),
                                                                                        ("Lahlou", True)]
    choose_delegate_password(service_gw, services, smtp_server, email, "Mehdi2026")
    assert password_login(settings, n, "Mehdi2026").status_code == 200


def test_a_password_link_works_once_and_is_replaced_by_a_newer_one(service_gw, services, agent, make_adherent,
                                                                   settings, smtp_server):
    from provisioner.password_links import LinkInvalid
    from provisioner.password_reset import choose_password
    from provisioner.adherents import send_delegate_link

    n = make_adherent()
    email = f"m.{n}@atlas.ma"
    replace_delegate(Context(service_gw, services, agent, n), NewDelegate("Lahlou", "Mehdi", "DRH", email))
    first = mailed_link(smtp_server, email)
    with pytest.raises(ValidationError) as bad:  # the policy, before Keycloak; the link is not spent
        choose_password(service_gw, services, first, "ab", "ab")
    assert set(bad.value.errors) == {"password"}
    assert send_delegate_link(Context(service_gw, services, agent, n)).sent  # a newer link replaces the first
    with pytest.raises(LinkInvalid):
        choose_password(service_gw, services, first, "Mehdi2026", "Mehdi2026")
    second = mailed_link(smtp_server, email)
    assert choose_password(service_gw, services, second, "Mehdi2026", "Mehdi2026") == n
    with pytest.raises(LinkInvalid):  # once only
        choose_password(service_gw, services, second, "Autre2026", "Autre2026")
    assert password_login(settings, n, "Mehdi2026").status_code == 200

    # Keycloak's final word (the account's password history): refused, and the link works again.
    assert send_delegate_link(Context(service_gw, services, agent, n)).sent
    third = mailed_link(smtp_server, email)
    with pytest.raises(RuleViolation) as exc:
        choose_password(service_gw, services, third, "Mehdi2026", "Mehdi2026")
    assert exc.value.field == "password" and "déjà été utilisé" in exc.value.message.fr
    assert choose_password(service_gw, services, third, "Autre2026", "Autre2026") == n
    assert password_login(settings, n, "Autre2026").status_code == 200


def test_a_link_the_mail_server_did_not_take_is_reported_and_sent_again(service_gw, services, agent, make_adherent,
                                                                        settings, smtp_server):
    from dataclasses import replace

    from provisioner.mailer import Mailer
    from devstack.ports import free_port
    from provisioner.adherents import send_delegate_link

    n = make_adherent()
    email = f"k.{n}@atlas.ma"
    mail_down = replace(services, mailer=Mailer("127.0.0.1", free_port(), "noreply@cimr.ma"))  # nobody listens
    mailed = replace_delegate(Context(service_gw, mail_down, agent, n), NewDelegate("Kettani", "Rita", "DRH", email))
    assert not mailed.sent and "unreachable" in mailed.error
    assert password_login(settings, n, DELEGATE_PASSWORD).status_code != 200  # the replacement holds
    assert events(services.db, adherent=n, action="delegate.replace")[0].after["link_mailed"] is False
    assert not smtp_server.bodies(email)
    assert send_delegate_link(Context(service_gw, services, agent, n)).sent  # the agent, once the server answers
    choose_delegate_password(service_gw, services, smtp_server, email, "Rita2026")
    assert password_login(settings, n, "Rita2026").status_code == 200


def test_an_agent_keeps_the_active_categories_and_retiring_one_flags_its_users(service_gw, services, agent,
                                                                              make_adherent, settings):
    from provisioner.adherents import set_categories
    from tests.oidc_flow import decode_unverified, password_token

    n = make_adherent()  # the default categories: cadres, employes, ouvriers
    me = Actor.delegate(n)

    def declarant(category: str):
        return make_user(service_gw, services, me, n, "teledeclaration", access=Access(
            "teledeclaration", ("formulaire-saisie",), user_type="interne", categories=(category,)))

    ouvrier, cadre = declarant("ouvriers"), declarant("cadres")
    change = set_categories(Context(service_gw, services, agent, n), ("cadres", "employes", " Retraites "))
    assert (change.added, change.retired, change.flagged) == (("retraites",), ("ouvriers",), (ouvrier.login,))
    assert get_adherent(Context(service_gw, services, agent, n)).categories == ("cadres", "employes", "retraites")
    assert events(services.db, adherent=n, action="adherent.categories")[0].after["flagged"] == [ouvrier.login]

    # The Télédéclaration form offers exactly the active ones; the token carries only those.
    with pytest.raises(ValidationError) as exc:
        declarant("ouvriers")
    assert "non active" in exc.value.errors["categories"].fr
    assert declarant("retraites").login
    ready_to_log_in(service_gw, ouvrier.login)
    claims = decode_unverified(password_token(settings, ouvrier.login, USER_PASSWORD))
    assert claims.get("categories", []) == []  # retired: no longer in its token
    assert set_categories(Context(service_gw, services, agent, n), ("cadres", "employes", "retraites")).added == ()

    with pytest.raises(RuleViolation) as none:
        set_categories(Context(service_gw, services, agent, n), ())
    assert none.value.field == "categories" and "Au moins une catégorie" in none.value.message.fr
    with pytest.raises(RuleViolation):
        set_categories(Context(service_gw, services, agent, n), ("cadres!",))
    with pytest.raises(TenantViolation):  # a signed letter goes through CIMR, never the delegate
        set_categories(Context(service_gw, services, me, n), ("cadres",))
    assert get_adherent(Context(service_gw, services, agent, n)).categories == ("cadres", "employes", "retraites")
