"""The realm as code: ``spec`` reads realm/ (checked), ``desired`` turns it into Keycloak objects (pure), ``live``
reads the live realm in the same shape, ``plan`` compares the two (pure; ``plan_realm`` reads and plans), ``apply``
carries a plan out through the gateway."""
