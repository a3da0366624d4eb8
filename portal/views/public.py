"""Public pages: home, language switch, the subscription form (Abonnement) and its printable summary (also through
a signed link valid a few days, and as PDF), the brochure's three letters (pre-filled for a logged-in delegate;
HTML and PDF)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from provisioner import adherents, subscriptions, users
from provisioner import delegates
from provisioner.tree import AdherentState
from provisioner.errors import InputError, NotFound, RuleViolation
from portal import documents, summary_links
from portal.forms import SubscriptionForm, apply_errors, cleaned
from portal.i18n import LANGUAGES
from portal.security import safe_next
from portal.services import actor, context, core_services, services

bp = Blueprint("public", __name__)

LETTERS = {slug: letter.title for slug, letter in documents.LETTERS.items()}


@bp.get("/")
def home():
    return render_template("public/home.html", letters=LETTERS,
                           teleservices=[t for t in core_services().catalogue if t.url])


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
            delegate=delegates.NewDelegate(**cleaned(form.delegate.data)))
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
    token = summary_links.make_token(sub.id, sub.adherent)
    return render_template("public/summary.html", sub=sub, parts=documents.SUMMARY_PARTS, submitted=True,
                           link=core_services().settings.portal_url + url_for("public.summary_by_link", token=token),
                           pdf=url_for("public.summary_pdf", token=token), valid_days=summary_links.VALID_DAYS,
                           sla=core_services().settings.subscription_sla_hours)


def _linked_subscription(token: str) -> subscriptions.Subscription:
    """The subscription a summary link names; aborts with a French 410 (expired) or 404 (not ours) page."""
    try:
        sub_id, adherent = summary_links.read_token(token)
    except summary_links.LinkExpired:
        abort(Response(render_template("reset/link_invalid.html", message=_(
            "Ce lien a expiré (il est valable %(d)s jours). Le récapitulatif reste disponible auprès de l'Agence "
            "virtuelle.", d=summary_links.VALID_DAYS)), 410))
    except summary_links.LinkForged:
        abort(Response(render_template("reset/link_invalid.html", message=_(
            "Ce lien n'est pas valable : vérifiez qu'il est copié en entier.")), 404))
    try:
        sub = subscriptions.get_subscription(core_services(), sub_id)
    except NotFound:
        abort(404)
    if sub.adherent != adherent:
        abort(404)
    return sub


@bp.get("/abonnement/recapitulatif/<token>")
def summary_by_link(token: str):
    """The company prints its summary again, from the link it was given (valid a few days)."""
    sub = _linked_subscription(token)
    return render_template("public/summary.html", sub=sub, parts=documents.SUMMARY_PARTS, submitted=False,
                           pdf=url_for("public.summary_pdf", token=token))


@bp.get("/abonnement/recapitulatif/<token>/pdf")
def summary_pdf(token: str):
    sub = _linked_subscription(token)
    return documents.pdf_response(documents.summary_pdf(sub), f"abonnement-{sub.adherent}.pdf")


def _letter_prefill() -> tuple[AdherentState | None, dict | None, dict]:
    """A logged-in delegate's approved adherent (one read of its tree, with the delegate's own token), its user and
    the letter's values (``documents.letter_values``); (None, user, {}) for anyone else: a blank letter."""
    user = g.get("user")
    if not (user and "delegate" in user["roles"] and user.get("adherent")):
        return None, user, {}
    g.space = "delegate"
    try:
        adherent = users.overview(context(user["adherent"]))[0]
    except (NotFound, RuleViolation):  # not approved yet: a blank letter
        return None, user, {}
    # Under its own token a delegate does not read its own account: its e-mail comes from its term in our database.
    terms = adherents.delegate_history(core_services(), actor(), adherent.numero)
    email = next((t.email for t in reversed(terms) if t.until is None), None)
    return adherent, user, documents.letter_values(adherent, user.get("name"), email)


@bp.get("/telechargements/<letter>")
def letter(letter: str):
    if letter not in documents.LETTERS:
        abort(404)
    adherent, user, values = _letter_prefill()
    return render_template("letters/letter.html", slug=letter, letter=documents.LETTERS[letter],
                           title=documents.LETTERS[letter].title, adherent=adherent, values=values, user=user)


@bp.get("/telechargements/<letter>/pdf")
def letter_pdf(letter: str):
    if letter not in documents.LETTERS:
        abort(404)
    _adherent, _user, values = _letter_prefill()
    return documents.pdf_response(documents.letter_pdf(letter, values), f"{letter}.pdf")
