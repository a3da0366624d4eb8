"""The brochure's printable documents, in the page's language (French first): the subscription summary and the
three letters. One description of each serves the HTML page and its PDF (fpdf2, DejaVu Sans embedded for every
French character). No password, ever: the subscription form we keep has none, and no letter asks for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Response
from flask_babel import lazy_gettext as _l

from provisioner.errors import ConfigError

# Debian's fonts-dejavu-core (installed by .ci/run and the Dockerfile): Unicode TrueType fonts to embed.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
BLANK = "……………………………………"

# --- the subscription summary (the form to print, sign and stamp) ----------------------------------------------

SUMMARY_PARTS = (
    ("company", _l("Informations générales"), (
        ("numero", _l("Numéro d'adhérent")), ("raison_sociale", _l("Raison sociale")), ("rc", _l("Numéro RC")),
        ("patente", _l("Numéro de patente")), ("adresse", _l("Adresse")), ("telephone", _l("Téléphone")),
        ("fax", _l("Fax")), ("site_web", _l("Site web")))),
    ("responsable", _l("Responsable de l'entreprise"), (
        ("civilite", _l("Civilité")), ("nom", _l("Nom")), ("prenom", _l("Prénom")), ("fonction", _l("Fonction")),
        ("telephone", _l("Téléphone fixe 1")), ("telephone2", _l("Téléphone fixe 2")), ("fax", _l("Fax")),
        ("gsm", _l("GSM")), ("email", _l("E-mail")))),
    ("delegate", _l("Personne déléguée"), (
        ("civilite", _l("Civilité")), ("nom", _l("Nom")), ("prenom", _l("Prénom")), ("fonction", _l("Fonction")),
        ("telephone", _l("Téléphone direct")), ("gsm", _l("GSM")), ("fax", _l("Fax")), ("email", _l("E-mail")))),
)
SUMMARY_TITLE = _l("Formulaire d'abonnement aux téléservices CIMR")
SUMMARY_PASSWORD_NOTE = _l("Mot de passe « Administrateur des utilisateurs » : celui saisi dans le formulaire (il "
                           "n'est pas imprimé).")
SUMMARY_SIGNATURE = (_l("Date, nom et signature du responsable de la société ou de la personne habilitée"),
                     _l("Cachet de l'entreprise"))


def summary_reference(sub) -> str:
    return str(_l("Référence de la demande : %(ref)s — déposée le %(d)s", ref=sub.id,
                  d=sub.submitted_at.strftime("%d/%m/%Y %H:%M")))


# --- the three letters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    text: object
    kind = "paragraph"


@dataclass(frozen=True)
class Heading:
    text: object
    kind = "heading"


@dataclass(frozen=True)
class Fields:
    """Lines « label : value »; ``key`` names a value of ``letter_values`` (None: always left for the pen)."""
    lines: tuple[tuple[object, str | None], ...]
    kind = "fields"


@dataclass(frozen=True)
class Letter:
    title: object
    blocks: tuple


LETTERS = {
    "reinitialisation-mot-de-passe": Letter(
        _l("Réinitialisation du mot de passe de la personne déléguée"), (
            Paragraph(_l("Nous vous prions de bien vouloir réinitialiser le mot de passe de la personne déléguée "
                         "(Administrateur des utilisateurs) de notre entreprise pour les téléservices CIMR.")),
            Fields(((_l("Personne déléguée"), "delegate_name"),
                    (_l("Login de l'administrateur des utilisateurs"), "delegate_login"),
                    (_l("E-mail de la personne déléguée"), "delegate_email"))))),
    "reabonnement": Letter(
        _l("Réabonnement aux Téléservices CIMR"), (
            Paragraph(_l("Suite au départ ou à la réaffectation de notre personne déléguée, nous vous prions de "
                         "modifier notre abonnement aux téléservices CIMR et de désigner la nouvelle personne "
                         "déléguée ci-dessous.")),
            Fields(((_l("Personne déléguée actuelle"), "delegate_name"), (_l("E-mail actuel"), "delegate_email"))),
            Heading(_l("Nouvelle personne déléguée")),
            Fields(((_l("Civilité"), None), (_l("Nom"), None), (_l("Prénom"), None), (_l("Fonction"), None),
                    (_l("Téléphone direct"), None), (_l("GSM"), None), (_l("E-mail"), None))))),
    "mise-a-jour-email": Letter(
        _l("Mise à jour de l'e-mail de la personne déléguée"), (
            Paragraph(_l("Nous vous prions de bien vouloir mettre à jour l'adresse e-mail de la personne déléguée "
                         "(Administrateur des utilisateurs) de notre entreprise.")),
            Fields(((_l("Personne déléguée"), "delegate_name"), (_l("E-mail actuel"), "delegate_email"),
                    (_l("Nouvel e-mail"), None))))),
}
LETTER_TO = (_l("À l'attention du Responsable de l'Agence virtuelle"),
             "CIMR — Caisse Interprofessionnelle Marocaine de Retraite")
LETTER_OPENING = _l("Madame, Monsieur,")
LETTER_CLOSING = _l("Veuillez agréer, Madame, Monsieur, l'expression de nos salutations distinguées.")
LETTER_SIGNATURE = (_l("Fait à ……………, le ……………"),
                    _l("Nom, fonction et signature du responsable de la société ou de la personne habilitée"),
                    _l("Cachet de l'entreprise"))


def letter_values(adherent, delegate_name: str | None, delegate_email: str | None) -> dict[str, str | None]:
    """What a logged-in delegate's letter is pre-filled with (nothing without an approved adherent). The delegate's
    login is the numéro d'adhérent."""
    if adherent is None:
        return {}
    return {"raison_sociale": adherent.raison_sociale, "numero": adherent.numero, "delegate_name": delegate_name,
            "delegate_login": adherent.numero, "delegate_email": delegate_email}


# --- PDF -------------------------------------------------------------------------------------------------------


def _document(title: str):
    """An A4 page with the fonts embedded; raises ConfigError when Debian's fonts-dejavu-core is missing."""
    from fpdf import FPDF

    missing = [name for name in FONTS.values() if not (FONT_DIR / name).is_file()]
    if missing:
        raise ConfigError("fonts-dejavu-core", f"{FONT_DIR / missing[0]} is missing: install Debian's "
                                               "fonts-dejavu-core (the PDF documents embed it)")
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("CIMR")
    pdf.set_creator("Téléservices CIMR")
    for style, name in FONTS.items():
        pdf.add_font("DejaVu", style, str(FONT_DIR / name))
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, 18)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(0, 5, "CIMR — Caisse Interprofessionnelle Marocaine de Retraite", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    pdf.cell(0, 5, str(_l("Téléservices CIMR")), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    return pdf


def _text(pdf, text: str, size: float = 10, style: str = "", after: float = 1.5, dry_run: bool = False) -> float:
    """Write a paragraph (or, ``dry_run``, only measure it); returns the height it takes."""
    from fpdf.enums import MethodReturnValue

    pdf.set_font("DejaVu", style, size)
    if dry_run:
        return pdf.multi_cell(0, size * 0.55, text, align="L", dry_run=True, output=MethodReturnValue.HEIGHT) + after
    pdf.multi_cell(0, size * 0.55, text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(after)
    return 0.0


def _line(pdf, label, value: str | None) -> None:
    _text(pdf, f"{label} : {value or BLANK}", after=0.8)


def _part(pdf, heading: str, lines: list[str], dry_run: bool = False) -> float:
    """A part of the form, its heading then « label : value » lines (or, ``dry_run``, its height only)."""
    height = _text(pdf, heading, 11, "B", 1, dry_run) + sum(_text(pdf, line, 9.5, after=0.4, dry_run=dry_run)
                                                            for line in lines)
    if not dry_run:
        pdf.ln(2)
    return height + 2


SIGNATURE_HEIGHT = 42  # mm: the space before the boxes, the boxes (36) and after them


def _signature(pdf, *captions) -> None:
    """Boxes side by side for the signature and the company's stamp."""
    pdf.ln(4)
    if pdf.will_page_break(SIGNATURE_HEIGHT - 4):
        pdf.add_page()
    width = (pdf.epw - 6 * (len(captions) - 1)) / len(captions)
    top = pdf.get_y()
    for i, caption in enumerate(captions):
        x = pdf.l_margin + i * (width + 6)
        pdf.rect(x, top, width, 36)
        pdf.set_xy(x + 2, top + 2)
        pdf.set_font("DejaVu", "", 8)
        pdf.multi_cell(width - 4, 4, str(caption), align="L")
    pdf.set_y(top + 38)


def summary_pdf(sub) -> bytes:
    """The subscription form as submitted (no password), with room for the signature and the stamp — on the page of
    the form's last part: when the page cannot hold that part, the note and the boxes, they go to the next one
    together, never the boxes alone."""
    pdf = _document(str(SUMMARY_TITLE))
    _text(pdf, str(SUMMARY_TITLE), 15, "B", 2)
    _text(pdf, summary_reference(sub), 9, after=3)
    for i, (key, heading, labels) in enumerate(SUMMARY_PARTS):
        part = sub.form.get(key) or {}
        lines = [f"{label} : {part.get(field) or '—'}" for field, label in labels]
        if i == len(SUMMARY_PARTS) - 1:  # the last part goes with what follows: the note and the signature
            after = _text(pdf, str(SUMMARY_PASSWORD_NOTE), 9, dry_run=True) + SIGNATURE_HEIGHT
            if pdf.will_page_break(_part(pdf, str(heading), lines, dry_run=True) + after):
                pdf.add_page()
        _part(pdf, str(heading), lines)
    _text(pdf, str(SUMMARY_PASSWORD_NOTE), 9)
    _signature(pdf, *SUMMARY_SIGNATURE)
    return bytes(pdf.output())


def letter_pdf(slug: str, values: dict[str, str | None]) -> bytes:
    """One of the brochure's letters, pre-filled with ``values`` (``letter_values``), blanks left for the pen."""
    letter = LETTERS[slug]
    title = str(letter.title)
    pdf = _document(title)
    _line(pdf, _l("Raison sociale"), values.get("raison_sociale"))
    _line(pdf, _l("Numéro d'adhérent"), values.get("numero"))
    pdf.ln(4)
    _text(pdf, f"{LETTER_TO[0]}\n{LETTER_TO[1]}", after=5)
    _text(pdf, f"{_l('Objet')} : {title}", 12, "B", 4)
    _text(pdf, str(LETTER_OPENING), after=3)
    for block in letter.blocks:
        if isinstance(block, Paragraph):
            _text(pdf, str(block.text), after=3)
        elif isinstance(block, Heading):
            _text(pdf, str(block.text), 11, "B", 2)
        else:
            for label, key in block.lines:
                _line(pdf, label, values.get(key) if key else None)
            pdf.ln(3)
    _text(pdf, str(LETTER_CLOSING), after=3)
    _signature(pdf, f"{LETTER_SIGNATURE[0]}\n{LETTER_SIGNATURE[1]}", LETTER_SIGNATURE[2])
    return bytes(pdf.output())


def pdf_response(data: bytes, filename: str) -> Response:
    """A PDF download."""
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
