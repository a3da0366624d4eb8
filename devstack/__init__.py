"""Development and test tooling, never shipped (pyproject packages only provisioner, portal, teleservice):
the pinned Keycloak distribution started on loopback (`keycloak_server`), the demo data (`demo`), and what the tests
and the benchmarks (bench/) share: free loopback ports and the production shape on them (`ports`), adherents, users
and their passwords built through the provisioner's actions (`builders`), the portal's pages and a company to show
them (`portal_pages`), browser logins (`logins`), the test accounts' phones (`totp`), an SMTP sink (`smtp_sink`)."""
