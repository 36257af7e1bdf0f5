"""``patron privacy rotate-keys|new-key|check-keys``: personal-data key management;
``patron privacy export|erase|requests|retention``: data subject requests
(:mod:`patron.privacy.dsr_commands`)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.privacy.audit import AuditActor, record
from patron.privacy.choices import AuditActionChoices
from patron.privacy.dsr_commands import DSR_JOBS, add_dsr_arguments, run_dsr_job
from patron.privacy.pii.crypto import PiiDecryptionError
from patron.privacy.pii.keys import PiiKeyError, key_ring, new_key_entry
from patron.privacy.pii.rotation import (
    DEFAULT_BATCH_SIZE,
    models_with_personal_data,
    rotate_keys,
    stale_values,
)


class Command(BaseCommand):
    help = (
        "Personal-data keys (docs/privacy.md). new-key: print a fresh key entry to put first "
        "in PATRON_PII_KEYS. rotate-keys: re-encrypt every encrypted value and recompute every "
        "blind index under the newest key, in batches (idempotent: a second run changes "
        "nothing); afterwards the older keys may be removed. check-keys: count the values "
        "still under an older key. export, erase, requests, retention: data subject requests "
        "(docs/privacy.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", choices=["rotate-keys", "new-key", "check-keys", *DSR_JOBS])
        parser.add_argument(
            "--key-id", default="", help="new-key: the id of the new key (default: k<N+1>)"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"rotate-keys: rows per transaction (default {DEFAULT_BATCH_SIZE})",
        )
        add_dsr_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["job"] in DSR_JOBS:
            run_dsr_job(self, options)
            return
        try:
            ring = key_ring()
            if options["job"] == "new-key":
                self.stdout.write(new_key_entry(options["key_id"] or _next_key_id(ring.key_ids)))
                return
            if options["job"] == "check-keys":
                self._check(ring.newest.key_id)
                return
            if options["batch_size"] < 1:
                raise CommandError("--batch-size must be at least 1")
            started = time.perf_counter()
            summary = rotate_keys(batch_size=options["batch_size"])
        except (PiiKeyError, PiiDecryptionError) as error:
            raise CommandError(str(error)) from error
        record(
            AuditActionChoices.KEY_ROTATION,
            actor=AuditActor(label="command: patron privacy"),
            details={
                "key_id": summary.key_id,
                "values_reencrypted": summary.values_reencrypted,
                "indexes_recomputed": summary.indexes_recomputed,
            },
        )
        for table in summary.tables:
            self.stdout.write(
                f"{table.label}: {table.rows:,} rows, {table.values_reencrypted:,} values "
                f"re-encrypted, {table.indexes_recomputed:,} blind indexes recomputed"
            )
        self.stdout.write(
            f"everything is under key {summary.key_id}: {summary.values_reencrypted:,} values "
            f"re-encrypted, {summary.indexes_recomputed:,} blind indexes recomputed in "
            f"{time.perf_counter() - started:.1f} s"
        )

    def _check(self, newest: str) -> None:
        stale = 0
        for model in models_with_personal_data():
            count = stale_values(model)
            stale += count
            self.stdout.write(f"{model._meta.label_lower}: {count:,} values under older keys")
        if stale:
            raise CommandError(
                f"{stale:,} values are not under key {newest} yet: run "
                "`patron privacy rotate-keys` before removing an older key"
            )
        self.stdout.write(f"every value is under key {newest}")


def _next_key_id(known: tuple[str, ...]) -> str:
    numbers = [int(key_id[1:]) for key_id in known if key_id[:1] == "k" and key_id[1:].isdigit()]
    return f"k{max(numbers, default=0) + 1}"
