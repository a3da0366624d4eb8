"""The portal's templates as files: what no page may carry, whatever its data."""

from __future__ import annotations

import re

import pytest

from provisioner.settings import PROJECT_ROOT

TEMPLATES = sorted((PROJECT_ROOT / "portal" / "templates").rglob("*.html"))
TITLE = re.compile(r"{%-?\s*block title\s*-?%}(.*?){%-?\s*endblock", re.S)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(PROJECT_ROOT / "portal")))
def test_a_pages_title_is_words_never_markup(template):
    """A browser shows <title> as text: a tag there would show in the tab (and a form there would be a second copy)."""
    for title in TITLE.findall(template.read_text()):
        assert "<" not in title, title[:200]
