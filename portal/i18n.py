"""French first, English available: the locale comes from the language switch, else the browser."""

from __future__ import annotations

from flask import Flask, request, session
from flask_babel import Babel, get_locale

from provisioner.errors import Message
from provisioner.rules import category_label
from provisioner.trail import action_words

LANGUAGES = ("fr", "en")


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="fr") or "fr"


def lang() -> str:
    return str(get_locale() or "fr")


def say(message: Message | str) -> str:
    """A provisioner Message in the page's language."""
    return message.in_(lang()) if isinstance(message, Message) else str(message)


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(say=say, current_lang=lang, action_words=action_words,
                                  category_label=category_label)
