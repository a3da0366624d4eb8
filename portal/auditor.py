"""The auditor space's security report (issue 5), on the auditor blueprint (portal/views/auditor.py, guarded
for the `auditor` role). Built by provisioner.audit with the realm's read-only `auditor` account.

Wiring: portal/views/auditor.py imports this module once its blueprint exists
(``from portal import auditor as _report  # noqa: F401,E402`` at its end).
"""

from __future__ import annotations

from flask import Response, render_template, request

from portal.services import services
from portal.views.auditor import bp
from provisioner.audit import SECTIONS, render_csv, render_html, render_json
from provisioner.audit_collect import audit_realm
from provisioner.errors import ProvisionerError


@bp.get("/rapport")
def report():
    """The report in the portal's layout; ?format=csv&section=...|json|html downloads it."""
    days = min(max(request.args.get("inactivite", default=90, type=int) or 90, 1), 3650)
    try:
        built = audit_realm(services().settings, inactive_days=days)
    except ProvisionerError as exc:
        return render_template("auditor/report.html", report=None, error=str(exc), days=days), 503
    fmt, section = request.args.get("format"), request.args.get("section", "findings")
    if fmt == "csv" and section in SECTIONS:
        return Response(render_csv(built, section), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="audit-{section}.csv"'})
    if fmt == "json":
        return Response(render_json(built), mimetype="application/json")
    if fmt == "html":
        return Response(render_html(built), mimetype="text/html",
                        headers={"Content-Disposition": 'attachment; filename="audit.html"'})
    return render_template("auditor/report.html", report=built, error=None, days=days, sections=SECTIONS)
