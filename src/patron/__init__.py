"""Patron: an open-source customer loyalty platform for online retailers."""

__version__ = "0.1.0"
