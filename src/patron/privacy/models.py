"""Consent, audit and data subject request tables."""
