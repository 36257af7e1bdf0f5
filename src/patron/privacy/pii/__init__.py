"""Privacy's low layer: personal-data fields, encryption at rest, blind indexes, masking.

Nothing here imports a Patron app, so ``customers`` and every app above may use it."""
