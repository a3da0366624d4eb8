"""CLI verbs for subscriptions, adherents, users, bulk import and audit (registered on `cli`)."""
