"""One django-ninja router per domain app; ``patron.api.v1`` mounts them."""
