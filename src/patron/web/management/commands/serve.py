"""``patron serve``: the dashboard and the API behind Granian, static files included."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def unapplied_migrations(database: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Names (``app.migration``) of the migrations not yet applied to the store."""
    connection = connections[database]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def is_sqlite(database: str = DEFAULT_DB_ALIAS) -> bool:
    """True when the store is the embedded SQLite file."""
    return connections[database].vendor == "sqlite"


def default_workers(sqlite: bool) -> int:
    """Worker processes: 2 × CPUs + 1 (at most 9) on PostgreSQL; 2 on SQLite, whose single
    writer gains nothing from more processes (threads serve the concurrency there)."""
    if sqlite:
        return 2
    return min(2 * (os.cpu_count() or 1) + 1, 9)


def bind_address(host: str, port: int) -> str:
    """``host:port`` as it is shown in a URL; an IPv6 address gets its brackets
    (``[::1]:8000``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


class Command(BaseCommand):
    help = (
        "Serve the staff dashboard and the REST API with Granian (production mode: no debug, "
        "static files collected into PATRON_HOME/static and served by Patron itself). "
        "Run `patron migrate` first."
    )
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="worker processes (default: 2 x CPUs + 1 up to 9 on PostgreSQL, 2 on SQLite)",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="threads per worker (default: 4 on SQLite, 1 on PostgreSQL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Check the store, collect static files, then run the server until stopped."""
        if settings.DEBUG:
            raise CommandError(
                "PATRON_DEBUG=1 is set; `patron serve` runs in production mode only. "
                "Unset PATRON_DEBUG (or use `patron runserver` for development)."
            )
        pending = unapplied_migrations()
        if pending:
            raise CommandError(
                f"The store has {len(pending)} unapplied migration(s) "
                f"({', '.join(pending[:3])}{', ...' if len(pending) > 3 else ''}). "
                "Run `patron migrate` first, then `patron serve` again."
            )
        sqlite = is_sqlite()
        workers = options["workers"] or default_workers(sqlite)
        threads = options["threads"] or (4 if sqlite else 1)
        if workers < 1 or threads < 1:
            raise CommandError("--workers and --threads must be at least 1")
        if not 0 < options["port"] < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {options['port']}")
        self.stdout.write(f"Collecting static files into {settings.STATIC_ROOT} ...")
        call_command("collectstatic", interactive=False, verbosity=0)
        # The process is about to be replaced: close the connections the checks opened.
        connections.close_all()
        address = bind_address(options["host"], options["port"])
        self.stdout.write(
            f"Patron serving on http://{address}/ with {workers} worker(s) x {threads} "
            f"thread(s) ({'SQLite' if sqlite else connections['default'].vendor}). "
            "Press Ctrl+C to stop."
        )
        sys.stdout.flush()
        sys.stderr.flush()
        # A fresh process for the server's main process: see patron.web.server for why.
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "patron.web.server",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
        )
