"""French first, English available: the locale comes from the language switch, else the browser."""

from __future__ import annotations

from flask import Flask, g, has_app_context, request, session
from flask_babel import Babel, get_locale, get_translations

from provisioner.errors import Message
from provisioner.rules import category_label, power_label
from provisioner import trail_words

LANGUAGES = ("fr", "en")


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="fr") or "fr"


def lang() -> str:
    return str(get_locale() or "fr")


def say(message: Message | str | None) -> str:
    """A provisioner Message in the page's language ('' for nothing to say)."""
    if message is None:
        return ""
    return message.in_(lang()) if isinstance(message, Message) else str(message)


def _translations():
    """The request's catalogue, looked up once per request: flask_babel looks the context, the locale and its cache
    up again for every string of a template (a tenth of a delegate page's time in the portal)."""
    if not has_app_context():
        return get_translations()
    found = g.get("_translations")
    if found is None:
        found = g._translations = get_translations()
    return found


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.install_gettext_callables(  # as flask_babel installs them, the catalogue looked up once
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.globals.update(say=say, current_lang=lang, trail_words=trail_words,
                                  category_label=category_label, power_label=power_label)
