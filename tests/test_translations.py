"""Every French string the portal shows has its English translation (portal/translations/en)."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from provisioner.settings import PROJECT_ROOT

KEYWORDS = {"_": None, "gettext": None, "_l": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def test_every_portal_string_is_translated_into_english():
    po = read_po((PROJECT_ROOT / "portal/translations/en/LC_MESSAGES/messages.po").open("rb"))
    found = list(extract_from_dir(str(PROJECT_ROOT / "portal"), METHODS, keywords=KEYWORDS))
    assert len(found) > 300  # the extraction sees the templates
    missing = set()
    for _file, _line, message, _comments, context in found:
        msgid = message[0] if isinstance(message, tuple) else message
        entry = po.get(msgid, context)
        if entry is None or not entry.string:
            missing.add((context, msgid))
    assert not missing, sorted(missing, key=str)[:20]
