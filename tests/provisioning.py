"""The provisioner tests' steps that go through the mail the test SMTP server received (tests/conftest.py
``smtp_server``); the builders (forms, adherents, users) are devstack/builders.py."""

from __future__ import annotations


def mailed_link(mailbox, to: str) -> str:
    """The token of the last password link mailed to `to` (provisioner/password_links.py), as its reader sees it."""
    import re

    from provisioner.password_links import PATH

    found = [m for body in mailbox.bodies(to) for m in re.findall(re.escape(PATH) + r"([A-Za-z0-9_-]+)", body)]
    assert found, f"no password link was mailed to {to}"
    return found[-1]


def choose_delegate_password(gw, services, mailbox, email: str, password: str) -> str:
    """The new delegate follows the link mailed to it and chooses its password; returns its login."""
    from provisioner.password_reset import choose_password

    return choose_password(gw, services, mailed_link(mailbox, email), password, password)
