"""Small shared building blocks (money, channels) used by every domain app."""
