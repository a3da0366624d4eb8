"""The CIMR agents' back office (Agence virtuelle): pending subscriptions against the 48-hour promise (counted
from the signed paper's arrival, which the agent records), approve/reject, the summary as PDF, find an adherent, act on signed letters, mails not sent (resend)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from provisioner import adherents, delegates, outbox, subscriptions, termination
from provisioner.errors import InputError, NotFound, RuleViolation
from provisioner.rules import category_label
from provisioner.second_factor import reset_delegate_second_factor
from portal.auth import guard_space
from portal.forms import (ActionForm, CategoriesForm, DelegateForm, EmailForm, FindAdherentForm, PaperForm,
                          PasswordForm, ReasonForm, RejectForm, TerminateForm, apply_errors, clean, cleaned)
from portal import documents
from portal.i18n import say
from portal.services import actor, context, core_services, services
from portal.sessions import end_sessions

bp = Blueprint("agent", __name__, url_prefix="/agent")
guard_space(bp, "agent")


def _end_delegate_sessions(numero: str) -> None:
    """The delegate account changed hands or lost its password: their portal sessions end now."""
    end_sessions(services().engine, username=numero)


@bp.context_processor
def unsent_mails() -> dict:
    """The count shown on the « Courriels non envoyés » tab of every agent page (read when the layout asks for it:
    an error page of the agent space renders without the database)."""
    return {"unsent_count": lambda: outbox.count_unsent(core_services())}


def _flash_unsent(waiting: list[outbox.OutboxMail]) -> None:
    """The action holds; its mail did not go: say so, and where to resend it."""
    for mail in waiting:
        flash(_("Courriel non envoyé à %(to)s (%(error)s) : il reste en attente, voir « Courriels non envoyés ».",
                to=mail.recipient, error=mail.last_error), "warn")


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


def _render_subscription(sub_id: int, reject_form: RejectForm | None = None, status: int = 200,
                         paper_form: PaperForm | None = None):
    sub = subscriptions.get_subscription(core_services(), sub_id)
    return render_template("agent/subscription.html", sub=sub, action=ActionForm(),
                           reject_form=reject_form or RejectForm(), paper_form=paper_form or PaperForm(),
                           sla=core_services().settings.subscription_sla_hours, parts=documents.SUMMARY_PARTS,
                           status_words={"pending": _("en attente"), "approved": _("validé"),
                                         "rejected": _("refusé")}), status


@bp.post("/abonnements/<int:sub_id>/papier")
def receive_paper(sub_id: int):
    """The signed and stamped form arrived: the 48-hour promise counts from then, and approval is possible."""
    form = PaperForm()
    if form.validate_on_submit():
        try:
            subscriptions.receive_paper(core_services(), actor(), sub_id, clean(form.received_on.data) or None)
        except InputError as exc:
            apply_errors(form, exc, {"date": "received_on"})
        else:
            flash(_("Réception du formulaire signé enregistrée : le délai de %(h)s heures court depuis cette date.",
                    h=core_services().settings.subscription_sla_hours), "ok")
            return redirect(url_for("agent.subscription", sub_id=sub_id))
    return _render_subscription(sub_id, status=422, paper_form=form)


@bp.get("/abonnements/<int:sub_id>/recapitulatif.pdf")
def subscription_pdf(sub_id: int):
    """The subscription summary, printed again by the agent (no password: the form we keep has none)."""
    sub = subscriptions.get_subscription(core_services(), sub_id)
    return documents.pdf_response(documents.summary_pdf(sub), f"abonnement-{sub.adherent}.pdf")


@bp.post("/abonnements/<int:sub_id>/valider")
def approve(sub_id: int):
    if not ActionForm().validate_on_submit():
        return redirect(url_for("agent.subscription", sub_id=sub_id))
    try:
        sub = subscriptions.approve_subscription(context(), sub_id)
    except RuleViolation as exc:
        flash(say(exc.message), "error")
        return redirect(url_for("agent.subscription", sub_id=sub_id))
    waiting = outbox.unsent(core_services(), sub.adherent)
    flash(_("Abonnement de l'adhérent %(n)s validé.", n=sub.adherent) if waiting else
          _("Abonnement de l'adhérent %(n)s validé ; la personne déléguée est notifiée.", n=sub.adherent), "ok")
    _flash_unsent(waiting)
    return redirect(url_for("agent.pending"))


@bp.post("/abonnements/<int:sub_id>/refuser")
def reject(sub_id: int):
    form = RejectForm()
    if form.validate_on_submit():
        try:
            sub = subscriptions.reject_subscription(context(), sub_id,
                                                    clean(form.reason.data))
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("Abonnement de l'adhérent %(n)s refusé.", n=sub.adherent), "ok")
            _flash_unsent(outbox.unsent(core_services(), sub.adherent))
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
        return adherents.get_adherent(context(numero))
    except (NotFound, RuleViolation):  # unknown, or no approved subscription
        return None


def _not_found(numero: str):
    return render_template("agent/not_found.html", numero=numero, find=FindAdherentForm()), 404


def _render_adherent(numero: str, status: int = 200, **forms):
    adh = _adherent_or_none(numero)
    if adh is None:
        return _not_found(numero)
    forms = {"password_form": PasswordForm(), "email_form": EmailForm(), "reason_form": ReasonForm(),
             "action": ActionForm(), "categories_form": CategoriesForm(formdata=None, categories=list(adh.categories)),
             "terminate_form": TerminateForm(), **forms}
    known = dict.fromkeys((*core_services().settings.default_categories, *adh.categories))
    forms["categories_form"].categories.choices = [(c, say(category_label(c))) for c in known]
    history = adherents.delegate_history(core_services(), actor(), numero)
    purge_from = adh.terminated_at + timedelta(days=core_services().settings.termination_grace_days) \
        if adh.terminated_at else None
    return render_template("agent/adherent.html", adh=adh, history=history, purge_from=purge_from,
                           now=datetime.now(timezone.utc),
                           grace_days=core_services().settings.termination_grace_days, **forms), status


@bp.get("/adherents/<numero>")
def adherent(numero: str):
    return _render_adherent(numero)


@bp.post("/adherents/<numero>/mot-de-passe")
def delegate_password(numero: str):
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            adherents.reset_delegate_password(context(numero), form.password.data or "",
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
            adherents.change_delegate_email(context(numero), clean(form.email.data))
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("E-mail de la personne déléguée mis à jour."), "ok")
            return redirect(url_for("agent.adherent", numero=numero))
    return _render_adherent(numero, 422, email_form=form)


@bp.post("/adherents/<numero>/second-facteur")
def delegate_second_factor(numero: str):
    """On a signed letter (lost phone): the delegate's second factor is removed; it enrols again at its next login."""
    if ActionForm().validate_on_submit():
        removed = reset_delegate_second_factor(context(numero))
        _end_delegate_sessions(numero)
        flash(_("Second facteur de la personne déléguée supprimé : elle en enregistrera un nouveau à sa prochaine "
                "connexion.") if removed else
              _("La personne déléguée n'avait pas de second facteur enregistré : rien à supprimer."), "ok")
    return redirect(url_for("agent.adherent", numero=numero))


@bp.route("/adherents/<numero>/remplacer", methods=["GET", "POST"])
def replace(numero: str):
    form = DelegateForm()
    adh = _adherent_or_none(numero)
    if adh is None:
        return _not_found(numero)
    if form.validate_on_submit():
        try:
            mailed = adherents.replace_delegate(context(numero),
                                                delegates.NewDelegate(**cleaned(form.delegate.data)))
        except InputError as exc:
            apply_errors(form, exc)
        else:
            if mailed is None:
                flash(_("Coordonnées de la personne déléguée mises à jour (même personne : son mot de passe ne change "
                        "pas)."), "ok")
            else:
                _end_delegate_sessions(numero)
                _flash_link(mailed, _("Personne déléguée remplacée ; l'ancienne ne peut plus se connecter."))
            return redirect(url_for("agent.adherent", numero=numero))
    return render_template("agent/replace.html", adh=adh, form=form), 422 if form.errors else 200


@bp.post("/adherents/<numero>/lien-mot-de-passe")
def delegate_link(numero: str):
    """A new password link for the delegate (the first mail did not go out, or the link expired)."""
    if ActionForm().validate_on_submit():
        try:
            mailed = adherents.send_delegate_link(context(numero))
        except InputError as exc:
            flash(say(next(iter(exc.errors.values()))), "error")
        else:
            _flash_link(mailed, _("Nouveau lien créé ; les liens précédents ne fonctionnent plus."))
    return redirect(url_for("agent.adherent", numero=numero))


def _flash_link(mailed, done: str) -> None:
    """What became of a password link's mail: sent (until when), or not — then the agent sends a new one."""
    if mailed.sent:
        flash(done + " " + _("Un lien pour choisir son mot de passe lui a été envoyé par e-mail (valable jusqu'au "
                             "%(until)s).", until=mailed.expires_at.strftime("%d/%m/%Y %H:%M UTC")), "ok")
    else:
        flash(done + " " + _("Le lien pour choisir son mot de passe n'a pas pu être envoyé (%(error)s) : utilisez « "
                             "Envoyer un nouveau lien » quand le serveur de messagerie répond.", error=mailed.error),
              "error")


@bp.post("/adherents/<numero>/categories")
def categories(numero: str):
    """The adherent's active categories (a signed letter); the Télédéclaration users of a retired one are named."""
    form = CategoriesForm()
    if form.validate_on_submit():
        try:
            change = adherents.set_categories(context(numero), form.wanted())
        except InputError as exc:
            apply_errors(form, exc, {"categories": "categories"})
        else:
            flash(_("Catégories actives : %(c)s.", c=", ".join(say(category_label(c)) for c in change.categories)),
                  "ok")
            if change.flagged:
                flash(_("%(n)s utilisateur(s) Télédéclaration déclarent encore une catégorie retirée : %(logins)s. "
                        "Leur jeton ne la porte plus ; la personne déléguée doit leur en attribuer une autre.",
                        n=len(change.flagged), logins=", ".join(change.flagged)), "error")
            return redirect(url_for("agent.adherent", numero=numero))
    return _render_adherent(numero, 422, categories_form=form)


@bp.post("/adherents/<numero>/resilier")
def terminate(numero: str):
    """Résiliation on a signed letter: every account disabled, the delegation removed, reversible for a while."""
    form = TerminateForm()
    if form.validate_on_submit():
        reason = clean(form.reason.data)
        if not reason:
            form.reason.errors = [_("Indiquez la lettre signée (date, référence) qui demande la résiliation.")]
            return _render_adherent(numero, 422, terminate_form=form)
        count = termination.terminate_adherent(context(numero), reason)
        _end_delegate_sessions(numero)
        flash(_("Adhérent résilié : %(n)s compte(s) désactivé(s), délégation retirée. Annulable pendant %(d)s jours.",
                n=count, d=core_services().settings.termination_grace_days), "ok")
    return redirect(url_for("agent.adherent", numero=numero))


@bp.post("/adherents/<numero>/annuler-resiliation")
def reinstate(numero: str):
    if ActionForm().validate_on_submit():
        try:
            count = termination.reinstate_adherent(context(numero))
        except InputError as exc:
            flash(say(next(iter(exc.errors.values()))), "error")
        else:
            flash(_("Résiliation annulée : %(n)s compte(s) réactivé(s), délégation rétablie.", n=count), "ok")
    return redirect(url_for("agent.adherent", numero=numero))


@bp.post("/adherents/<numero>/purger")
def purge(numero: str):
    if ActionForm().validate_on_submit():
        try:
            done = termination.purge_adherent(context(numero))
        except InputError as exc:
            flash(say(next(iter(exc.errors.values()))), "error")
        else:
            flash(_("Adhérent %(n)s purgé : %(u)s compte(s) supprimé(s) ; données personnelles effacées, journal "
                    "conservé.", n=numero, u=done.users), "ok")
            return redirect(url_for("agent.pending"))
    return redirect(url_for("agent.adherent", numero=numero))


@bp.post("/adherents/<numero>/suspendre")
def suspend(numero: str):
    form = ReasonForm()
    if form.validate_on_submit():
        count = adherents.suspend_adherent(context(numero), clean(form.reason.data))
        _end_delegate_sessions(numero)
        flash(_("Adhérent suspendu : %(n)s compte(s) désactivé(s).", n=count), "ok")
    return redirect(url_for("agent.adherent", numero=numero))


@bp.post("/adherents/<numero>/reactiver")
def reactivate(numero: str):
    if ActionForm().validate_on_submit():
        count = adherents.reactivate_adherent(context(numero))
        flash(_("Adhérent réactivé : %(n)s compte(s) réactivé(s).", n=count), "ok")
    return redirect(url_for("agent.adherent", numero=numero))


@bp.get("/courriels")
def unsent_mail():
    """Mails the SMTP server did not take (« Courriel non envoyé »), with their error and a « Renvoyer » button."""
    return render_template("agent/mail.html", mails=outbox.unsent(core_services()), action=ActionForm())


@bp.post("/courriels/<int:mail_id>/renvoyer")
def resend_mail(mail_id: int):
    if ActionForm().validate_on_submit():
        try:
            mail = outbox.resend(core_services(), actor(), mail_id)
        except RuleViolation as exc:
            flash(say(exc.message), "info")
        else:
            if mail.sent:
                flash(_("Courriel envoyé à %(to)s.", to=mail.recipient), "ok")
            else:
                flash(_("Courriel toujours non envoyé à %(to)s : %(error)s", to=mail.recipient,
                        error=mail.last_error), "error")
    return redirect(url_for("agent.unsent_mail"))
