"""The security team's space (read-only): our audit trail, and the security report (provisioner.audit, read with
the realm's read-only `auditor` account)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _, lazy_gettext as _l

from portal.auth import guard_space
from portal.forms import clean
from portal.services import core_services, services, teleservice_names
from provisioner import trail
from provisioner.audit import words
from provisioner.audit.render import render_csv, render_html, render_json
from provisioner.audit.report import SECTIONS
from provisioner.audit.collect import audit_realm
from provisioner.errors import ConfigError, ProvisionerError

bp = Blueprint("auditor", __name__, url_prefix="/auditeur")
guard_space(bp, "auditor")
log = logging.getLogger(__name__)
SECTION_WORDS = {"findings": _l("constats"), "holdings": _l("qui détient quoi"), "activity": _l("activité")}


@bp.get("/")
def home():
    adherent = clean(request.args.get("adherent")) or None
    events = trail.events(core_services().db, adherent=adherent, limit=500)
    return render_template("auditor/home.html", events=events, adherent=adherent or "",
                           teleservices=teleservice_names())


@bp.get("/rapport")
def report():
    """The report in the portal's layout; ?format=csv&section=...|json|html downloads it."""
    days = min(max(request.args.get("inactivite", default=90, type=int) or 90, 1), 3650)
    try:
        built = audit_realm(services().settings, inactive_days=days, gw=services().auditor_gateway())
    except ProvisionerError as exc:
        log.error("audit report failed: %s: %s", type(exc).__name__, exc)
        why = (_("le réglage %(setting)s du portail manque ou est faux : prévenez son exploitation.",
                 setting=exc.setting) if isinstance(exc, ConfigError) else
               _("Keycloak ne l'a pas permis pour le moment ; réessayez plus tard."))
        return render_template("auditor/report.html", report=None, error=why, days=days), 503
    fmt, section = request.args.get("format"), request.args.get("section", "findings")
    if fmt == "csv" and section in SECTIONS:
        return Response(render_csv(built, section), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="audit-{section}.csv"'})
    if fmt == "json":
        return Response(render_json(built), mimetype="application/json")
    if fmt == "html":
        return Response(render_html(built), mimetype="text/html",
                        headers={"Content-Disposition": 'attachment; filename="audit.html"'})
    return render_template("auditor/report.html", report=built, error=None, days=days, sections=SECTIONS,
                           section_words=SECTION_WORDS, words=words, teleservices=teleservice_names())
