"""The security team's audit: ``collect`` reads the realm in bulk with the read-only `auditor` account and our
trail into ``data``; ``report`` builds the report (pure) with the ``rules``, which raise ``findings``; ``render``
writes it out. Our own record of actions is the trail (provisioner/trail.py), which the audit reads."""
