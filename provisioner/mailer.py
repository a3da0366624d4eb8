"""Outgoing mail through SMTP (settings.smtp_host/smtp_port). No password ever goes into a mail.

Actions do not call ``Mailer.send`` themselves: they write their mails to the outbox (provisioner/outbox.py),
which sends them and keeps what the SMTP server did not take for a retry.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from provisioner.errors import MailError, MailServerUnreachable
from provisioner.settings import Settings

__all__ = ["Mail", "MailError", "MailServerUnreachable", "Mailer", "approval_mail", "notice_mail", "rejection_mail"]


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    """Sends plain-text French/English mails; ``send`` raises MailServerUnreachable or MailError."""

    def __init__(self, host: str, port: int, sender: str):
        self.host, self.port, self.sender = host, port, sender

    @classmethod
    def from_settings(cls, settings: Settings) -> "Mailer":
        return cls(settings.smtp_host, settings.smtp_port, settings.mail_from)

    def send(self, mail: Mail) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, mail.to, mail.subject
        msg.set_content(mail.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                smtp.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                smtplib.SMTPNotSupportedError) as exc:
            raise MailError(f"SMTP server {self.host}:{self.port} refused the mail to {mail.to}: {exc}") from exc
        except OSError as exc:  # refused connection, timeout, dropped (smtplib's other errors are OSErrors too)
            raise MailServerUnreachable(f"SMTP server {self.host}:{self.port} unreachable: {exc}") from exc


def approval_mail(to: str, adherent: str, raison_sociale: str, portal_url: str) -> Mail:
    """The delegate's notification that the subscription is approved: where and how to log in (its numéro, the
    password it chose, a second factor set up at the first login), never a password."""
    return Mail(to, f"CIMR Téléservices — abonnement validé / subscription approved ({adherent})",
                f"Bonjour,\n\nL'abonnement aux téléservices CIMR de {raison_sociale} (adhérent {adherent}) est validé.\n"
                f"Connectez-vous au portail : {portal_url}\n"
                f"Identifiant (administrateur des utilisateurs) : votre numéro d'adhérent, {adherent}\n"
                "Mot de passe : celui que vous avez choisi dans le formulaire d'abonnement.\n"
                "À la première connexion, vous enregistrerez un second facteur (une application d'authentification "
                "sur votre téléphone).\n\n"
                f"Hello,\n\nThe CIMR teleservices subscription of {raison_sociale} (member {adherent}) is approved.\n"
                f"Log in to the portal: {portal_url}\n"
                f"Login (user administrator): your member number, {adherent}\n"
                "Password: the one you chose in the subscription form.\n"
                "At your first login you will set up a second factor (an authenticator app on your phone).\n")


def rejection_mail(to: str, adherent: str, reason: str) -> Mail:
    return Mail(to, f"CIMR Téléservices — abonnement refusé / subscription rejected ({adherent})",
                f"Bonjour,\n\nL'abonnement de l'adhérent {adherent} n'a pas été validé. Motif : {reason}\n\n"
                f"Hello,\n\nThe subscription of member {adherent} was not approved. Reason: {reason}\n")


def notice_mail(to: str, adherent: str, what_fr: str, what_en: str) -> Mail:
    """A short notice to the delegate (e-mail changed, password reset by CIMR, delegate replaced)."""
    return Mail(to, f"CIMR Téléservices — adhérent {adherent}",
                f"Bonjour,\n\n{what_fr}\n\nHello,\n\n{what_en}\n")
