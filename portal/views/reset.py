"""Forgotten password of a teleservice user: login → secret questions → new password → done.

Never says whether a login exists; locked after a few wrong answers (per login and per address).
Also the page behind a mailed password link (a new delegate chooses its own: provisioner/password_links.py)."""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session, url_for

from provisioner import password_links, password_reset
from provisioner.errors import InputError, KeycloakRejected, Message, ValidationError
from portal.forms import ResetAnswersForm, ResetLoginForm, ResetPasswordForm, apply_errors
from portal.i18n import say
from portal.services import core_services, services

bp = Blueprint("reset", __name__, url_prefix="/mot-de-passe-oublie")
link_bp = Blueprint("password_link", __name__, url_prefix=password_links.PATH.rstrip("/"))
VERIFIED_FOR = 600  # seconds between correct answers and the new password
REFUSED_BY_KEYCLOAK = Message("Ce mot de passe est refusé (par exemple, il a déjà servi récemment) : choisissez-en un "
                              "autre.", "This password is refused (for example, it was used recently): choose another.")
LOGIN_PREFILL_MAX = 64  # a pre-filled login longer than any username is cut, never echoed whole


def _locked(exc: password_reset.ResetLocked):
    session.pop("reset", None)
    return render_template("reset/locked.html", message=say(exc.message)), 429


@bp.route("/", methods=["GET", "POST"])
def start():
    form = ResetLoginForm()
    if form.validate_on_submit():
        login = form.login.data or ""
        if not login.strip():
            form.login.errors = [say(Message("Indiquez votre login.", "Enter your login."))]
        else:
            try:
                ch = password_reset.challenge(services().service_gateway(), core_services(), login,
                                              request.remote_addr or "?")
            except password_reset.ResetLocked as exc:
                return _locked(exc)
            except password_reset.ResetByLetter as exc:  # a delegate's numéro: its reset is the signed letter
                apply_errors(form, exc)
                return render_template("reset/start.html", form=form, by_letter=True), 422
            session["reset"] = {"login": ch.login, "questions": list(ch.questions)}
            return redirect(url_for("reset.questions"))
    elif request.method == "GET" and not form.login.data:
        # From Keycloak's login page ("Mot de passe oublié ?", realm/realm.yaml): the login typed there.
        form.login.data = request.args.get("login", "").strip()[:LOGIN_PREFILL_MAX]
    return render_template("reset/start.html", form=form), 422 if form.errors else 200


@bp.route("/questions", methods=["GET", "POST"])
def questions():
    state = session.get("reset")
    if not state:
        return redirect(url_for("reset.start"))
    form = ResetAnswersForm()
    fields = [form.answer1, form.answer2, form.answer3][:len(state["questions"])]
    for f, q in zip(fields, state["questions"]):
        f.label.text = q
    if form.validate_on_submit():
        try:
            user_id = password_reset.verify_answers(services().service_gateway(), core_services(), state["login"],
                                                    request.remote_addr or "?", [f.data or "" for f in fields])
        except password_reset.ResetLocked as exc:
            return _locked(exc)
        if user_id:
            session["reset"] = {"login": state["login"], "user_id": user_id, "at": time.time()}
            return redirect(url_for("reset.new_password"))
        fields[0].errors = [say(password_reset.WRONG_ANSWERS)]
    return render_template("reset/questions.html", form=form, fields=fields, login=state["login"]), \
        422 if form.errors else 200


@bp.route("/nouveau", methods=["GET", "POST"])
def new_password():
    state = session.get("reset") or {}
    if not state.get("user_id") or time.time() - state.get("at", 0) > VERIFIED_FOR:
        session.pop("reset", None)
        return redirect(url_for("reset.start"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            teleservice = password_reset.set_new_password(services().service_gateway(), core_services(),
                                                          state["user_id"], form.password.data or "",
                                                          form.password_confirm.data or "")
        except ValidationError as exc:
            apply_errors(form, exc)
        except KeycloakRejected:
            form.password.errors = [say(REFUSED_BY_KEYCLOAK)]
        else:
            session.pop("reset", None)
            session["reset_done"] = teleservice  # where the user logs in now (the done page leads there)
            return redirect(url_for("reset.done"))
    policy = core_services().password_policy
    return render_template("reset/new.html", form=form, login=state["login"], policy=policy), \
        422 if form.errors else 200


@bp.get("/termine")
def done():
    """Done: back to the user's own teleservice (one login, one teleservice), else every teleservice."""
    catalogue = core_services().catalogue
    own = session.get("reset_done")
    listed = [catalogue[own]] if own in catalogue else list(catalogue)
    return render_template("reset/done.html", teleservices=[t for t in listed if t.url])


@link_bp.route("/<token>", methods=["GET", "POST"])
def choose(token: str):
    """The link mailed to a new delegate: it chooses its password (the realm's policy); the link is then spent."""
    try:
        link = password_links.find(core_services(), token)
    except password_links.LinkInvalid as exc:
        return render_template("reset/link_invalid.html", message=say(exc.message)), 410
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            login = password_reset.choose_password(services().service_gateway(), core_services(), token,
                                                   form.password.data or "", form.password_confirm.data or "")
        except password_links.LinkInvalid as exc:
            return render_template("reset/link_invalid.html", message=say(exc.message)), 410
        except InputError as exc:
            apply_errors(form, exc)
        else:
            return render_template("reset/chosen.html", login=login)
    until = link.expires_at.strftime("%d/%m/%Y %H:%M UTC")
    return render_template("reset/choose.html", form=form, login=link.login, until=until,
                           policy=core_services().password_policy), 422 if form.errors else 200
