"""``patron demo``: build the demo shop into the store and serve the dashboard."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.demo.services import DemoBuildError, build_demo_shop


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--as-of {text!r}: not a date (use YYYY-MM-DD)") from error


class Command(BaseCommand):
    help = (
        "Build a synthetic shop (customers, products, orders, behaviour events) from a known "
        "hidden process into the store, write its true parameters to PATRON_HOME/demo, create "
        "the staff login demo/demo and serve the dashboard."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--customers", type=int, default=20_000, help="number of customers (20,000)"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (42)")
        parser.add_argument(
            "--as-of",
            type=_day,
            default=None,
            help="day the two observed years end, YYYY-MM-DD (today, or the earlier build's)",
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="build only, do not start the server"
        )
        parser.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")

    def handle(self, *args: Any, **options: Any) -> None:
        customers: int = options["customers"]
        if customers < 1:
            raise CommandError(f"--customers must be at least 1, got {customers}")
        as_of = options["as_of"]
        if isinstance(as_of, str):  # call_command passes the value as given
            as_of = _day(as_of)
        self.stdout.write("Creating or upgrading the store (migrate) ...")
        call_command("migrate", interactive=False, verbosity=0)
        try:
            report = build_demo_shop(
                customers=customers,
                seed=options["seed"],
                as_of=as_of,
                progress=self.stdout.write,
            )
        except DemoBuildError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo shop ready in {report.seconds:.1f} s: {report.customers:,} customers "
                f"(+{report.duplicate_accounts} duplicate accounts merged), "
                f"{report.orders:,} orders, {report.events:,} events, revenue "
                f"{report.currency} {report.revenue:,.2f}"
            )
        )
        self.stdout.write(f"True parameters: {report.truth_path}")
        self.stdout.write(f"Log in as {report.username} / {report.password}")
        if options["no_serve"]:
            return
        port: int = options["port"]
        self.stdout.write(f"Serving the dashboard at http://127.0.0.1:{port}/ (Ctrl+C stops)")
        call_command("serve", host="127.0.0.1", port=port)
