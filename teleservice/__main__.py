"""`python -m teleservice [--client-id ID [--port P]]`: serve the reference app (all four teleservices by default).

The base URL (redirect URI, back-channel logout URL) is the client's URL in realm/clients.yaml.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from werkzeug.serving import make_server

from provisioner.errors import ProvisionerError
from provisioner.realm.schema import realm_spec
from provisioner.settings import Settings
from teleservice import create_app
from teleservice.config import TeleserviceConfig


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m teleservice", description=__doc__)
    parser.add_argument("--client-id", action="append", help="teleservice client id (repeatable; default: all)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the port of the client's URL)")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
        names = args.client_id or [c.client_id for c in realm_spec(settings).teleservices]
        configs = [TeleserviceConfig.from_env(name) for name in names]
    except ProvisionerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.port and len(configs) > 1:
        parser.error("--port needs exactly one --client-id")
    servers = [make_server(args.host, args.port or c.port, create_app(c), threaded=True) for c in configs]
    for config, server in zip(configs, servers):
        print(f"{config.name}: {config.base_url} (listening on {args.host}:{server.server_port})", flush=True)
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
