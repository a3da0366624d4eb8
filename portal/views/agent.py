"""The CIMR agents' back office (Agence virtuelle): pending subscriptions against the 48-hour promise,
approve/reject, find an adherent, act on signed letters."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from provisioner import adherents, subscriptions
from provisioner.errors import InputError, NotFound, RuleViolation
from portal.auth import guard_space
from portal.forms import (ActionForm, DelegateForm, EmailForm, FindAdherentForm, PasswordForm, ReasonForm,
                          RejectForm, apply_errors, clean, cleaned)
from portal.i18n import say
from portal.services import actor, core_services, gateway, services
from portal.sessions import end_sessions

bp = Blueprint("agent", __name__, url_prefix="/agent")
guard_space(bp, "agent")


def _end_delegate_sessions(numero: str) -> None:
    """The delegate account changed hands or lost its password: their portal sessions end now."""
    end_sessions(services().engine, username=numero)


@bp.get("/")
def pending():
    status = request.args.get("statut", "pending")
    if status not in ("pending", "approved", "rejected"):
        status = "pending"
    subs = subscriptions.list_subscriptions(core_services(), status)
    return render_template("agent/pending.html", subs=subs, status=status, find=FindAdherentForm(),
                           sla=core_services().settings.subscription_sla_hours)


@bp.get("/abonnements/<int:sub_id>")
def subscription(sub_id: int):
    return _render_subscription(sub_id)


def _render_subscription(sub_id: int, reject_form: RejectForm | None = None, status: int = 200):
    sub = subscriptions.get_subscription(core_services(), sub_id)
    return render_template("agent/subscription.html", sub=sub, action=ActionForm(),
                           reject_form=reject_form or RejectForm(),
                           sla=core_services().settings.subscription_sla_hours), status


@bp.post("/abonnements/<int:sub_id>/valider")
def approve(sub_id: int):
    if not ActionForm().validate_on_submit():
        return redirect(url_for("agent.subscription", sub_id=sub_id))
    try:
        sub = subscriptions.approve_subscription(gateway(), core_services(), actor(), sub_id)
    except RuleViolation as exc:
        flash(say(exc.message), "error")
        return redirect(url_for("agent.subscription", sub_id=sub_id))
    flash(_("Abonnement de l'adhérent %(n)s validé ; la personne déléguée est notifiée.", n=sub.adherent), "ok")
    return redirect(url_for("agent.pending"))


@bp.post("/abonnements/<int:sub_id>/refuser")
def reject(sub_id: int):
    form = RejectForm()
    if form.validate_on_submit():
        try:
            sub = subscriptions.reject_subscription(gateway(), core_services(), actor(), sub_id,
                                                    clean(form.reason.data))
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("Abonnement de l'adhérent %(n)s refusé.", n=sub.adherent), "ok")
            return redirect(url_for("agent.pending"))
    return _render_subscription(sub_id, form, 422)


@bp.get("/adherents")
def find_adherent():
    form = FindAdherentForm(request.args)
    numero = clean(form.numero.data)
    if numero:
        return redirect(url_for("agent.adherent", numero=numero))
    return redirect(url_for("agent.pending"))


def _adherent_or_none(numero: str) -> adherents.Adherent | None:
    try:
        return adherents.get_adherent(gateway(), core_services(), actor(), numero)
    except (NotFound, RuleViolation):  # unknown, or no approved subscription
        return None


def _not_found(numero: str):
    return render_template("agent/not_found.html", numero=numero, find=FindAdherentForm()), 404


def _render_adherent(numero: str, status: int = 200, **forms):
    adh = _adherent_or_none(numero)
    if adh is None:
        return _not_found(numero)
    forms = {"password_form": PasswordForm(), "email_form": EmailForm(), "reason_form": ReasonForm(),
             "action": ActionForm(), **forms}
    history = adherents.delegate_history(core_services(), actor(), numero)
    return render_template("agent/adherent.html", adh=adh, history=history, **forms), status


@bp.get("/adherents/<numero>")
def adherent(numero: str):
    return _render_adherent(numero)


@bp.post("/adherents/<numero>/mot-de-passe")
def delegate_password(numero: str):
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            adherents.reset_delegate_password(gateway(), core_services(), actor(), numero, form.password.data or "",
                                              form.password_confirm.data or "")
        except InputError as exc:
            apply_errors(form, exc)
        else:
            _end_delegate_sessions(numero)
            flash(_("Mot de passe provisoire de la personne déléguée enregistré : elle le changera à sa prochaine connexion."), "ok")
            return redirect(url_for("agent.adherent", numero=numero))
    return _render_adherent(numero, 422, password_form=form)


@bp.post("/adherents/<numero>/email")
def delegate_email(numero: str):
    form = EmailForm()
    if form.validate_on_submit():
        try:
            adherents.change_delegate_email(gateway(), core_services(), actor(), numero, clean(form.email.data))
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("E-mail de la personne déléguée mis à jour."), "ok")
            return redirect(url_for("agent.adherent", numero=numero))
    return _render_adherent(numero, 422, email_form=form)


@bp.route("/adherents/<numero>/remplacer", methods=["GET", "POST"])
def replace(numero: str):
    form = DelegateForm()
    adh = _adherent_or_none(numero)
    if adh is None:
        return _not_found(numero)
    if form.validate_on_submit():
        try:
            adherents.replace_delegate(gateway(), core_services(), actor(), numero,
                                       subscriptions.NewDelegate(**cleaned(form.delegate.data)))
        except InputError as exc:
            apply_errors(form, exc)
        else:
            _end_delegate_sessions(numero)
            flash(_("Personne déléguée remplacée ; l'ancienne ne peut plus se connecter."), "ok")
            return redirect(url_for("agent.adherent", numero=numero))
    return render_template("agent/replace.html", adh=adh, form=form), 422 if form.errors else 200


@bp.post("/adherents/<numero>/suspendre")
def suspend(numero: str):
    form = ReasonForm()
    if form.validate_on_submit():
        count = adherents.suspend_adherent(gateway(), core_services(), actor(), numero, clean(form.reason.data))
        _end_delegate_sessions(numero)
        flash(_("Adhérent suspendu : %(n)s compte(s) désactivé(s).", n=count), "ok")
    return redirect(url_for("agent.adherent", numero=numero))


@bp.post("/adherents/<numero>/reactiver")
def reactivate(numero: str):
    if ActionForm().validate_on_submit():
        count = adherents.reactivate_adherent(gateway(), core_services(), actor(), numero)
        flash(_("Adhérent réactivé : %(n)s compte(s) réactivé(s).", n=count), "ok")
    return redirect(url_for("agent.adherent", numero=numero))
