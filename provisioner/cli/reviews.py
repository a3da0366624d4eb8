"""`provisioner review`: access review campaigns — open (security team), status, remind (cron), close."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, time, timezone

import click

from provisioner.cli.base import EXIT_FINDINGS, Run, cli, verb


@cli.group()
def review() -> None:
    """Access review campaigns: each delegate keeps or revokes its users before a deadline."""


def _deadline(value: str | None) -> datetime | None:
    """YYYY-MM-DD (the end of that day, UTC) or an ISO date-time (UTC when no offset is given)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(23, 59, 59), timezone.utc)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected YYYY-MM-DD or an ISO date-time", param_hint="'--deadline'")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _security_team(run: Run):
    """The person acting, resolved in Keycloak by ``Run`` (the provisioner checks it is an auditor)."""
    if run.actor is None:
        raise click.UsageError("--as USERNAME (an auditor of CIMR's security team) is required")
    return run.actor


# Optional here (``verb`` resolves it when given): the scheduled close runs without a person.
as_auditor = click.option("--as", "as_user", envvar="PROVISIONER_AS", metavar="USERNAME",
                          help="The auditor acting (realm role auditor); env PROVISIONER_AS.")


def _summary(c) -> str:
    return (f"campaign {c.id} '{c.name}': {c.status}, deadline {c.deadline:%Y-%m-%d %H:%M} UTC, at the deadline: "
            f"{c.on_deadline}, reminders {','.join(map(str, c.reminder_days)) or 'none'} day(s) before, "
            f"opened by {c.opened_by}")


@verb(review, "open", actor=False)
@click.argument("name")
@click.option("--deadline", required=True, help="YYYY-MM-DD (end of that day, UTC) or an ISO date-time.")
@click.option("--on-deadline", "on_deadline", type=click.Choice(["disable", "report"]), required=True,
              help="What happens to the users nobody reviewed: disabled, or only reported.")
@click.option("--remind-days", default="7,1", show_default=True,
              help="Days before the deadline when delegates with pending users are mailed (comma-separated).")
@click.option("--adherent", "adherents", multiple=True, metavar="N",
              help="An adherent in scope (repeat); none: every active adherent.")
@as_auditor
def review_open(run: Run, name: str, deadline: str, on_deadline: str, remind_days: str,
                adherents: tuple[str, ...]) -> None:
    """Open a campaign: a snapshot of the enabled teleservice users of the adherents in scope, each to be kept or
    revoked by its delegate before the deadline."""
    from provisioner import access_reviews, reviews

    _security_team(run)
    c = reviews.open_campaign(run.context(), name, _deadline(deadline), on_deadline, remind_days,
                              list(adherents) or None)
    listed = access_reviews.items(run.services, c.id)
    run.emit(f"Opened {_summary(c)}: {len(listed)} user(s) of {len({i.adherent for i in listed})} adherent(s) "
             "to review.", {"campaign": c, "users": len(listed)})


@verb(review, "status", actor=False)
@click.argument("campaign", type=int, required=False)
def review_status(run: Run, campaign: int | None) -> None:
    """The campaigns (newest first), or one campaign's completion per adherent."""
    from provisioner import access_reviews

    if campaign is None:
        found = access_reviews.campaigns(run.services)
        rows = []
        for c in found:
            done = access_reviews.completion(access_reviews.items(run.services, c.id))
            total, pending = sum(x.total for x in done), sum(x.pending for x in done)
            rows.append((c, total, pending))
        run.emit("\n".join(f"{_summary(c)}; {total - pending}/{total} reviewed" for c, total, pending in rows)
                 or "No access review campaign.",
                 [{"campaign": c, "users": total, "pending": pending} for c, total, pending in rows])
        return
    c = access_reviews.get_campaign(run.services, campaign)
    done = access_reviews.completion(access_reviews.items(run.services, c.id))
    lines = [f"{x.adherent:<10}  {x.kept + x.revoked:>4}/{x.total:<4} reviewed ({x.percent:>3} %)  kept {x.kept}  "
             f"revoked {x.revoked}  pending {x.pending}"
             + (f"  disabled at deadline {x.disabled}" if x.disabled else "")
             + (f"  reported at deadline {x.reported}" if x.reported else "") for x in done]
    run.emit(_summary(c) + "\n" + "\n".join(lines), {"campaign": c, "adherents": done})


@verb(review, "remind", actor=False)
def review_remind(run: Run) -> None:
    """Cron (daily): mail each delegate with pending users when a reminder day of an open campaign has come (each
    day once per adherent). Exit 3 when a reminder could not be mailed (no delegate e-mail, or it waits in the
    outbox: `provisioner mail flush`)."""
    from provisioner import reviews

    sent = reviews.remind(run.gw, run.services)
    lines = [f"campaign {r.campaign_id}  {r.adherent:<10}  {r.pending} pending  day(s) {','.join(map(str, r.days))}"
             f"  {'mailed' if r.sent else 'NOT mailed'}" for r in sent]
    run.emit("\n".join(lines) or "No reminder due.", sent)
    if any(not r.sent for r in sent):
        sys.exit(EXIT_FINDINGS)


@verb(review, "close", actor=False)
@click.argument("campaign", type=int)
@click.option("--force", is_flag=True, help="Close before the deadline (an auditor only).")
@as_auditor
def review_close(run: Run, campaign: int, force: bool) -> None:
    """Apply the campaign's setting to the users nobody reviewed (disable, or only report them) and close it.
    Refused before the deadline unless --force (with --as). Without --as: the scheduled close (cron), at the
    deadline only. Exit 3 when unreviewed users were reported, 1 when some could not be disabled (the campaign
    stays open: run it again)."""
    from provisioner import access_reviews, reviews

    if force and run.actor is None:
        raise click.UsageError("--force needs --as USERNAME (an auditor): the scheduled close never forces")
    done = reviews.close_campaign(replace(run.context(), actor=run.actor or access_reviews.SYSTEM), campaign, force)
    lines = ([f"DISABLED  {i.adherent:<10}  {i.login}" for i in done.disabled]
             + [f"REPORTED  {i.adherent:<10}  {i.login}  (not reviewed, left enabled)" for i in done.reported]
             + [f"GONE      {i.adherent:<10}  {i.login}  (deleted or disabled since the snapshot)" for i in done.gone]
             + [f"FAILED    {i.adherent:<10}  {i.login}: {why}" for i, why in done.failed])
    head = (f"Campaign {campaign} closed" if not done.campaign.open else f"Campaign {campaign} still open") + \
        f": {len(done.disabled)} disabled, {len(done.reported)} reported, {len(done.failed)} failed."
    run.emit("\n".join([head, *lines]), {"campaign": done.campaign, "disabled": done.disabled,
                                         "reported": done.reported, "gone": done.gone,
                                         "failed": [{"login": i.login, "adherent": i.adherent, "error": why}
                                                    for i, why in done.failed]})
    if done.failed:
        sys.exit(1)
    if done.reported:
        sys.exit(EXIT_FINDINGS)
