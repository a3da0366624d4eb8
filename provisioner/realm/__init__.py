"""The realm as code: ``spec`` reads realm/ (checked), ``plan`` compares it with the live realm (pure, no I/O),
``apply`` reads the live realm and carries a plan out through the gateway."""
