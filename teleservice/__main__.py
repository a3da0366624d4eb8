"""`python -m teleservice [client_id ...]`: serve the reference app for the given teleservices (all by default)."""

from __future__ import annotations

import logging
import sys
import threading

from werkzeug.serving import make_server

from provisioner.errors import ProvisionerError
from provisioner.realm_spec import load_realm_spec
from provisioner.settings import Settings
from teleservice import create_app
from teleservice.config import TeleserviceConfig


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
        names = argv or [c.client_id for c in load_realm_spec(settings.realm_dir, settings.realm,
                                                              settings.realm_vars).teleservices]
        configs = [TeleserviceConfig.from_env(name) for name in names]
    except ProvisionerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    servers = [make_server("127.0.0.1", c.port, create_app(c), threaded=True) for c in configs]
    for config, server in zip(configs, servers):
        print(f"{config.name}: {config.base_url}", flush=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
