"""Privacy: consent, personal-data encryption and masking, data subject requests, audit.

``patron.privacy.pii`` is the low layer (personal-data fields, encryption, blind indexes,
masking) that ``customers`` builds on; the rest reads every app (DESIGN.md)."""
