"""Access review campaigns (provisioner/reviews.py, `provisioner review`): a whole campaign against the real
Keycloak — opened by the security team for two adherents, a delegate keeps one user and revokes another (disabled,
sessions ended) and cannot decide for the other adherent, reminders go out once at the set days, the deadline
disables the unreviewed or only reports them — and the pure rules (fields, due reminders, completion, CSV)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from provisioner import access_reviews, reviews
from provisioner.cli import cli
from provisioner.context import Context
from provisioner.errors import NotAllowed, RuleViolation, TenantViolation, ValidationError
from provisioner.tenancy import Actor
from provisioner.context import resolve_actor
from provisioner.trail import events
from tests.oidc_flow import password_login
from tests.people import PASSWORD, adherent_of, create_user

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


# --- pure ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, kwargs, fragment", [
    ("name", {"name": " "}, "obligatoire"),
    ("deadline", {"deadline": None}, "obligatoire"),
    ("deadline", {"deadline": NOW - DAY}, "dans le futur"),
    ("deadline", {"deadline": NOW + 400 * DAY}, "moins d'un an"),
    ("on_deadline", {"on_deadline": "delete"}, "désactiver les utilisateurs non revus"),
    ("reminder_days", {"reminder_days": "7,x"}, "de 1 à 90"),
    ("reminder_days", {"reminder_days": "0"}, "de 1 à 90"),
    ("reminder_days", {"reminder_days": "1,2,3,4,5,6"}, "5 jours de rappel au plus"),
    ("adherents", {"adherents": []}, "au moins un numéro"),
    ("adherents", {"adherents": ["12a4"]}, "12a4"),
])
def test_each_field_of_a_campaign_is_checked(field, kwargs, fragment):
    good = {"name": "Revue T4 2026", "deadline": NOW + 14 * DAY, "on_deadline": "disable", "reminder_days": "7,1",
            "adherents": None}
    assert access_reviews.check_campaign(**good, now=NOW) == {}
    errors = access_reviews.check_campaign(**(good | kwargs), now=NOW)
    assert list(errors) == [field] and fragment in errors[field].fr and errors[field].en


@pytest.mark.parametrize("typed, deadline, problem", [
    ("2026-12-31", datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc), None),   # a date: the end of that day
    ("2026-12-31T12:00", datetime(2026, 12, 31, 12, tzinfo=timezone.utc), None),     # a time: itself, UTC
    ("", None, None),                                                                # nothing: left to "required"
    ("31/12/2026", None, access_reviews.BAD_DEADLINE),
    ("bientôt", None, access_reviews.BAD_DEADLINE),
])
def test_a_deadline_as_typed(typed, deadline, problem):
    assert access_reviews.parse_deadline(typed) == (deadline, problem)


def test_a_close_before_the_deadline_is_early():
    assert campaign().before_deadline(NOW) and not campaign().before_deadline(NOW + 10 * DAY)
    assert not campaign(status=access_reviews.CLOSED).before_deadline(NOW)


def campaign(**over) -> access_reviews.Campaign:
    return access_reviews.Campaign(**({"id": 1, "name": "T", "opened_by": "aud", "opened_at": NOW, "deadline": NOW + 10 * DAY,
                                "on_deadline": "disable", "reminder_days": (7, 1), "scope": None,
                                "status": "open"} | over))


@pytest.mark.parametrize("at, already, due", [
    (NOW + 2 * DAY, set(), ()),                       # 8 days left: none yet
    (NOW + 3 * DAY, set(), (7,)),                     # 7 days left
    (NOW + 3 * DAY, {7}, ()),                         # already sent
    (NOW + 9 * DAY + timedelta(hours=1), {7}, (1,)),  # the last day
    (NOW + 9 * DAY + timedelta(hours=1), set(), (7, 1)),  # cron missed the 7-day one: one mail stands for both
    (NOW + 10 * DAY, set(), ()),                      # the deadline has passed: the close's job now
])
def test_reminders_are_due_at_the_set_days_once(at, already, due):
    assert access_reviews.reminders_due(campaign(), already, at) == due
    assert access_reviews.reminders_due(campaign(status="closed"), set(), at) == ()


def test_snapshot_keeps_enabled_teleservice_users_of_the_scope_with_their_own_powers():
    groups = [{"id": "top", "name": "adherents", "parentId": None}, {"id": "a", "name": "1111", "parentId": "top"},
              {"id": "a-ep", "name": "easypaiement", "parentId": "a"},
              {"id": "a-ord", "name": "ordonnateur", "parentId": "a-ep"},
              {"id": "a-val", "name": "validateur", "parentId": "a-ep"},
              {"id": "b", "name": "2222", "parentId": "top"}, {"id": "b-ep", "name": "easypaiement", "parentId": "b"},
              {"id": "b-val", "name": "validateur", "parentId": "b-ep"}]

    def user(uid, adherent, groups_, enabled=True, teleservice="easypaiement"):
        attrs = {"adherent": [adherent]} | ({"teleservice": [teleservice]} if teleservice else {})
        return {"id": uid, "username": uid, "enabled": enabled, "attributes": attrs, "groups": groups_}

    listed = [user("v1", "1111", ["a-ord", "a-val", "b-val"]),   # b-val: another adherent's group, not its power
              user("off", "1111", ["a-ord"], enabled=False), user("deleg", "1111", ["a"], teleservice=None),
              user("other", "2222", ["b-val"])]
    found = access_reviews.snapshot(listed, groups, {"1111"}, ("easypaiement", "compte-adherent"))
    assert found == [access_reviews.Snapshot("1111", "v1", "v1", "easypaiement", ("ordonnateur", "validateur"))]


def item(i, adherent, decision=None, closing=None):
    return access_reviews.Item(i, 1, adherent, f"id{i}", f"u{i}", "compte-adherent", ("utilisateur",), decision,
                        "d" if decision else None, NOW if decision else None, closing)


def test_completion_and_csv_per_adherent_and_per_decision():
    its = [item(1, "1111", "keep"), item(2, "1111", "revoke"), item(3, "1111", closing="disabled"),
           item(4, "2222", closing="reported")]
    assert access_reviews.completion(its) == [access_reviews.Completion("1111", 3, 1, 1, 1, 1, 0),
                                       access_reviews.Completion("2222", 1, 0, 0, 1, 0, 1)]
    rows = list(csv.DictReader(io.StringIO(access_reviews.render_csv(campaign(), its))))
    assert [(r["adherent"], r["users"], r["kept"], r["revoked"], r["pending"], r["completion_percent"])
            for r in rows] == [("1111", "3", "1", "1", "1", "66"), ("2222", "1", "0", "0", "1", "0")]
    rows = list(csv.DictReader(io.StringIO(access_reviews.render_csv(campaign(), its, "decisions"))))
    assert [(r["login"], r["decision"], r["at_deadline"]) for r in rows] == [
        ("u1", "keep", ""), ("u2", "revoke", ""), ("u3", "pending", "disabled"), ("u4", "pending", "reported")]
    page = access_reviews.render_html(campaign(), its)
    assert "<script" not in page and "u3" in page and "66 %" in page
    assert "conservé / kept" in page and "désactivé / disabled" in page and ">keep<" not in page


# --- against Keycloak ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(make_adherent, admin_gw, service_gw, staff):
    """Adherents A and B in the campaign, C outside it; users with a final password (they log in)."""
    a, b, c = make_adherent(), make_adherent(), make_adherent()
    logins = {}
    for key, numero, client, roles, enabled in [
            ("a_keep", a, "compte-adherent", ("utilisateur",), True),
            ("a_revoke", a, "easypaiement", ("ordonnateur",), True),
            ("a_silent", a, "eliquidation", ("utilisateur",), True),
            ("a_disabled", a, "compte-adherent", ("utilisateur",), False),
            ("b_silent", b, "teledeclaration", ("fichier-preetabli",), True),
            ("c_user", c, "compte-adherent", ("utilisateur",), True)]:
        logins[key] = create_user(admin_gw, adherent_of(admin_gw, numero), client, roles, enabled=enabled,
                                  **({"user_type": "interne"} if client == "teledeclaration" else {}))[1]
    return {"a": a, "b": b, "c": c, "logins": logins, "auditor": resolve_actor(service_gw, staff["auditor"])}


def by_login(services, campaign_id: int) -> dict[str, access_reviews.Item]:
    return {i.login: i for i in access_reviews.items(services, campaign_id)}


def mine(sent: list[access_reviews.Reminder], campaign_id: int) -> list[tuple[str, tuple[int, ...]]]:
    return sorted((r.adherent, r.days) for r in sent if r.campaign_id == campaign_id)


@pytest.mark.usefixtures("password_grant_client")
def test_a_whole_campaign(world, service_gw, admin_gw, services, settings, smtp_server):
    a, b, logins, auditor = world["a"], world["b"], world["logins"], world["auditor"]

    # Only the security team opens a campaign, and the refusal says so (no code, no None).
    with pytest.raises(NotAllowed) as not_auditor:
        reviews.open_campaign(Context(service_gw, services, Actor.delegate(a)), "Revue", NOW + 10 * DAY, "disable",
                              adherents=[a], now=NOW)
    assert not_auditor.value.message == access_reviews.NOT_AUDITOR and "None" not in str(not_auditor.value)
    assert "Seule l'équipe sécurité de la CIMR" in not_auditor.value.message.fr
    with pytest.raises(ValidationError) as refused:
        reviews.open_campaign(Context(service_gw, services, auditor), "Revue", NOW + 10 * DAY, "disable",
                              adherents=[a, "99999999"], now=NOW)
    assert "99999999" in refused.value.errors["adherents"].fr

    c = reviews.open_campaign(Context(service_gw, services, auditor), "Revue T4", NOW + 10 * DAY, "disable", "7,1",
                              adherents=[a, b], now=NOW)
    items = by_login(services, c.id)
    # A snapshot of the enabled teleservice users of A and B, with their teleservice and powers: not the disabled
    # one, not C's, not the delegates.
    assert set(items) == {logins[k] for k in ("a_keep", "a_revoke", "a_silent", "b_silent")}
    assert (items[logins["a_revoke"]].teleservice, items[logins["a_revoke"]].powers) == ("easypaiement",
                                                                                         ("ordonnateur",))
    assert items[logins["b_silent"]].adherent == b and all(i.pending for i in items.values())

    # Reminders: none 8 days before, then the 7-day one for both adherents, once.
    assert mine(reviews.remind(service_gw, services, now=NOW + 2 * DAY), c.id) == []
    first = reviews.remind(service_gw, services, now=NOW + 3 * DAY + timedelta(hours=1))
    assert mine(first, c.id) == sorted([(a, (7,)), (b, (7,))]) and all(r.sent for r in first if r.campaign_id == c.id)
    assert mine(reviews.remind(service_gw, services, now=NOW + 3 * DAY + timedelta(hours=5)), c.id) == []
    delegate_a = admin_gw.user_by_username(a).email
    (mail,) = [m for m in smtp_server.bodies(delegate_a) if "Revue T4" in m]
    assert "3 utilisateur(s)" in mail and "/delegue/revues" in mail and "seront désactivés" in mail
    assert PASSWORD not in mail

    # Delegate A keeps one user and revokes another, who is logged in: disabled and its sessions ended.
    delegate = Actor.delegate(a)
    kept = reviews.decide(Context(service_gw, services, delegate), items[logins["a_keep"]].id, "keep", now=NOW + 4 * DAY)
    assert (kept.decision, kept.decided_by) == ("keep", a)
    revoked_id = admin_gw.user_by_username(logins["a_revoke"]).id
    assert password_login(settings, logins["a_revoke"], PASSWORD).status_code == 200
    assert len(admin_gw.user_sessions(revoked_id)) == 1
    reviews.decide(Context(service_gw, services, delegate), items[logins["a_revoke"]].id, "revoke", now=NOW + 4 * DAY)
    assert not admin_gw.user(revoked_id).enabled and admin_gw.user_sessions(revoked_id) == []
    assert password_login(settings, logins["a_revoke"], PASSWORD).status_code != 200

    # The security audit sees the campaign and its completion (our database, read by the audit's collector).
    from provisioner.audit.collect import _open_reviews
    (progress,) = [r for r in _open_reviews(services.db) if r.campaign_id == c.id]
    assert (progress.users, progress.reviewed, progress.adherents_pending) == (4, 2, tuple(sorted((a, b))))
    assert admin_gw.user_by_username(logins["a_keep"]).enabled

    # Only the delegate decides: the review is the company's attestation, not CIMR's (an agent, the security team).
    for staff_member in (Actor.agent("agent.benali"), auditor):
        with pytest.raises(NotAllowed) as not_reviewer:
            reviews.decide(Context(service_gw, services, staff_member), items[logins["a_silent"]].id, "keep")
        assert not_reviewer.value.message == access_reviews.NOT_REVIEWER
    assert by_login(services, c.id)[logins["a_silent"]].pending

    # Delegate A cannot decide for B's user; a decision is made once; only keep or revoke.
    with pytest.raises(TenantViolation):
        reviews.decide(Context(service_gw, services, delegate), items[logins["b_silent"]].id, "revoke")
    assert by_login(services, c.id)[logins["b_silent"]].pending
    assert admin_gw.user_by_username(logins["b_silent"]).enabled
    with pytest.raises(RuleViolation) as again:
        reviews.decide(Context(service_gw, services, delegate), items[logins["a_keep"]].id, "revoke")
    assert again.value.field == "decision" and admin_gw.user_by_username(logins["a_keep"]).enabled
    with pytest.raises(ValidationError) as bad:
        reviews.decide(Context(service_gw, services, delegate), items[logins["a_silent"]].id, "maybe")
    assert "Conserver" in bad.value.errors["decision"].fr

    # The 1-day reminder: A still has one user pending, B one.
    last = reviews.remind(service_gw, services, now=NOW + 9 * DAY + timedelta(hours=1))
    assert mine(last, c.id) == sorted([(a, (1,)), (b, (1,))])
    assert any("1 utilisateur(s)" in m for m in smtp_server.bodies(delegate_a) if "Revue T4" in m)

    # The deadline: refused before it (unless forced by an auditor), and never by a delegate.
    with pytest.raises(RuleViolation) as early:
        reviews.close_campaign(Context(service_gw, services, access_reviews.SYSTEM), c.id, now=NOW + 9 * DAY)
    assert early.value.field == "force"
    with pytest.raises(NotAllowed):
        reviews.close_campaign(Context(service_gw, services, delegate), c.id, now=NOW + 11 * DAY)
    done = reviews.close_campaign(Context(service_gw, services, access_reviews.SYSTEM), c.id, now=NOW + 10 * DAY + timedelta(minutes=1))
    assert sorted(i.login for i in done.disabled) == sorted([logins["a_silent"], logins["b_silent"]])
    assert not done.reported and not done.failed and not done.campaign.open
    for key, enabled in (("a_keep", True), ("a_silent", False), ("b_silent", False), ("c_user", True)):
        assert admin_gw.user_by_username(logins[key]).enabled is enabled, key
    assert [m for m in smtp_server.bodies(delegate_a) if "n'ont pas été revus" in m and logins["a_silent"] in m]

    # Completion per adherent, the export, and nothing more to decide.
    assert access_reviews.completion(access_reviews.items(services, c.id)) == sorted([
        access_reviews.Completion(a, 3, 1, 1, 1, disabled=1), access_reviews.Completion(b, 1, 0, 0, 1, disabled=1)],
        key=lambda p: p.adherent)
    rows = {r["login"]: r for r in csv.DictReader(io.StringIO(
        access_reviews.render_csv(done.campaign, access_reviews.items(services, c.id), "decisions")))}
    assert (rows[logins["a_revoke"]]["decision"], rows[logins["a_revoke"]]["decided_by"]) == ("revoke", a)
    assert rows[logins["b_silent"]]["at_deadline"] == "disabled"
    with pytest.raises(RuleViolation):
        reviews.decide(Context(service_gw, services, Actor.delegate(b)), items[logins["b_silent"]].id, "keep")

    # Everything is in the trail, under the person (or the scheduled rule), and without any secret.
    trail = [e for n in (a, b, None) for e in events(services.db, adherent=n, limit=200) if e.action.startswith(
        "review.") or (e.action == "user.disable" and e.target == logins["a_revoke"])]
    seen = {(e.action, e.actor, e.target, e.outcome) for e in trail}
    assert ("review.open", auditor.username, f"campaign:{c.id}", "ok") in seen
    assert ("review.decide", a, logins["a_revoke"], "ok") in seen
    assert ("review.decide", a, logins["b_silent"], "refused") in seen
    assert ("user.disable", a, logins["a_revoke"], "ok") in seen
    assert ("review.remind", access_reviews.SYSTEM.username, f"campaign:{c.id}", "ok") in seen
    assert ("review.disable_unreviewed", access_reviews.SYSTEM.username, logins["b_silent"], "ok") in seen
    assert ("review.close", access_reviews.SYSTEM.username, f"campaign:{c.id}", "ok") in seen
    dumped = json.dumps([[e.before, e.after, e.detail] for e in trail], default=str)
    assert PASSWORD not in dumped and "password" not in dumped and "credentials" not in dumped


def test_report_at_the_deadline_only_reports_through_the_cli(world, make_adherent, admin_gw, services, test_env,
                                                             staff):
    n = make_adherent()
    _, login = create_user(admin_gw, adherent_of(admin_gw, n), "compte-adherent", ("utilisateur",))
    runner = CliRunner()
    deadline = (date.today() + timedelta(days=5)).isoformat()
    args = ["--json", "review", "open", "Revue CLI", "--deadline", deadline, "--on-deadline", "report",
            "--remind-days", "3", "--adherent", n]
    assert runner.invoke(cli, args, env=test_env).exit_code == 2  # --as is required
    not_auditor = runner.invoke(cli, [*args, "--as", staff["agent"]], env=test_env)  # not the security team
    assert not_auditor.exit_code == 1 and "Seule l'équipe sécurité" in not_auditor.output
    assert "None" not in not_auditor.output and "review.open" not in not_auditor.output
    bad = runner.invoke(cli, ["--json", "review", "open", "X", "--deadline", "soon", "--on-deadline", "report",
                              "--as", staff["auditor"]], env=test_env)
    assert bad.exit_code == 2 and "--deadline" in bad.stdout
    opened = runner.invoke(cli, [*args, "--as", staff["auditor"]], env=test_env)
    assert opened.exit_code == 0, opened.output
    cid = json.loads(opened.stdout)["campaign"]["id"]
    assert json.loads(opened.stdout)["users"] == 1

    early = runner.invoke(cli, ["review", "close", str(cid)], env=test_env)  # cron before the deadline
    assert early.exit_code == 1 and "error: force: " in early.output and "clôture anticipée" in early.output
    assert runner.invoke(cli, ["review", "close", str(cid), "--force"], env=test_env).exit_code == 2  # needs --as
    closed = runner.invoke(cli, ["--json", "review", "close", str(cid), "--force", "--as", staff["auditor"]],
                           env=test_env)
    assert closed.exit_code == 3, closed.output  # findings: unreviewed users reported
    assert [i["login"] for i in json.loads(closed.stdout)["reported"]] == [login]
    assert admin_gw.user_by_username(login).enabled  # only reported
    assert access_reviews.items(services, cid)[0].closing == "reported"

    status = runner.invoke(cli, ["--json", "review", "status", str(cid)], env=test_env)
    assert status.exit_code == 0
    assert json.loads(status.stdout)["adherents"] == [{"adherent": n, "total": 1, "kept": 0, "revoked": 0,
                                                        "pending": 1, "disabled": 0, "reported": 1}]
    listing = runner.invoke(cli, ["review", "status"], env=test_env)
    assert listing.exit_code == 0 and f"campaign {cid} 'Revue CLI': closed" in listing.output
    assert "0/1 reviewed" in listing.output
    nothing_due = runner.invoke(cli, ["review", "remind"], env=test_env)  # its deadline was 5 days away, reminder 3
    assert nothing_due.exit_code == 0 and f"campaign {cid} " not in nothing_due.output
    entry = events(services.db, action="review.close", target=f"campaign:{cid}")[0]
    assert (entry.actor, entry.after["reported"], entry.after["forced"]) == (staff["auditor"], 1, True)


def test_at_a_report_close_a_user_deleted_since_the_opening_is_gone_not_left_enabled(world, make_adherent, admin_gw,
                                                                                       service_gw, services):
    n = make_adherent()
    company = adherent_of(admin_gw, n)
    deleted_id, deleted = create_user(admin_gw, company, "compte-adherent", ("utilisateur",))
    _, stays = create_user(admin_gw, company, "eliquidation", ("utilisateur",))
    c = reviews.open_campaign(Context(service_gw, services, world["auditor"]), "Revue signalée", NOW + 10 * DAY,
                              access_reviews.REPORT, adherents=[n], now=NOW)
    admin_gw.delete_user(deleted_id)
    done = reviews.close_campaign(Context(service_gw, services, world["auditor"]), c.id, force=True, now=NOW + DAY)
    assert [i.login for i in done.gone] == [deleted] and [i.login for i in done.reported] == [stays]
    assert {i.login: i.closing for i in access_reviews.items(services, c.id)} == {deleted: "gone", stays: "reported"}


def test_a_forced_close_tells_the_delegate_when_and_that_it_came_before_the_deadline(world, make_adherent, admin_gw,
                                                                                       service_gw, services,
                                                                                       smtp_server):
    n = make_adherent()
    _, login = create_user(admin_gw, adherent_of(admin_gw, n), "compte-adherent", ("utilisateur",))
    c = reviews.open_campaign(Context(service_gw, services, world["auditor"]), "Revue écourtée", NOW + 10 * DAY,
                              access_reviews.DISABLE, adherents=[n], now=NOW)
    reviews.close_campaign(Context(service_gw, services, world["auditor"]), c.id, force=True, now=NOW + DAY)
    (mail,) = [m for m in smtp_server.bodies(admin_gw.user_by_username(n).email) if "Revue écourtée" in m]
    assert login in mail and "a clôturé la campagne, le 30/11/2026, avant son échéance du 09/12/2026" in mail
    assert "avant l'échéance" not in mail and "by the deadline" not in mail
    (entry,) = events(services.db, action="review.disable_unreviewed", target=login)
    assert entry.detail.startswith("not reviewed before the campaign was closed early on 2026-11-30")
