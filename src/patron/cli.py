"""The ``patron`` console command: Django's manage.py with Patron's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a Django management command (``patron demo``, ``patron import`` ...)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["patron", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
