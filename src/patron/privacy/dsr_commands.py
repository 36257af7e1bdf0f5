"""The data subject request jobs of ``patron privacy``: ``export``, ``erase``, ``requests``
and ``retention`` (the command's key jobs stay in the command itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from patron.privacy.audit import AuditActor
from patron.privacy.choices import PrivacyRequestKindChoices
from patron.privacy.requests import (
    PrivacyRequestError,
    UnknownCustomerError,
    erase_customer,
    export_for_subject,
    find_subject,
    open_requests,
    run_retention,
)

DSR_JOBS = ("export", "erase", "requests", "retention")
#: Who acts when a command runs: the operator at the server's shell.
COMMAND_ACTOR = AuditActor(label="command: patron privacy")


def add_dsr_arguments(parser: CommandParser) -> None:
    """The arguments of the data subject request jobs."""
    parser.add_argument(
        "external_id", nargs="?", default="", help="export, erase: the shop's id of the customer"
    )
    parser.add_argument("--output", default="", help="export: the zip file to write")
    parser.add_argument(
        "--kind",
        choices=[PrivacyRequestKindChoices.ACCESS, PrivacyRequestKindChoices.EXPORT],
        default=PrivacyRequestKindChoices.EXPORT,
        help="export: the request answered (default export)",
    )
    parser.add_argument(
        "--reason", default="", help="erase: why (recorded; no personal data), required"
    )
    parser.add_argument(
        "--inactive-days",
        type=int,
        default=None,
        help="retention: days without activity (default PATRON_RETENTION_DAYS)",
    )
    parser.add_argument("--dry-run", action="store_true", help="retention: count, change nothing")


def _subject(options: dict[str, Any]) -> Any:
    external_id = options["external_id"]
    if not external_id:
        raise CommandError(f"{options['job']} needs the customer's external id")
    try:
        return find_subject(external_id)
    except UnknownCustomerError as error:
        raise CommandError(str(error)) from error


def run_dsr_job(command: BaseCommand, options: dict[str, Any]) -> None:
    """Run the job named by ``options["job"]`` (one of :data:`DSR_JOBS`)."""
    job = options["job"]
    try:
        if job == "export":
            _export(command, options)
        elif job == "erase":
            _erase(command, options)
        elif job == "requests":
            _requests(command)
        else:
            _retention(command, options)
    except PrivacyRequestError as error:
        raise CommandError(str(error)) from error


def _export(command: BaseCommand, options: dict[str, Any]) -> None:
    if not options["output"]:
        raise CommandError("export needs --output FILE.zip")
    output = Path(options["output"])
    if not output.parent.exists():
        raise CommandError(f"--output: folder {output.parent} does not exist")
    customer = _subject(options)
    privacy_request, archive = export_for_subject(
        customer, actor=COMMAND_ACTOR, kind=options["kind"]
    )
    output.write_bytes(archive)
    command.stdout.write(
        f"request #{privacy_request.pk} ({privacy_request.kind}) done: {len(archive):,} bytes "
        f"written to {output}"
    )


def _erase(command: BaseCommand, options: dict[str, Any]) -> None:
    if not options["reason"].strip():
        raise CommandError("erase needs --reason (why; no personal data)")
    customer = _subject(options)
    outcome = erase_customer(customer, reason=options["reason"], actor=COMMAND_ACTOR)
    if not outcome.created:
        command.stdout.write(
            f"already erased (request #{outcome.request.pk}): the customer is "
            f"{outcome.customer.external_id}; nothing changed"
        )
        return
    changed = ", ".join(f"{table} {count}" for table, count in outcome.changed.items())
    command.stdout.write(
        f"erased: the customer is now {outcome.customer.external_id} "
        f"(request #{outcome.request.pk}; rows changed: {changed})"
    )


def _requests(command: BaseCommand) -> None:
    now = timezone.now()
    rows = list(open_requests())
    if not rows:
        command.stdout.write("no open data subject requests")
        return
    for privacy_request in rows:
        overdue = " OVERDUE" if privacy_request.due_at < now else ""
        command.stdout.write(
            f"#{privacy_request.pk} {privacy_request.kind} {privacy_request.status} "
            f"customer {privacy_request.customer.external_id} "
            f"received {timezone.localtime(privacy_request.received_at):%Y-%m-%d %H:%M} "
            f"due {timezone.localtime(privacy_request.due_at):%Y-%m-%d %H:%M}{overdue}"
        )
    overdue_count = sum(1 for privacy_request in rows if privacy_request.due_at < now)
    command.stdout.write(f"{len(rows)} open, {overdue_count} overdue")


def _retention(command: BaseCommand, options: dict[str, Any]) -> None:
    days = options["inactive_days"]
    if days is None:
        days = settings.RETENTION_DAYS
    if days is None:
        raise CommandError("retention is off: pass --inactive-days N or set PATRON_RETENTION_DAYS")
    summary = run_retention(
        days, dry_run=options["dry_run"], batch_size=options["batch_size"], actor=COMMAND_ACTOR
    )
    cutoff = f"{timezone.localtime(summary.cutoff):%Y-%m-%d}"
    if summary.dry_run:
        command.stdout.write(
            f"dry run: {summary.found:,} customers inactive since before {cutoff} would be "
            "anonymised"
        )
        return
    command.stdout.write(
        f"{summary.erased:,} of {summary.found:,} customers inactive since before {cutoff} "
        "anonymised"
    )
