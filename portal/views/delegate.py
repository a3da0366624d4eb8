"""The delegate's space (Administration des utilisateurs): the adherent is always the delegate's own,
taken from the login, never from the request; the provisioner checks every user against it."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from provisioner import adherents, bulk, second_factor, trail, users
from provisioner import teleservice_users
from provisioner.errors import InputError, NeedsConfirmation, RuleViolation
from provisioner.catalogue import Catalogue
from provisioner.rules import POWER_LABELS, USER_TYPES, Access, category_label, power_label
from provisioner.secret_questions import SecretAnswer
from portal.auth import guard_space
from portal.forms import (AccessForm, ActionForm, ConfirmationsForm, EditUserForm, FindLoginForm, ImportForm,
                          PasswordForm, UserForm, apply_errors, clean)
from portal.i18n import say
from portal.services import context, core_services, teleservice_names

bp = Blueprint("delegate", __name__, url_prefix="/delegue")
guard_space(bp, "delegate")


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    teleservice: str
    user_type: str | None = None     # a declaration service has a tab per user type
    chooses_powers: bool = False     # the delegate picks the user's powers (several roles)
    declares: bool = False           # a declaration service: provider and categories


# Short labels (translated) of the brochure's teleservices (their powers: rules.POWER_LABELS); a teleservice added to
# realm/ shows its realm/ name and role descriptions.
TAB_LABELS = {"teledeclaration-interne": _l("Télédéclaration interne"),
              "teledeclaration-externe": _l("Télédéclaration externe"),
              "compte-adherent": _l("Compte Adhérent"), "easypaiement": _l("E@syPaiement"),
              "eliquidation": _l("e-liquidation@")}


# The brochure's orange bar: « Informations générales » (the space's home), then Télédéclaration interne (2nd
# case) and externe (3rd), Compte Adhérent (4th), e-liquidation@ (5th), then E@syPaiement's « Profils ». A
# teleservice added to realm/ comes after them.
BROCHURE_ORDER = ("teledeclaration-interne", "teledeclaration-externe", "compte-adherent", "eliquidation",
                  "easypaiement")


@functools.cache
def _tabs(catalogue: Catalogue) -> tuple[Tab, ...]:
    out = []
    for t in catalogue:
        kinds = [(f"{t.client_id}-{kind}", kind) for kind in USER_TYPES] if t.declares else [(t.client_id, None)]
        out += [Tab(slug, TAB_LABELS.get(slug, f"{t.name} {kind}" if kind else t.name), t.client_id, kind,
                    t.chooses_powers, t.declares) for slug, kind in kinds]
    rank = {slug: i for i, slug in enumerate(BROCHURE_ORDER)}
    return tuple(sorted(out, key=lambda tab: rank.get(tab.slug, len(rank))))


def tabs() -> tuple[Tab, ...]:
    """The teleservices of the brochure's orange bar, in its order, from realm/'s teleservices."""
    return _tabs(core_services().catalogue)


def tab(slug: str) -> Tab:
    return next((t for t in tabs() if t.slug == slug), None) or abort(404)


def power_labels(teleservice: str) -> list[tuple[str, str]]:
    """The teleservice's powers as (role, label) choices."""
    t = core_services().catalogue[teleservice]
    return [(p, say(power_label(p)) if p in POWER_LABELS else t.description(p)) for p in t.powers]


@bp.app_context_processor
def labels() -> dict:
    return {"TABS": tabs()}


def adherent() -> str:
    return g.user["adherent"]


@bp.context_processor
def easypaiement_banner() -> dict:
    """The banner of every delegate page: what the adherent lacks for its 2 E@syPaiement confirmations (read when
    the page's layout asks for it, with the delegate's own token)."""
    def gap():
        return adherents.completeness(context()).message
    return {"easypaiement_gap": gap}


def tab_of(user: teleservice_users.TeleserviceUser) -> Tab:
    matching = [t for t in tabs() if t.teleservice == user.access.teleservice]
    return next((t for t in matching if t.user_type == (user.access.user_type or "interne")), matching[0])


def _categories() -> tuple[str, ...]:
    return adherents.active_categories(context())


@bp.get("/")
def dashboard():
    """« Informations générales »: the company, its E@syPaiement confirmations, its users per teleservice (where to
    start, at the first visit)."""
    return _render_home()


def _render_home(form: ConfirmationsForm | None = None, status: int = 200):
    adh, by_service = users.overview(context())
    by_tab = {t.slug: [] for t in tabs()}
    for items in by_service.values():
        for u in items:
            by_tab[tab_of(u).slug].append(u)
    form = form or ConfirmationsForm(data={"confirmations": str(adh.confirmations)})
    return render_template("delegate/dashboard.html", adh=adh, by_tab=by_tab, form=form), status


@bp.get("/t/<slug>", endpoint="tab")
def teleservice_tab(slug: str):
    t = tab(slug)
    listed = users.list_users(context(), t.teleservice).get(t.teleservice, [])
    rows = [u for u in listed if tab_of(u) == t]
    return render_template("delegate/tab.html", tab=t, rows=rows, action=ActionForm())


def _set_choices(form: UserForm | AccessForm, teleservice: str, categories: tuple[str, ...]) -> None:
    """The powers of the teleservice and the adherent's active categories."""
    form.powers.choices = power_labels(teleservice) if core_services().catalogue[teleservice].chooses_powers else []
    form.categories.choices = [(c, say(category_label(c))) for c in categories]


def _question_choices(form: UserForm | EditUserForm) -> None:
    questions = [("", _("— choisir une question —"))] + [(q, q) for q in core_services().settings.secret_question_choices]
    form.question1.choices = form.question2.choices = questions


def _prepare_user_form(form: UserForm, t: Tab, categories: tuple[str, ...]) -> None:
    _set_choices(form, t.teleservice, categories)
    _question_choices(form)


@bp.route("/t/<slug>/nouveau", methods=["GET", "POST"])
def create(slug: str):
    t = tab(slug)
    categories = _categories()
    form = UserForm()
    _prepare_user_form(form, t, categories)
    if request.method == "GET" and t.declares:
        form.categories.data = list(categories)  # the brochure: select every active category
    if request.method == "GET" and request.args.get("pouvoir") in dict(form.powers.choices):
        form.powers.data = [request.args["pouvoir"]]  # "Nouveau validateur" (the E@syPaiement banner)
    if form.validate_on_submit():
        access = Access(t.teleservice, tuple(form.powers.data or ()), t.user_type,
                        clean(form.provider.data) or None if t.user_type == "externe" else None,
                        tuple(form.categories.data or ()) if t.declares else ())
        new = teleservice_users.NewUser(
            login=clean(form.login.data),
            details=teleservice_users.UserDetails(nom=clean(form.nom.data), prenom=clean(form.prenom.data),
                                      email=clean(form.email.data), civilite=form.civilite.data or "",
                                      fonction=clean(form.fonction.data), telephone=clean(form.telephone.data)),
            access=access, password=form.password.data, password_confirm=form.password_confirm.data,
            secret_answers=tuple(SecretAnswer(q, a) for q, a in ((form.question1.data, form.answer1.data),
                                                                   (form.question2.data, form.answer2.data))
                                 if clean(q) or clean(a)))
        try:
            created = users.create_user(context(), new)
        except InputError as exc:
            apply_errors(form, exc, {"secret_questions": "question1", "teleservice": "powers"})
        else:
            flash(_("Utilisateur « %(login)s » créé.", login=created.login), "ok")
            return redirect(url_for("delegate.tab", slug=slug))
    return render_template("delegate/create.html", tab=t, form=form), 422 if form.errors else 200


def _user(login: str) -> teleservice_users.TeleserviceUser:
    """One of the adherent's users (the provisioner refuses another adherent's: 403)."""
    return users.get_user(context(), login)


@bp.get("/utilisateurs/<login>")
def detail(login: str):
    return _render_detail(_user(login))


def _render_detail(u: teleservice_users.TeleserviceUser, password_form: PasswordForm | None = None,
                   access_form: AccessForm | None = None, status: int = 200):
    access_form = access_form or AccessForm(data={
        "user_type": u.access.user_type, "provider": u.access.provider, "powers": list(u.access.powers),
        "categories": list(u.access.categories)})
    _set_choices(access_form, u.access.teleservice, _categories())
    # Validators must use a second factor: whether they have enrolled (None: not asked of this user).
    enrolled = second_factor.enrolment(context(), [u]).get(u.login)
    return render_template("delegate/detail.html", u=u, tab=tab_of(u), password_form=password_form or PasswordForm(),
                           access_form=access_form, action=ActionForm(), enrolled=enrolled), status


@bp.route("/utilisateurs/<login>/modifier", methods=["GET", "POST"])
def edit(login: str):
    """Nom, prénom, e-mail, téléphone, fonction, and new secret questions (left empty: the current ones are kept).
    The login comes from the URL only; the provisioner checks it belongs to the delegate's adherent."""
    u = _user(login)
    form = EditUserForm(data=asdict(u.details) if request.method == "GET" else None)
    _question_choices(form)
    if form.validate_on_submit():
        details = teleservice_users.UserDetails(nom=clean(form.nom.data), prenom=clean(form.prenom.data),
                                    email=clean(form.email.data), civilite=form.civilite.data or "",
                                    fonction=clean(form.fonction.data), telephone=clean(form.telephone.data))
        questions = tuple(users.QuestionChoice(clean(getattr(form, f"question{i}").data),
                                               clean(getattr(form, f"own_question{i}").data),
                                               getattr(form, f"answer{i}").data or "")
                          for i in (1, 2)) if form.questions_given() else None
        try:
            users.edit_user(context(), login, details, questions)
        except InputError as exc:
            apply_errors(form, exc, {"secret_questions": "question1"})
        else:
            flash(_("Utilisateur « %(login)s » mis à jour.", login=login), "ok")
            return redirect(url_for("delegate.detail", login=login))
    current = users.secret_questions_of(context(), login)
    return render_template("delegate/edit.html", u=u, tab=tab_of(u), form=form, questions=current), \
        422 if form.errors else 200


@bp.post("/utilisateurs/<login>/second-facteur")
def reset_second_factor(login: str):
    """A validator lost its phone: its second factor is removed; it enrols again at its next login."""
    if not ActionForm().validate_on_submit():
        abort(400)
    second_factor.reset_user_second_factor(context(), login)
    flash(_("Second facteur de « %(login)s » réinitialisé : il en enregistrera un nouveau à sa prochaine "
            "connexion.", login=login), "ok")
    return redirect(url_for("delegate.detail", login=login))


@bp.post("/utilisateurs/<login>/mot-de-passe")
def set_password(login: str):
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            users.set_password(context(), login, form.password.data,
                               form.password_confirm.data)
        except InputError as exc:
            apply_errors(form, exc)
        else:
            flash(_("Nouveau mot de passe enregistré : l'utilisateur devra le changer à sa prochaine connexion."), "ok")
            return redirect(url_for("delegate.detail", login=login))
    return _render_detail(_user(login), password_form=form, status=422)


@bp.post("/utilisateurs/<login>/acces")
def change_access(login: str):
    form = AccessForm()
    u = _user(login)
    if form.validate_on_submit():
        access = Access(u.access.teleservice, tuple(form.powers.data or ()),
                        form.user_type.data or u.access.user_type,
                        clean(form.provider.data) or None, tuple(form.categories.data or ()))
        try:
            users.change_access(context(), login, access)
        except InputError as exc:
            apply_errors(form, exc, {"teleservice": "powers"})
        else:
            flash(_("Pouvoirs de « %(login)s » mis à jour.", login=login), "ok")
            return redirect(url_for("delegate.detail", login=login))
    return _render_detail(u, access_form=form, status=422)


STATE_ACTIONS = {
    "disable": (teleservice_users.disable_user, _l("Compte « %(login)s » désactivé.")),
    "enable": (users.enable_user, _l("Compte « %(login)s » réactivé.")),
    "unlock": (users.unlock_user, _l("Compte « %(login)s » débloqué.")),
}


@bp.post("/utilisateurs/etat")
def change_state():
    """Disable / re-enable / unlock: the login comes in a form field and goes through the tenant check. Disabling a
    validator the adherent's 2 confirmations still need asks for a confirmation first (``confirmed``)."""
    form = ActionForm()
    login, what = request.form.get("login", ""), request.form.get("action", "")
    if not form.validate_on_submit() or what not in STATE_ACTIONS or not login:
        abort(400)
    action, done = STATE_ACTIONS[what]
    extra = {"confirmed": request.form.get("confirmed") == "1"} if what == "disable" else {}
    try:
        action(context(), login, **extra)
    except NeedsConfirmation as exc:
        return render_template("delegate/confirm_disable.html", u=_user(login), warning=say(exc.message),
                               action=ActionForm())
    except RuleViolation as exc:
        flash(say(exc.message), "error")
    else:
        flash(str(done) % {"login": login}, "ok")
    return redirect(url_for("delegate.detail", login=login))


@bp.route("/parametres", methods=["GET", "POST"])
def settings_page():
    """The E@syPaiement confirmations, a form of « Informations générales » (where a GET leads)."""
    if request.method == "GET":
        return redirect(url_for("delegate.dashboard", _anchor="easypaiement-confirmations"))
    form = ConfirmationsForm()
    if form.validate_on_submit():
        try:
            adherents.set_easypaiement_confirmations(context(), int(form.confirmations.data or 0))
        except (InputError, ValueError) as exc:
            if isinstance(exc, ValueError):
                form.confirmations.errors = [_("Choisissez 1 ou 2 confirmations.")]
            else:
                apply_errors(form, exc)
        else:
            flash(_("Informations générales enregistrées."), "ok")  # the banner says what is still missing
            return redirect(url_for("delegate.dashboard"))
    return _render_home(form, 422 if form.errors else 200)


@bp.get("/journal")
def journal():
    # The adherent read with the delegate's own token first (Keycloak refuses another's): the banner's read.
    users.overview(context())
    events = trail.events(core_services().db, adherent=adherent(), limit=300)
    return render_template("delegate/journal.html", events=events, teleservices=teleservice_names())


@bp.get("/logins")
def find_logins():
    form = FindLoginForm(request.args)
    found = users.find_logins(context(), clean(form.q.data)) \
        if clean(form.q.data) else None
    return render_template("delegate/find.html", form=form, found=found)


@bp.route("/import", methods=["GET", "POST"])
def bulk_import():
    form = ImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        raw = upload.read() if upload else b""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")  # Excel on Windows
        if not text.strip():
            form.file.errors = [_("Choisissez un fichier CSV non vide.")]
        else:
            report = bulk.import_users(context(), text)
    return render_template("delegate/import.html", form=form, report=report, columns=bulk.COLUMNS,
                           required=bulk.REQUIRED_COLUMNS), 422 if form.errors else 200
