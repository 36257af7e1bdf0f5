"""``patron resolve_customers``: merge customers found to share an e-mail or phone."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from patron.customers.resolution import resolve_duplicates


class Command(BaseCommand):
    help = (
        "Sweep every customer's e-mail and phone into identities and merge the customers "
        "that turn out to be one person (after edits made outside the importer)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        merges = resolve_duplicates()
        for merge in merges:
            self.stdout.write(
                f"merged {merge.merged_external_id} into {merge.survivor.external_id}: "
                f"{merge.reason}"
            )
        self.stdout.write(f"{len(merges)} customers merged")
