"""`python -m portal`: serve the portal on 127.0.0.1:8000 (gunicorn `portal:create_app()` in production)."""

from __future__ import annotations

import os

from werkzeug.serving import run_simple

from portal import create_app

if __name__ == "__main__":
    run_simple(os.environ.get("PORTAL_HOST", "127.0.0.1"), int(os.environ.get("PORTAL_PORT", "8000")),
               create_app(), threaded=True)
