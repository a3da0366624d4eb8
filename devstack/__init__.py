"""Development and test tooling, never shipped (pyproject packages only provisioner, portal, teleservice):
the pinned Keycloak distribution started on loopback (`keycloak_server`), the demo data (`demo`)."""
