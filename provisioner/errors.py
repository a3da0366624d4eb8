"""Errors named by what went wrong, each carrying what a person needs to fix it."""

from __future__ import annotations


class ProvisionerError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = 1


class ConfigError(ProvisionerError):
    """A setting is missing or wrong; raised at start, naming the setting."""

    def __init__(self, setting: str, problem: str):
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class RealmSpecError(ProvisionerError):
    """realm/ YAML is invalid: names the file, the key path and the problem."""

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


class UnsafePlan(ProvisionerError):
    """The plan deletes objects or is unusually large and was not explicitly allowed."""


# --- Keycloak gateway errors (translated once from HTTP statuses) ---------------------------------


class KeycloakUnavailable(ProvisionerError):
    """Keycloak cannot be reached (connection refused, timeout, 5xx)."""


class NotFound(ProvisionerError):
    """The object does not exist in Keycloak (HTTP 404)."""


class Conflict(ProvisionerError):
    """The object already exists (HTTP 409)."""


class Forbidden(ProvisionerError):
    """Keycloak refused the caller (HTTP 401/403)."""


class SessionExpired(Forbidden):
    """Keycloak no longer accepts the caller's token (HTTP 401): its session ended (logged out elsewhere, ended by
    an agent) or the token expired. The portal asks the person to log in again instead of showing a refusal."""


class KeycloakRejected(ProvisionerError):
    """Keycloak refused the request as invalid (HTTP 400), e.g. a password against the policy. ``code`` is Keycloak's
    own error key (``invalidPasswordHistoryMessage``...) when it gave one: its sentence is localised and reworded
    between releases, the key is not."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code

    @property
    def password_history(self) -> bool:
        """The password is one of the account's last ones (the policy's passwordHistory)."""
        return self.code == "invalidPasswordHistoryMessage"

    @property
    def about_password(self) -> bool:
        """The refusal is about a password (the realm's policy, its history), not about the rest of the request."""
        return bool(self.code and self.code.startswith("invalidPassword")) or "password" in str(self).lower()


# --- Mail (provisioner/mailer.py, provisioner/outbox.py) --------------------------------------------


class MailError(ProvisionerError):
    """The SMTP server did not take a message (it refused it, or could not be reached)."""


class MailServerUnreachable(MailError):
    """The SMTP server could not be reached (refused connection, timeout, dropped): retry later."""


class DatabaseUnavailable(ProvisionerError):
    """Our database cannot be reached (down, restarting, connection lost): retry later."""


# --- Domain errors ---------------------------------------------------------------------------------


class InputError(ProvisionerError):
    """What the person typed or chose is refused. ``errors`` maps each field to change -> how (French, English):
    views and the CLI catch this one class and show every message next to its field."""

    def __init__(self, errors: dict[str, "Message"]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v.en}" for k, v in errors.items()))


class ValidationError(InputError):
    """One or more fields are invalid (the rules' checks of a whole form)."""


class Message:
    """A message in French (first) and English."""

    __slots__ = ("fr", "en")

    def __init__(self, fr: str, en: str):
        self.fr, self.en = fr, en

    def __str__(self) -> str:
        return self.en

    def __repr__(self) -> str:
        return f"Message({self.fr!r}, {self.en!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.fr, self.en) == (other.fr, other.en)

    def in_(self, lang: str) -> str:
        return self.fr if lang.startswith("fr") else self.en


class TenantViolation(ProvisionerError):
    """An actor tried to act outside their own adherent."""

    def __init__(self, actor: str, adherent: str | None, target: str):
        self.actor, self.adherent, self.target = actor, adherent, target
        where = (f" (hors de l'adhérent {adherent})", f" (outside adherent {adherent})") if adherent else ("", "")
        self.message = Message(f"{actor} ne peut pas agir sur {target}{where[0]}.",
                               f"{actor} may not act on {target}{where[1]}.")
        super().__init__(f"{self.message.fr} / {self.message.en}")


class NotAllowed(ProvisionerError):
    """The person's role does not allow the action, whatever the adherent (e.g. only the security team opens access
    reviews); ``message`` says who may, in French and English."""

    def __init__(self, actor: str, action: str, message: Message):
        self.actor, self.action, self.message = actor, action, message
        super().__init__(f"{message.fr} / {message.en}")


class RuleViolation(InputError):
    """A domain rule refused the action; ``field`` names what to change, ``message`` says how."""

    def __init__(self, field: str, message: Message):
        self.field, self.message = field, message
        super().__init__({field: message})


class NeedsConfirmation(RuleViolation):
    """The action is allowed but leaves something incomplete: the person must confirm it (portal: a confirmation
    page; CLI: ``--confirm``). ``message`` is the warning to show before they do."""
