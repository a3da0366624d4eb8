"""Scan the running stack as an outsider would, with Debian's ``wapiti``: the portal's public pages, then its
delegate, agent and auditor spaces logged in, and a reference teleservice, public and logged in.

    scripts/start                       # the dev stack, demo data included (another terminal)
    .venv/bin/python -m devstack.scan   # reports in var/scan/, a summary on stdout

A logged-in scan needs the person's session cookie: this logs the demo accounts in through Keycloak's real login
pages, as a browser would, and hands their cookies to wapiti. The demo delegate, agent and auditor need a TOTP: an
account that has none yet is enrolled here with a secret kept in var/scan/totp.json (later runs answer with it).
Use it on a development stack only: wapiti posts forms and follows links. testssl (the production shape's TLS): see
docs/security.md "Scanners".
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

from devstack.totp import OTP_FORM, SETUP_FORM, form_action, setup_secret, totp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "scan"
PASSWORD = os.environ.get("DEMO_PASSWORD", "Demo2026")
# What a person logs in to, and as whom (devstack/demo.py's accounts).
TARGETS = [
    ("portal-public", "{portal}/", None, None),
    ("portal-delegate", "{portal}/delegue/", "10000001", "{portal}/auth/login"),
    ("portal-agent", "{portal}/agent/", "agent.demo", "{portal}/auth/login"),
    ("portal-auditor", "{portal}/auditeur/", "auditeur.demo", "{portal}/auth/login"),
    ("teleservice-public", "{teleservice}/", None, None),
    ("teleservice-user", "{teleservice}/", "compta.atlas", "{teleservice}/login"),
]


def _trust_loopback(session: requests.Session) -> None:
    # Keycloak marks its cookies Secure; a browser sends them to http://127.0.0.1 (a secure context), requests not.
    for cookie in session.cookies:
        cookie.secure = False


def log_in(start: str, username: str, secrets: dict[str, str]) -> requests.Session:
    """A session logged in through ``start`` (the app's login route), Keycloak's form and, when asked, the TOTP."""
    session = requests.Session()
    resp = session.get(start, allow_redirects=True, timeout=30)
    _trust_loopback(session)
    form = re.search(r'<form\b[^>]*id="kc-form-login"[^>]*>', resp.text)
    if not form:
        raise SystemExit(f"{start}: no Keycloak login form (is the stack running?)")
    action = html.unescape(re.search(r'action="([^"]+)"', form.group(0)).group(1))
    resp = session.post(action, data={"username": username, "password": PASSWORD, "credentialId": ""},
                        allow_redirects=False, timeout=30)
    for _ in range(10):
        _trust_loopback(session)
        if resp.status_code in (302, 303):
            resp = session.get(urljoin(resp.url, resp.headers["Location"]), allow_redirects=False, timeout=30)
            continue
        page = resp.text
        if (action := form_action(page, SETUP_FORM)) is not None:
            secrets[username] = setup_secret(page)
            resp = session.post(action, data={"totp": totp(secrets[username]), "totpSecret": secrets[username],
                                              "userLabel": "scan"}, allow_redirects=False, timeout=30)
        elif (action := form_action(page, OTP_FORM)) is not None and username in secrets:
            if time.time() % 30 > 27:  # the code would expire on the way: take the next period's
                time.sleep(30 - time.time() % 30 + 0.5)
            resp = session.post(action, data={"otp": totp(secrets[username])}, allow_redirects=False, timeout=30)
        else:
            break
    if resp.status_code != 200 or "kc-form-login" in resp.text:
        raise SystemExit(f"{username}: the login did not end in the application ({resp.status_code})")
    return session


def cookie_file(path: Path, jar: requests.cookies.RequestsCookieJar) -> Path:
    """The application's own cookies (path /: not Keycloak's, under /realms/) in wapiti's JSON cookie file: domain
    (an IP without its port) -> path -> name -> attributes. Marked not Secure, so that wapiti sends them over the
    development stack's plain HTTP: scan the production shape (https) for the cookies' real flags."""
    out: dict = {}
    for c in (c for c in jar if c.path == "/"):
        domain = c.domain if c.domain[:1] in ".0123456789" else "." + c.domain
        out.setdefault(domain, {}).setdefault(c.path, {})[c.name] = {
            "value": c.value, "expires": c.expires, "secure": False, "port": None, "version": 0}
    path.write_text(json.dumps(out))
    path.chmod(0o600)
    return path


def wapiti(name: str, url: str, cookies: requests.cookies.RequestsCookieJar | None, minutes: int) -> dict:
    """One wapiti scan (its default modules), bounded in time; its JSON report. (Debian's wapiti 3.0.4 cannot
    exclude URLs on Python 3.11, ``-x`` fails: the logouts are POST forms whose CSRF token the attacks alter.)"""
    report = OUT / f"{name}.json"
    cmd = ["wapiti", "-u", url, "--scope", "folder", "--flush-session", "--no-bugreport", "-v", "0",
           "--max-scan-time", str(minutes * 60), "--max-attack-time", "60", "-f", "json", "-o", str(report)]
    if cookies is not None:
        cmd += ["-c", str(cookie_file(OUT / f"{name}.cookies.json", cookies))]
    with open(OUT / f"{name}.log", "wb") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=minutes * 60 + 600)
    return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portal", default="http://127.0.0.1:8000")
    parser.add_argument("--teleservice", default="http://127.0.0.1:8102", help="Compte Adhérent, by default")
    parser.add_argument("--minutes", type=int, default=5, help="at most this long per scan")
    parser.add_argument("--only", nargs="*", help="some of: " + ", ".join(t[0] for t in TARGETS))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    kept = OUT / "totp.json"
    secrets = json.loads(kept.read_text()) if kept.exists() else {}
    found = 0
    for name, url, username, login in TARGETS:
        if args.only and name not in args.only:
            continue
        url = url.format(portal=args.portal, teleservice=args.teleservice)
        cookies = None
        if username:
            cookies = log_in(login.format(portal=args.portal, teleservice=args.teleservice), username, secrets).cookies
            kept.write_text(json.dumps(secrets))
            kept.chmod(0o600)
        report = wapiti(name, url, cookies, args.minutes)
        urls = re.search(r"found (\d+) URLs", (OUT / f"{name}.log").read_text())
        for kind, items in report["vulnerabilities"].items():
            for item in items:
                found += 1
                print(f"{name:20} {kind}: {item['info']} {item['path']}")
        print(f"{name:20} done: {urls.group(1) if urls else '?'} URLs and forms, "
              f"{sum(map(len, report['vulnerabilities'].values()))} finding(s); report var/scan/{name}.json")
    return 3 if found else 0


if __name__ == "__main__":
    sys.exit(main())
