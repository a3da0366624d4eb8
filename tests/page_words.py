"""Codes where a page or a finding should say words: what the page tests (tests/test_portal_pages.py) and the
audit's words (tests/test_audit_words.py) look for in French text."""

from __future__ import annotations

import re

# Codes where words belong (a French page; e-mail addresses and links are left out before looking, and what a page
# shows as code on purpose — the CSV columns a file must have — in <code>).
CODES = {
    "Python None": r"\bNone\b",
    "action code": r"\b(?:user|review|subscription|adherent|delegate|password|bulk|mail|client|staff)\.[a-z_]+",
    "role code": r"\((?:delegate|agent|auditor|user|system|subscriber)\)",
    "trail key": r"\b(?:subscriber|subscription|campaign|mail|client):",
    "raw key": r"\b[a-z]+_[a-z_]+\b",
    "exception": r"\b\w+(?:Error|Violation|Exception)\b|\b(?:NotFound|Conflict|Forbidden|KeycloakRejected|"
                 r"NeedsConfirmation|NotAllowed|SessionExpired)\b",
    "teleservice slug": r"\b(?:teledeclaration|compte-adherent|easypaiement|eliquidation)\b",
    "English": r"\b(?:holds|credentials|deadline|reviewed|refused|pending|disabled|enabled|none|high|medium|low|"
               r"critical|findings|holdings|activity|keep|revoke|disable|report|closed|since|computed|resumed|"
               r"the|is|are|not|with|from|has|have|required)\b",
    "ok": r"(?<![\w.-])ok(?![\w.-])",   # an outcome's code, not part of a login (ok.pwd1234)
}
NOT_TEXT = re.compile(r"\S+@\S+|https?://\S+")


def codes_in(text: str) -> list[str]:
    """Each code found in a page's visible text, with what it is and where (the words around it)."""
    text = NOT_TEXT.sub(" ", text)
    return [f"{what}: {m.group(0)!r} in …{text[max(0, m.start() - 40):m.end() + 40]!r}…"
            for what, pattern in CODES.items() for m in re.finditer(pattern, text)][:5]
