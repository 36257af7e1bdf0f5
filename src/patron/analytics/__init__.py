"""Runs the analytics engine on the store's data and keeps scores, segments and runs."""
