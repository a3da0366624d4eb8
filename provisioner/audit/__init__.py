"""The security team's audit: ``collect`` reads the realm in bulk with the read-only `auditor` account and our
trail; ``report`` applies the rules (pure) and renders the report. Our own record of actions is the trail
(provisioner/trail.py), which the audit reads."""
