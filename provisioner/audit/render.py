"""The audit report rendered: a readable table, CSV (one section), JSON, and a self-contained HTML page."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any

from provisioner.audit.report import SECTIONS, Report


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, bool):
        return "enabled" if v else "DISABLED"
    if isinstance(v, tuple):
        return "; ".join(v)
    return str(v)


def _rows(report: Report, section: str) -> list[dict]:
    items = {"findings": report.findings, "holdings": report.holdings, "activity": report.activity}[section]
    return [{c: getattr(i, c) for c in SECTIONS[section]} for i in items]


def render_table(report: Report, limit: int = 200) -> str:
    """A readable plain-text report (each section capped at ``limit`` rows; use CSV/JSON for everything)."""
    out = [f"Audit of realm {report.realm} at {_fmt(report.generated_at)} UTC",
           "  " + ", ".join(f"{k}={v}" for k, v in report.counts.items() if not k.startswith("findings_")),
           f"  realm drift: {report.drift_note}"] + [f"  note: {n}" for n in report.notes]
    for section in ("findings", "holdings", "activity"):
        rows = [[_fmt(r[c]) for c in SECTIONS[section]] for r in _rows(report, section)]
        out += ["", f"== {section} ({len(rows)}) =="]
        if not rows:
            out.append("  (none)")
            continue
        shown = rows[:limit]
        widths = [min(60, max(len(c), *(len(r[i]) for r in shown))) for i, c in enumerate(SECTIONS[section])]
        out.append("  ".join(c.ljust(w) for c, w in zip(SECTIONS[section], widths)).rstrip())
        out += ["  ".join(v[:60].ljust(w) for v, w in zip(r, widths)).rstrip() for r in shown]
        if len(rows) > limit:
            out.append(f"  ... {len(rows) - limit} more (use --format csv or json)")
    return "\n".join(out)


def render_csv(report: Report, section: str = "findings") -> str:
    """One section as CSV (header row first)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SECTIONS[section])
    for row in _rows(report, section):
        writer.writerow([_fmt(row[c]) if row[c] is not None else "" for c in SECTIONS[section]])
    return buf.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)


_HTML = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<title>Audit de sécurité — {{ r.realm }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:2rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-size:.85rem;vertical-align:top}
th{background:#eee}.critical,.high{background:#fdd}.medium{background:#ffe9c7}.low{background:#fffbd6}
.off{color:#a00;font-weight:bold}small{color:#555}
</style></head><body>
<h1>Audit de sécurité <small lang="en">/ Security audit</small> — {{ r.realm }}</h1>
<p>Généré le {{ fmt(r.generated_at) }} UTC. {% for k, v in r.counts.items() if not k.startswith("findings_") %}{{ k }} : {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</p>
<p>Dérive du realm / Realm drift : {{ r.drift_note }}</p>
{% for n in r.notes %}<p><small>{{ n }}</small></p>{% endfor %}
<h2>Constats <small lang="en">/ Findings</small> ({{ r.findings|length }})</h2>
<table><tr><th>Gravité</th><th>Constat</th><th>Adhérent</th><th>Sujet</th><th>Détail</th></tr>
{% for f in r.findings %}<tr class="{{ f.severity }}"><td>{{ f.severity }}</td><td>{{ f.title.fr }}<br><small lang="en">{{ f.title.en }}</small></td><td>{{ f.adherent or "—" }}</td><td>{{ f.subject }}</td><td>{{ f.detail }}</td></tr>
{% else %}<tr><td colspan="5">Aucun constat / No findings</td></tr>{% endfor %}</table>
<h2>Qui détient quoi <small lang="en">/ Who holds what</small> ({{ r.holdings|length }})</h2>
<table><tr><th>Adhérent</th><th>Téléservice</th><th>Rôle</th><th>Utilisateur</th><th>État</th><th>Dernière connexion</th><th>Créé le</th><th>Créé par</th></tr>
{% for h in r.holdings %}<tr><td>{{ h.adherent }} {{ h.raison_sociale }}{% if h.adherent_status != "active" %} ({{ h.adherent_status }}){% endif %}</td><td>{{ h.teleservice }}</td><td>{{ h.role }}</td><td>{{ h.username }}</td><td{% if not h.enabled %} class="off"{% endif %}>{{ "actif" if h.enabled else "désactivé" }}</td><td>{{ fmt(h.last_login) }}</td><td>{{ fmt(h.created) }}</td><td>{{ h.created_by or "—" }}</td></tr>
{% endfor %}</table>
<h2>Activité d'administration <small lang="en">/ Admin activity</small> ({{ r.activity|length }})</h2>
<table><tr><th>Quand</th><th>Qui</th><th>Rôle</th><th>Adhérent</th><th>Action</th><th>Cible</th><th>Résultat</th><th>Keycloak</th></tr>
{% for a in r.activity %}<tr><td>{{ fmt(a.at) }}</td><td>{{ a.actor }}</td><td>{{ a.actor_role }}</td><td>{{ a.adherent or "—" }}</td><td>{{ a.action }}</td><td>{{ a.target or "—" }}</td><td>{{ a.outcome }}</td><td>{{ a.keycloak|join("; ") }}</td></tr>
{% endfor %}</table>
</body></html>
"""


def render_html(report: Report) -> str:
    """A self-contained HTML page (inline style, no script, no external resource), French first."""
    from jinja2 import Environment

    return Environment(autoescape=True).from_string(_HTML).render(r=report, fmt=_fmt)
