"""Access review campaigns in the portal (provisioner/reviews.py): the delegate's « Revue des accès » (keep or revoke
each of its users) and the security team's view of each campaign's completion per adherent, with its exports."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.auth import guard_space
from portal.forms import ActionForm, CloseReviewForm, OpenReviewForm, apply_errors, clean
from portal.i18n import say
from portal.services import context, core_services, teleservice_names
from portal.views import delegate
from provisioner import access_reviews, reviews
from provisioner.errors import InputError

delegate_bp = Blueprint("review", __name__, url_prefix="/delegue/revues")
guard_space(delegate_bp, "delegate")
# The delegate's layout (tabs, the E@syPaiement banner) on this page too.
delegate_bp.context_processor(delegate.easypaiement_banner)
auditor_bp = Blueprint("review_audit", __name__, url_prefix="/auditeur/revues")
guard_space(auditor_bp, "auditor")


def init_app(app: Flask) -> None:
    app.register_blueprint(delegate_bp)
    app.register_blueprint(auditor_bp)


@delegate_bp.app_context_processor
def review_tab() -> dict:
    """The delegate's tab shows how many of its users wait for a decision (read only when the layout asks)."""
    def pending() -> int:
        user = g.get("user") or {}
        return access_reviews.pending_count(core_services(), user["adherent"]) if user.get("adherent") else 0
    return {"review_pending": pending}


@delegate_bp.get("/")
def delegate_home():
    found = reviews.items_to_review(context(g.user["adherent"]))
    names = {t.client_id: t.name for t in core_services().catalogue}
    return render_template("review/delegate.html", campaigns=found, teleservices=names)


@delegate_bp.post("/<int:item_id>")
def decide(item_id: int):
    """Keep or revoke one user: the item comes from the URL only, and the provisioner checks it is one of the
    delegate's adherent's (403 otherwise); a revoke disables the user and ends its sessions."""
    if not ActionForm().validate_on_submit():
        abort(400)
    decision = request.form.get("decision", "")
    try:
        item = reviews.decide(context(), item_id, decision)
    except InputError as exc:
        flash(" ".join(say(m) for m in exc.errors.values()), "error")
    else:
        flash(_("« %(login)s » conservé.", login=item.login) if item.decision == access_reviews.KEEP else
              _("« %(login)s » révoqué : compte désactivé et sessions fermées.", login=item.login), "ok")
    return redirect(url_for("review.delegate_home"))


@auditor_bp.get("/")
def campaigns():
    listed = [(c, access_reviews.completion(access_reviews.items(core_services(), c.id))) for c in access_reviews.campaigns(core_services())]
    return render_template("review/auditor_list.html", campaigns=listed)


@auditor_bp.route("/nouvelle", methods=["GET", "POST"])
def open_campaign():
    """The security team opens a campaign: the snapshot of the users in scope is taken at once."""
    form = OpenReviewForm()
    if form.validate_on_submit():
        try:
            c = reviews.open_campaign(context(), clean(form.name.data), form.deadline.data,
                                      form.on_deadline.data or "", clean(form.reminder_days.data), form.listed())
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("Campagne « %(name)s » ouverte : %(n)s utilisateur(s) à revoir.", name=c.name,
                    n=len(access_reviews.items(core_services(), c.id))), "ok")
            return redirect(url_for("review_audit.campaign", campaign_id=c.id))
    return render_template("review/auditor_open.html", form=form), 422 if form.errors else 200


@auditor_bp.get("/<int:campaign_id>")
def campaign(campaign_id: int):
    return _render_campaign(campaign_id)


def _render_campaign(campaign_id: int, form: CloseReviewForm | None = None, status: int = 200):
    c = access_reviews.get_campaign(core_services(), campaign_id)
    found = access_reviews.items(core_services(), c.id)
    return render_template("review/auditor_campaign.html", c=c, rows=access_reviews.completion(found),
                           pending=sum(i.pending for i in found), form=form or CloseReviewForm()), status


@auditor_bp.post("/<int:campaign_id>/cloture")
def close_campaign(campaign_id: int):
    """Close now: what the deadline does is done to the users nobody reviewed (before it: confirmed by the box)."""
    form = CloseReviewForm()
    if form.validate_on_submit():
        try:
            done = reviews.close_campaign(context(), campaign_id, force=form.force.data)
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("Campagne clôturée : %(d)s utilisateur(s) désactivé(s), %(r)s signalé(s), %(g)s déjà parti(s).",
                    d=len(done.disabled), r=len(done.reported), g=len(done.gone)), "ok")
            if done.failed:
                flash(_("%(n)s utilisateur(s) n'ont pas pu être désactivés (Keycloak ne répondait pas) : la campagne "
                        "reste ouverte ; clôturez-la de nouveau pour finir.", n=len(done.failed)), "error")
            return redirect(url_for("review_audit.campaign", campaign_id=campaign_id))
    return _render_campaign(campaign_id, form, 422)


@auditor_bp.get("/<int:campaign_id>.csv")
def export_csv(campaign_id: int):
    """Completion per adherent; ``?section=decisions``: every user with its decision."""
    section = request.args.get("section", "adherents")
    if section not in ("adherents", "decisions"):
        abort(404)
    c = access_reviews.get_campaign(core_services(), campaign_id)
    return Response(access_reviews.render_csv(c, access_reviews.items(core_services(), c.id), section), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="revue-{c.id}-{section}.csv"'})


@auditor_bp.get("/<int:campaign_id>.html")
def export_html(campaign_id: int):
    c = access_reviews.get_campaign(core_services(), campaign_id)
    return Response(access_reviews.render_html(c, access_reviews.items(core_services(), c.id), teleservice_names()),
                    mimetype="text/html",
                    headers={"Content-Disposition": f'attachment; filename="revue-{c.id}.html"'})
