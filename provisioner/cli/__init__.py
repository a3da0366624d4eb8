"""`provisioner` command line: realm plan/apply, and the verbs of delegates, agents and auditors.

``from provisioner.cli import cli`` is the whole command: importing this package registers every verb
(one module per verb group). Output for people by default, ``--json`` for machines (errors too).
Exit codes: 0 ok, 1 error, 2 usage, 3 drift or findings.
"""

from provisioner.cli.base import cli
from provisioner.cli import adherents, audit, bulk, realm, subscriptions, trail, users  # noqa: F401,E402
from provisioner.cli import clients, dormant, mail  # noqa: F401,E402
from provisioner.cli import reviews  # noqa: F401,E402

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="provisioner")
