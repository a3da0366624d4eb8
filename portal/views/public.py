"""Public pages: home, language switch, the subscription form (Abonnement) and its printable summary,
the brochure's three letters (pre-filled for a logged-in delegate)."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from provisioner import adherents, subscriptions
from provisioner.errors import InputError, NotFound, RuleViolation
from portal.forms import SubscriptionForm, apply_errors, cleaned
from portal.i18n import LANGUAGES
from portal.security import safe_next
from portal.services import actor, core_services, gateway, services

bp = Blueprint("public", __name__)

LETTERS = {
    "reinitialisation-mot-de-passe": _l("Réinitialisation du mot de passe de la personne déléguée"),
    "reabonnement": _l("Réabonnement aux Téléservices CIMR"),
    "mise-a-jour-email": _l("Mise à jour de l'e-mail de la personne déléguée"),
}


@bp.get("/")
def home():
    return render_template("public/home.html", letters=LETTERS)


@bp.get("/favicon.ico")
def favicon():
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.get("/langue/<code>")
def set_language(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next"), url_for("public.home")))


@bp.route("/abonnement", methods=["GET", "POST"])
def subscribe():
    form = SubscriptionForm()
    if form.validate_on_submit():
        sub_form = subscriptions.NewSubscription(
            company=subscriptions.Company(**cleaned(form.company.data)),
            responsable=subscriptions.Responsable(**cleaned(form.responsable.data)),
            delegate=subscriptions.NewDelegate(**cleaned(form.delegate.data)))
        try:
            sub = subscriptions.submit_subscription(services().service_gateway(), core_services(), sub_form)
        except InputError as exc:
            apply_errors(form, exc)
        else:
            session["subscription_id"] = sub.id
            return redirect(url_for("public.subscription_summary"))
    return render_template("public/subscribe.html", form=form), 200 if not form.errors else 422


@bp.get("/abonnement/recapitulatif")
def subscription_summary():
    """The form to print, sign and stamp: only in the session that submitted it."""
    sub_id = session.get("subscription_id")
    if not sub_id:
        return redirect(url_for("public.subscribe"))
    sub = subscriptions.get_subscription(core_services(), sub_id)
    return render_template("public/summary.html", sub=sub, form=sub.form,
                           sla=core_services().settings.subscription_sla_hours)


@bp.get("/telechargements/<letter>")
def letter(letter: str):
    if letter not in LETTERS:
        abort(404)
    prefill = None
    user = g.get("user")
    if user and "delegate" in user["roles"] and user.get("adherent"):
        g.space = "delegate"
        try:
            prefill = adherents.get_adherent(gateway(), core_services(), actor(), user["adherent"])
        except (NotFound, RuleViolation):  # not approved yet: a blank letter
            prefill = None
    return render_template(f"letters/{letter}.html", title=LETTERS[letter], adherent=prefill, user=user)
