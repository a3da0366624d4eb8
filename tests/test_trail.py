"""The audit trail: every action, allowed or refused, with the person, adherent, target, before/after, time and
outcome — and never a password nor a secret answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from devstack.builders import ANSWERS, DELEGATE_PASSWORD, USER_PASSWORD, make_user
from provisioner.adherents import reset_delegate_password
from provisioner.context import Context
from provisioner.trail import events, scrub
from provisioner.db import audit_events
from provisioner.errors import TenantViolation, ValidationError
from provisioner.tenancy import Actor
from provisioner.teleservice_users import disable_user
from provisioner.users import set_password



def test_allowed_and_refused_actions_are_recorded_with_the_person(service_gw, services, make_adherent, agent):
    n = make_adherent()
    me = Actor.delegate(n)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    user = make_user(service_gw, services, me, n, "easypaiement", ("ordonnateur",))
    disable_user(Context(service_gw, services, me, n), user.login)
    with pytest.raises(ValidationError):
        set_password(Context(service_gw, services, me, n), user.login, "x", "x")
    with pytest.raises(TenantViolation):
        disable_user(Context(service_gw, services, Actor.delegate("99999999"), n), user.login)

    trail = list(reversed(events(services.db, target=user.login)))
    assert [(e.action, e.actor, e.actor_role, e.adherent, e.outcome) for e in trail] == [
        ("user.create", n, "delegate", n, "ok"),
        ("user.disable", n, "delegate", n, "ok"),
        ("user.set_password", n, "delegate", n, "refused"),
        ("user.disable", "99999999", "delegate", n, "refused"),
    ]
    assert trail[0].after["powers"] == ["ordonnateur"] and trail[0].after["teleservice"] == "easypaiement"
    assert (trail[1].before, trail[1].after) == ({"enabled": True}, {"enabled": False})
    assert "ValidationError" in trail[2].detail and "TenantViolation" in trail[3].detail
    for e in trail:
        assert start <= e.at.replace(tzinfo=timezone.utc) <= datetime.now(timezone.utc)


def test_no_password_nor_answer_ever_reaches_the_trail(service_gw, services, make_adherent, agent):
    n = make_adherent()
    make_user(service_gw, services, Actor.delegate(n), n)
    reset_delegate_password(Context(service_gw, services, agent, n), "Secret26", "Secret26")
    with services.db.connect() as conn:
        dump = repr(list(conn.execute(select(audit_events))))
    for secret in (DELEGATE_PASSWORD, USER_PASSWORD, "Secret26", *(a.answer for a in ANSWERS)):
        assert secret not in dump


def test_scrub_removes_secret_keys_at_any_depth():
    assert scrub({"login": "x", "password": "p", "nested": [{"answer": "a", "question": "q"}],
                  "credentials": [{"value": "v"}]}) == {"login": "x", "nested": [{"question": "q"}]}


def test_every_action_has_words_for_the_journals():
    import re

    from provisioner.settings import PROJECT_ROOT
    from provisioner.trail import ACTIONS

    sources = [path.read_text() for path in (PROJECT_ROOT / "provisioner").rglob("*.py")]
    used = {m for text in sources  # audited(db, actor, "user.create", ...) and record(db, actor, "user...", ...)
            for m in re.findall(r'(?:audited|record)\(\s*[\w.]+,\s*[\w.()\s",]+?,\s*"([a-z_]+\.[a-z_]+)"', text)}
    used |= {m for text in sources for m in re.findall(r'ctx\.audited\(\s*"([a-z_]+\.[a-z_]+)"', text)}
    used |= {f"staff.create.{role}" for role in ("agent", "auditor")}  # f"staff.create.{member.role}"
    assert len(used) > 20 and "user.reset_questions" in used  # the pattern finds the actions
    assert sorted(used - set(ACTIONS)) == []


def test_reads_record_only_their_refusals(service_gw, services, make_adherent):
    from provisioner.users import get_user, list_users

    n = make_adherent()
    me = Actor.delegate(n)
    user = make_user(service_gw, services, me, n, "compte-adherent")
    list_users(Context(service_gw, services, me, n))
    get_user(Context(service_gw, services, me, n), user.login)
    actions = [e.action for e in events(services.db, adherent=n)]
    assert actions[0] == "user.create" and not {"user.list", "user.show"} & set(actions)
    with pytest.raises(TenantViolation):  # an attempt on another adherent's users stays in the trail
        list_users(Context(service_gw, services, Actor.delegate("99999999"), n))
    refused = events(services.db, adherent=n, action="user.list")
    assert [(e.actor, e.outcome) for e in refused] == [("99999999", "refused")]
