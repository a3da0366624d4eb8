"""Flask-WTF forms: field names, labels and CSRF only. The provisioner checks the values (no rule here);
``apply_errors`` puts its messages next to the fields they name."""

from __future__ import annotations

import re

from flask import flash
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, Form, FormField, PasswordField, RadioField, SelectField, SelectMultipleField,
                     StringField, TextAreaField)
from wtforms.widgets import CheckboxInput, ListWidget

from provisioner.errors import InputError
from portal.i18n import say

CIVILITES = [("", "—"), ("M", "M."), ("Mme", "Mme")]
USER_TYPES = [("interne", _l("Interne")), ("externe", _l("Externe (fiduciaire ou autre prestataire)"))]


class Starred:
    """Marks a field mandatory (asterisk, aria-required); the provisioner says whether it is filled."""

    field_flags = {"required": True}

    def __call__(self, form, field) -> None:
        pass


STAR = [Starred()]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form) -> None:  # choices are checked by the provisioner, with a clear message
        pass


class LooseRadioField(RadioField):
    def pre_validate(self, form) -> None:
        pass


class LooseSelectField(SelectField):
    def pre_validate(self, form) -> None:
        pass


# --- subscription (Abonnement): the brochure's three parts -----------------------------------------------
class CompanyForm(Form):
    numero = StringField(_l("Numéro d'adhérent"), STAR)
    raison_sociale = StringField(_l("Raison sociale"), STAR)
    rc = StringField(_l("Numéro RC"), STAR)
    patente = StringField(_l("Numéro de patente"), STAR)
    adresse = StringField(_l("Adresse"))
    telephone = StringField(_l("Téléphone"))
    fax = StringField(_l("Fax"))
    site_web = StringField(_l("Site web"))


class PersonForm(Form):
    """Who the person is, as each part of the brochure's form asks it (fields shown first)."""

    civilite = LooseSelectField(_l("Civilité"), choices=CIVILITES)
    nom = StringField(_l("Nom"), STAR)
    prenom = StringField(_l("Prénom"), STAR)
    fonction = StringField(_l("Fonction"), STAR)


class ResponsableForm(PersonForm):
    telephone = StringField(_l("Téléphone fixe 1"))
    telephone2 = StringField(_l("Téléphone fixe 2"))
    fax = StringField(_l("Fax"))
    gsm = StringField(_l("GSM"))
    email = StringField(_l("E-mail"))


class DelegateDetailsSubForm(PersonForm):
    telephone = StringField(_l("Téléphone direct"))
    gsm = StringField(_l("GSM"))
    fax = StringField(_l("Fax"))
    email = StringField(_l("E-mail"), STAR)


class DelegateSubForm(DelegateDetailsSubForm):
    password = PasswordField(_l("Mot de passe"), STAR)
    password_confirm = PasswordField(_l("Saisir à nouveau le mot de passe"), STAR)


class SubscriptionForm(FlaskForm):
    company = FormField(CompanyForm, _l("Informations générales"))
    responsable = FormField(ResponsableForm, _l("Responsable de l'entreprise"))
    delegate = FormField(DelegateSubForm, _l("Personne déléguée"))


class DelegateForm(FlaskForm):
    """Agent: the new delegate of a réabonnement (the subscription's third part without the password: the new
    delegate chooses it through a mailed link)."""

    delegate = FormField(DelegateDetailsSubForm, _l("Nouvelle personne déléguée"))


# --- delegate space ------------------------------------------------------------------------------------
class _Login(FlaskForm):
    login = StringField(_l("Login (identifiant)"), STAR)


class _Details(FlaskForm):
    """A user's details, as the delegate types them (creation and edit pages)."""

    civilite = LooseSelectField(_l("Civilité"), choices=CIVILITES)
    nom = StringField(_l("Nom"), STAR)
    prenom = StringField(_l("Prénom"), STAR)
    email = StringField(_l("E-mail"), STAR)
    fonction = StringField(_l("Fonction"))
    telephone = StringField(_l("Téléphone"))


class AccessForm(FlaskForm):
    user_type = LooseRadioField(_l("Type d'utilisateur"), STAR, choices=USER_TYPES)
    provider = StringField(_l("Prestataire (fiduciaire)"))
    powers = MultiCheckboxField(_l("Pouvoirs"), STAR, choices=[])
    categories = MultiCheckboxField(_l("Catégories déclarées"), choices=[])


class UserForm(_Login, _Details, AccessForm):
    """The creation page: login, details, access, password and two secret questions (WTForms keeps the fields in
    the order they are declared across these classes)."""

    password = PasswordField(_l("Mot de passe"), STAR)
    password_confirm = PasswordField(_l("Saisir à nouveau le mot de passe"), STAR)
    question1 = LooseSelectField(_l("Question secrète 1"), STAR, choices=[])
    answer1 = StringField(_l("Réponse 1"), STAR)
    question2 = LooseSelectField(_l("Question secrète 2"), STAR, choices=[])
    answer2 = StringField(_l("Réponse 2"), STAR)


class EditUserForm(_Details):
    """The delegate's edit page: the user's details and, optionally, new secret questions (a suggested one or one's
    own each); the current answers are never shown (only their hashes are kept)."""

    question1 = LooseSelectField(_l("Question secrète 1 (proposée)"), choices=[])
    own_question1 = StringField(_l("Ou votre propre question 1"))
    answer1 = StringField(_l("Réponse 1"))
    question2 = LooseSelectField(_l("Question secrète 2 (proposée)"), choices=[])
    own_question2 = StringField(_l("Ou votre propre question 2"))
    answer2 = StringField(_l("Réponse 2"))

    QUESTION_FIELDS = ("question1", "own_question1", "answer1", "question2", "own_question2", "answer2")

    def questions_given(self) -> bool:
        """Whether the delegate filled any question field (all empty: the current questions are kept)."""
        return any(clean(getattr(self, name).data) for name in self.QUESTION_FIELDS)


class PasswordForm(FlaskForm):
    password = PasswordField(_l("Nouveau mot de passe"), STAR)
    password_confirm = PasswordField(_l("Saisir à nouveau le mot de passe"), STAR)


class ConfirmationsForm(FlaskForm):
    confirmations = LooseRadioField(_l("Nombre de confirmations E@syPaiement"),
                                    choices=[("1", _l("1 confirmation")), ("2", _l("2 confirmations"))])


class ImportForm(FlaskForm):
    file = FileField(_l("Fichier CSV des utilisateurs"), STAR)


class ActionForm(FlaskForm):
    """A button that changes something: CSRF only."""


class FindLoginForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search
    q = StringField(_l("Nom, e-mail ou login"))


# --- agent back office ---------------------------------------------------------------------------------
class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Motif du refus"), STAR)


class PaperForm(FlaskForm):
    """The signed and stamped form arrived: on which day (empty: now). The provisioner checks the date."""
    received_on = StringField(_l("Date de réception du formulaire signé"))


class FindAdherentForm(FlaskForm):
    class Meta:
        csrf = False
    numero = StringField(_l("Numéro d'adhérent"))


class EmailForm(FlaskForm):
    email = StringField(_l("Nouvel e-mail de la personne déléguée"), STAR)


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Motif"))


class TerminateForm(FlaskForm):
    """Agent: the résiliation, and the signed letter it follows (fields prefixed: the suspension's form, on the same
    page, has a reason too)."""
    reason = TextAreaField(_l("Lettre signée qui demande la résiliation (date, référence)"), STAR)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="resiliation", **kwargs)


class CategoriesForm(FlaskForm):
    """Agent: the adherent's active staff categories, ticked in words (a typo can no longer retire one), and one the
    signed letter adds, typed."""
    categories = MultiCheckboxField(_l("Catégories actives"), STAR, choices=[])
    added = StringField(_l("Nouvelle catégorie"))

    def wanted(self) -> tuple[str, ...]:
        """The categories ticked, and the one typed."""
        return tuple(self.categories.data or ()) + ((clean(self.added.data),) if clean(self.added.data) else ())


# --- access reviews (the security team) -----------------------------------------------------------------
class OpenReviewForm(FlaskForm):
    """A new access review campaign: what to call it, whose users, until when, what the deadline does, reminders."""

    name = StringField(_l("Nom de la campagne"), STAR)
    scope = LooseRadioField(_l("Adhérents concernés"), STAR, default="all", choices=[
        ("all", _l("Tous les adhérents actifs")), ("listed", _l("Seulement les adhérents ci-dessous"))])
    adherents = TextAreaField(_l("Numéros d'adhérent"))
    deadline = StringField(_l("Échéance"), STAR)
    on_deadline = LooseRadioField(_l("À l'échéance, les utilisateurs que personne n'a revus sont"), STAR, choices=[
        ("disable", _l("désactivés (la personne déléguée pourra en réactiver un)")),
        ("report", _l("seulement signalés à l'équipe sécurité (ils restent actifs)"))])
    reminder_days = StringField(_l("Rappels aux personnes déléguées (jours avant l'échéance)"), default="7,1")

    def listed(self) -> list[str] | None:
        """The numéros typed (one per line, or separated by commas or spaces); None: every adherent."""
        if self.scope.data != "listed":
            return None
        return [n for n in re.split(r"[\s,;]+", self.adherents.data or "") if n]


class CloseReviewForm(FlaskForm):
    force = BooleanField(_l("Je confirme la clôture avant l'échéance"))


# --- forgotten password --------------------------------------------------------------------------------
class ResetLoginForm(FlaskForm):
    login = StringField(_l("Login (identifiant)"), STAR)


class ResetAnswersForm(FlaskForm):
    answer1 = StringField("", STAR)
    answer2 = StringField("", STAR)
    answer3 = StringField("")


class ResetPasswordForm(PasswordForm):
    pass


def clean(value: str | None) -> str:
    """A typed value without surrounding blanks ('' when the field was not sent)."""
    return (value or "").strip()


def cleaned(data: dict) -> dict:
    """A sub-form's data, cleaned; passwords are passed exactly as typed."""
    return {k: (v or "") if "password" in k else clean(v) for k, v in data.items() if k != "csrf_token"}


# --- errors from the provisioner, next to their fields -------------------------------------------------
def _field(form, dotted: str):
    node = form
    for part in dotted.split("."):
        node = getattr(node, "form", node)  # FormField -> its inner form
        node = getattr(node, part, None) if node is not None else None
        if node is None:
            return None
    return node if hasattr(node, "errors") and hasattr(node, "data") else None


def apply_errors(form, exc: InputError, aliases: dict[str, str] | None = None) -> None:
    """Put each provisioner message next to its field; messages for no field become a flashed error."""
    for key, message in exc.errors.items():
        target = _field(form, (aliases or {}).get(key, key))
        text = say(message)
        if target is None:
            flash(text, "error")
        else:
            if not isinstance(target.errors, list):
                target.errors = list(target.errors)
            target.errors.append(text)
    _reset_error_cache(form)


def _reset_error_cache(form) -> None:
    form._errors = None  # WTForms caches Form.errors; ours were added after validate()
    for f in form:
        if isinstance(f, FormField):
            _reset_error_cache(f.form)
