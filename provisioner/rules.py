"""The domain rules, pure (no I/O): field checks with precise French/English messages, powers, tenancy-free.

Every action validates here before touching Keycloak; Keycloak stays the final judge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from provisioner.catalogue import Catalogue
from provisioner.errors import KeycloakRejected, Message, NeedsConfirmation, RuleViolation, ValidationError


@dataclass(frozen=True)
class PasswordPolicy:
    """The realm's password policy (realm/realm.yaml): what check_password applies and what Keycloak enforces."""

    min_length: int
    max_length: int
    pattern: str
    not_username: bool
    history: int

    def to_keycloak(self) -> str:
        parts = [f"length({self.min_length})", f"maxLength({self.max_length})", f"regexPattern({self.pattern})"]
        if self.not_username:
            parts.append("notUsername(undefined)")
        if self.history:
            parts.append(f"passwordHistory({self.history})")
        return " and ".join(parts)


# --- the brochure's payment confirmations (the teleservices themselves: provisioner.catalogue) ----------------
EASYPAIEMENT, VALIDATEUR = "easypaiement", "validateur"
# Keycloak credential types that are a second factor (an OTP app, a security key or passkey).
SECOND_FACTOR_TYPES = frozenset({"otp", "webauthn", "webauthn-passwordless"})
USER_TYPES = ("interne", "externe")
CIVILITES = ("M", "Mme")

# Logins: 3 to 30 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter
# (so a login never looks like a numéro d'adhérent, which is the delegate's username).
LOGIN_RE = re.compile(r"^[a-z][a-z0-9._-]{2,29}$")
ADHERENT_RE = re.compile(r"^[0-9]{4,10}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 .\-]{5,19}$")
NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*\.?$")
URL_RE = re.compile(r"^(https?://)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(/\S*)?$")
CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_-]{1,30}$")
# The brochure's staff categories in words; a category an agent adds later shows as its code, capitalised.
CATEGORY_LABELS = {"cadres": Message("Cadres", "Managers"), "employes": Message("Employés", "Employees"),
                   "ouvriers": Message("Ouvriers", "Workers")}


# The brochure's powers in words; one a teleservice added to realm/ gains shows as its code, capitalised.
POWER_LABELS = {"fichier-preetabli": Message("Fichier préétabli", "Pre-established file"),
                "formulaire-saisie": Message("Formulaire de saisie", "Entry form"),
                "ordonnateur": Message("Ordonnateur", "Payment initiator"),
                "validateur": Message("Validateur", "Validator"), "utilisateur": Message("Utilisateur", "User")}


def category_label(code: str) -> Message:
    words = code.replace("_", " ").replace("-", " ").capitalize()
    return CATEGORY_LABELS.get(code) or Message(words, words)


def power_label(code: str) -> Message:
    words = code.replace("_", " ").replace("-", " ").capitalize()
    return POWER_LABELS.get(code) or Message(words, words)


def M(fr: str, en: str) -> Message:
    return Message(fr, en)


REQUIRED = M("Ce champ est obligatoire.", "This field is required.")


# --- single fields: each returns None or the Message saying what is wrong --------------------------------
def check_required(value: str | None) -> Message | None:
    return REQUIRED if not (value or "").strip() else None


def check_login(login: str) -> Message | None:
    if not login:
        return REQUIRED
    if not LOGIN_RE.match(login):
        return M("L'identifiant doit compter 3 à 30 caractères : lettres minuscules, chiffres, « . », « _ » "
                 "ou « - », et commencer par une lettre.",
                 "The login must be 3 to 30 characters: lower-case letters, digits, '.', '_' or '-', "
                 "starting with a letter.")
    return None


def login_taken(login: str) -> Message:
    return M(f"L'identifiant « {login} » est déjà utilisé : choisissez-en un autre.",
             f"The login '{login}' is already taken: choose another one.")


def check_adherent(adherent: str) -> Message | None:
    if not adherent:
        return REQUIRED
    if not ADHERENT_RE.match(adherent):
        return M("Le numéro d'adhérent compte 4 à 10 chiffres.", "The member number is 4 to 10 digits.")
    return None


def check_password(policy: PasswordPolicy, password: str, username: str | None = None) -> Message | None:
    """The realm's password policy (realm/realm.yaml), checked before Keycloak for a precise message."""
    if not password:
        return REQUIRED
    lo, hi = policy.min_length, policy.max_length
    if not lo <= len(password) <= hi:
        return M(f"Le mot de passe doit compter de {lo} à {hi} caractères (il en a {len(password)}).",
                 f"The password must be {lo} to {hi} characters long (it has {len(password)}).")
    if not re.fullmatch(policy.pattern, password):
        if policy.pattern == "^[A-Za-z0-9]+$":
            return M("Le mot de passe ne peut contenir que des lettres et des chiffres (sans accents, espaces "
                     "ni symboles).", "The password may contain only letters and digits (no accents, spaces or "
                     "symbols).")
        return M(f"Le mot de passe ne respecte pas la règle {policy.pattern}.",
                 f"The password does not match the rule {policy.pattern}.")
    if policy.not_username and username and password.casefold() == username.casefold():
        return M("Le mot de passe ne peut pas être l'identifiant.", "The password may not be the login.")
    return None


def check_password_pair(policy: PasswordPolicy, password: str, confirm: str, username: str | None,
                        field: str = "password") -> dict[str, Message]:
    """Both password fields of a form: the policy, then the confirmation."""
    problem = check_password(policy, password, username)
    if problem:
        return {field: problem}
    if password != confirm:
        return {f"{field}_confirm": M("Les deux mots de passe ne sont pas identiques.",
                                      "The two passwords do not match.")}
    return {}


def check_email(email: str | None, required: bool = True) -> Message | None:
    if not email:
        return REQUIRED if required else None
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return M(f"« {email} » n'est pas une adresse e-mail valide (exemple : nom@entreprise.ma).",
                 f"'{email}' is not a valid e-mail address (e.g. name@company.ma).")
    return None


def check_phone(phone: str | None, required: bool = False) -> Message | None:
    if not phone:
        return REQUIRED if required else None
    if not PHONE_RE.match(phone):
        return M("Numéro de téléphone invalide : 6 à 20 chiffres, espaces, points ou tirets, « + » en tête "
                 "permis (exemple : +212 522 00 00 00).",
                 "Invalid phone number: 6 to 20 digits, spaces, dots or dashes, an optional leading '+' "
                 "(e.g. +212 522 00 00 00).")
    return None


def check_name(value: str | None, required: bool = True, max_len: int = 80) -> Message | None:
    if not (value or "").strip():
        return REQUIRED if required else None
    if len(value) > max_len:
        return M(f"{max_len} caractères au plus.", f"At most {max_len} characters.")
    if not NAME_RE.match(value.strip()):
        return M("Lettres, espaces, apostrophes et tirets seulement.",
                 "Letters, spaces, apostrophes and hyphens only.")
    return None


def check_text(value: str | None, required: bool = True, max_len: int = 120) -> Message | None:
    if not (value or "").strip():
        return REQUIRED if required else None
    if len(value) > max_len:
        return M(f"{max_len} caractères au plus.", f"At most {max_len} characters.")
    return None


def check_civilite(value: str | None, required: bool = False) -> Message | None:
    if not value:
        return REQUIRED if required else None
    if value not in CIVILITES:
        return M("Civilité : « M » ou « Mme ».", "Title: 'M' or 'Mme'.")
    return None


def check_url(value: str | None) -> Message | None:
    if value and not URL_RE.match(value):
        return M("Adresse de site web invalide (exemple : www.entreprise.ma).",
                 "Invalid website address (e.g. www.company.ma).")
    return None


def collect(checks: dict[str, Message | None]) -> dict[str, Message]:
    """The failing checks only."""
    return {k: v for k, v in checks.items() if v is not None}


def raise_if(errors: dict[str, Message]) -> None:
    if errors:
        raise ValidationError(errors)


# --- teleservice access ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Access:
    """What a teleservice user may do: exactly one teleservice, and its powers.

    ``powers`` are the client's roles: Télédéclaration modes (fichier-preetabli, formulaire-saisie),
    E@syPaiement powers (ordonnateur, validateur); Compte Adhérent and e-liquidation@ get 'utilisateur'.
    ``categories`` (Télédéclaration) empty means all the adherent's active categories.
    """

    teleservice: str
    powers: tuple[str, ...] = ()
    user_type: str | None = None          # Télédéclaration: interne / externe
    provider: str | None = None           # Télédéclaration externe: the provider's name (fiduciaire)
    categories: tuple[str, ...] = ()      # Télédéclaration

    def normalised(self, active_categories: tuple[str, ...], catalogue: Catalogue) -> "Access":
        """A one-role teleservice's users hold that role; a declaration service's get all active categories by
        default; what does not apply to the teleservice is dropped."""
        teleservice = catalogue[self.teleservice]
        powers = self.powers if teleservice.chooses_powers else teleservice.powers
        if not teleservice.declares:
            return Access(self.teleservice, tuple(sorted(set(powers))))
        cats = self.categories or tuple(active_categories)
        provider = self.provider if self.user_type == "externe" else None
        return Access(self.teleservice, tuple(sorted(set(powers))), self.user_type, provider, tuple(sorted(set(cats))))


def check_access(access: Access, active_categories: tuple[str, ...], catalogue: Catalogue) -> dict[str, Message]:
    """Powers of exactly one teleservice (realm/'s catalogue); a declaration service's type/provider/categories."""
    if access.teleservice not in catalogue:
        return {"teleservice": M(f"Téléservice inconnu : choisissez parmi {', '.join(catalogue.ids)}.",
                                 f"Unknown teleservice: choose one of {', '.join(catalogue.ids)}.")}
    teleservice = catalogue[access.teleservice]
    allowed = teleservice.powers
    foreign = [p for p in access.powers if p not in allowed]
    if foreign:
        return {"powers": M(f"Un identifiant ne sert qu'un téléservice : « {foreign[0]} » n'est pas un pouvoir de "
                            f"{access.teleservice} ({', '.join(allowed)}).",
                            f"One login serves exactly one teleservice: '{foreign[0]}' is not a power of "
                            f"{access.teleservice} ({', '.join(allowed)}).")}
    if teleservice.declares:
        return _check_teledeclaration(access, active_categories)
    if teleservice.chooses_powers and not access.powers:
        names = [p.capitalize() for p in allowed]
        return {"powers": M(f"Choisissez {' et/ou '.join(names)}.", f"Choose {' and/or '.join(names)}.")}
    return {}


def _check_teledeclaration(access: Access, active: tuple[str, ...]) -> dict[str, Message]:
    errors: dict[str, Message] = {}
    if not access.powers:
        errors["powers"] = M("Choisissez le mode Fichier préétabli et/ou Formulaire de saisie.",
                             "Choose the mode Fichier préétabli and/or Formulaire de saisie.")
    if access.user_type not in USER_TYPES:
        errors["user_type"] = M("Type d'utilisateur : « interne » ou « externe ».",
                                "User type: 'interne' or 'externe'.")
    elif access.user_type == "externe" and not (access.provider or "").strip():
        errors["provider"] = M("Pour un utilisateur externe, indiquez le nom du prestataire (fiduciaire).",
                               "For an external user, give the provider's name (e.g. the fiduciaire).")
    elif access.provider and len(access.provider) > 120:
        errors["provider"] = M("120 caractères au plus.", "At most 120 characters.")
    outside = [c for c in access.categories if c not in active]
    if outside:
        errors["categories"] = M(f"Catégorie « {outside[0]} » non active pour cet adhérent (actives : "
                                 f"{', '.join(active)}).",
                                 f"Category '{outside[0]}' is not active for this member (active: "
                                 f"{', '.join(active)}).")
    return errors


def check_categories(categories: tuple[str, ...]) -> Message | None:
    if not categories:
        return M("Au moins une catégorie.", "At least one category.")
    bad = [c for c in categories if not CATEGORY_RE.match(c)]
    if bad:
        return M(f"Catégorie « {bad[0]} » invalide : lettres minuscules, chiffres, « _ » ou « - ».",
                 f"Invalid category '{bad[0]}': lower-case letters, digits, '_' or '-'.")
    return None


# --- E@syPaiement confirmations ---------------------------------------------------------------------
# The brochure's order: choose 1 or 2 confirmations, create a validator, then "refaites l'opération pour ajouter un
# deuxième validateur". Choosing 2 first is allowed; until two validators are enabled the adherent is incomplete
# (shown to the delegate, in E@syPaiement's tokens and, when it lasts, in the security audit).
def check_confirmations(confirmations: int) -> None:
    """1 or 2 confirmations. Raises RuleViolation."""
    if confirmations not in (1, 2):
        raise RuleViolation("confirmations", M("Nombre de confirmations : 1 ou 2.", "Confirmations: 1 or 2."))


def validators_missing(confirmations: int, validators: int) -> int:
    """How many enabled validators the adherent lacks for its choice of 2 confirmations (0 when complete; an
    adherent with 1 confirmation is never incomplete: it may not use E@syPaiement at all)."""
    return max(0, 2 - validators) if confirmations == 2 else 0


def incomplete_message(validators: int) -> Message:
    """What a 2-confirmation adherent with ``validators`` enabled validators lacks (the delegate's banner)."""
    if validators <= 0:
        return M("E@syPaiement : l'adhérent a choisi deux confirmations mais n'a aucun validateur actif. Créez deux "
                 "validateurs (« Nouveau validateur ») ; en attendant, aucun paiement ne peut être confirmé.",
                 "E@syPaiement: the member chose two confirmations but has no enabled validator. Create two "
                 "validators ('New validator'); until then no payment can be confirmed.")
    return M(f"E@syPaiement : l'adhérent a choisi deux confirmations mais n'a que {validators} validateur actif. "
             "Ajoutez un deuxième validateur (« Nouveau validateur ») ; en attendant, aucun paiement ne peut être "
             "confirmé.",
             f"E@syPaiement: the member chose two confirmations but has only {validators} enabled validator. Add a "
             "second validator ('New validator'); until then no payment can be confirmed.")


def check_validator_removal(confirmations: int, validators_after: int) -> None:
    """Removing a validator's power may not leave a 2-confirmation adherent with fewer than two."""
    if validators_missing(confirmations, validators_after):
        raise RuleViolation("powers", M(
            "L'adhérent exige deux confirmations E@syPaiement : ajoutez d'abord un autre validateur, ou passez à "
            "une confirmation.",
            "The member requires two E@syPaiement confirmations: add another validator first, or switch to one "
            "confirmation."))


def check_validator_departure(confirmations: int, validators_after: int, confirmed: bool) -> None:
    """Disabling a departing validator is allowed, but when it leaves a 2-confirmation adherent with fewer than two
    the person must confirm it first (NeedsConfirmation carries the warning)."""
    if validators_missing(confirmations, validators_after) and not confirmed:
        raise NeedsConfirmation("confirm", M(
            f"Après cette désactivation, l'adhérent n'aura plus que {validators_after} validateur(s) actif(s) pour "
            "deux confirmations E@syPaiement : aucun paiement ne pourra être confirmé tant qu'un autre validateur ne "
            "sera pas créé (« Nouveau validateur »).",
            f"After this, the member will have only {validators_after} enabled validator(s) for two E@syPaiement "
            "confirmations: no payment can be confirmed until another validator is created ('New validator')."))


# --- secret questions -------------------------------------------------------------------------------
MIN_SECRET_QUESTIONS = 2


def check_secret_questions(pairs: list[tuple[str, str]]) -> dict[str, Message]:
    """At least two questions, distinct, each with an answer of 2 to 100 characters."""
    pairs = [(q.strip(), a) for q, a in pairs if q.strip() or a.strip()]
    if len(pairs) < MIN_SECRET_QUESTIONS:
        return {"secret_questions": M("Choisissez au moins deux questions secrètes et répondez-y.",
                                      "Choose at least two secret questions and answer them.")}
    for i, (q, a) in enumerate(pairs, 1):
        if not q or len(q) > 200:
            return {f"question{i}": M("Question de 1 à 200 caractères.", "A question of 1 to 200 characters.")}
        if not 2 <= len(a.strip()) <= 100:
            return {f"answer{i}": M("Réponse de 2 à 100 caractères.", "An answer of 2 to 100 characters.")}
    if len({q.casefold() for q, _ in pairs}) != len(pairs):
        return {"secret_questions": M("Choisissez des questions différentes.", "Choose different questions.")}
    return {}


def question_of(suggested: str | None, own: str | None) -> str:
    """The question a person chose: their own (typed) one, else the suggested one they picked."""
    return (own or "").strip() or (suggested or "").strip()


def check_question_choice(suggested: str | None, own: str | None) -> Message | None:
    """A suggested question or one of one's own, not both ("Vous pouvez choisir les questions")."""
    if (suggested or "").strip() and (own or "").strip():
        return M("Choisissez une question proposée ou écrivez la vôtre, pas les deux.",
                 "Pick a suggested question or write your own, not both.")
    return None


def password_refused(exc: KeycloakRejected) -> RuleViolation:
    """Keycloak's final word on a password (e.g. one of the last ones used), as a field message."""
    text = str(exc)
    if exc.password_history:
        return RuleViolation("password", Message("Ce mot de passe a déjà été utilisé récemment : choisissez-en un "
                                                 "autre.", "This password was used recently: choose another one."))
    return RuleViolation("password", Message(f"Mot de passe refusé par Keycloak : {text}",
                                             f"Password refused by Keycloak: {text}"))
