"""The security team's space (read-only). The audit report itself comes with the audit issue
(provisioner/audit.py: build_report, render_html); the role, navigation and the trail exist now."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from provisioner import audit_trail
from portal.auth import guard_space
from portal.forms import clean
from portal.services import core_services

bp = Blueprint("auditor", __name__, url_prefix="/auditeur")
guard_space(bp, "auditor")


@bp.get("/")
def home():
    adherent = clean(request.args.get("adherent")) or None
    events = audit_trail.events(core_services().db, adherent=adherent, limit=500)
    return render_template("auditor/home.html", events=events, adherent=adherent or "")


from portal import auditor as _report  # noqa: E402,F401  (the audit report's routes, on this blueprint)
