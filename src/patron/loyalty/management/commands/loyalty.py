"""``patron loyalty daily|review-tiers|sync-orders``: the programme's jobs."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from patron.loyalty.care import grant_anniversary_rewards, grant_birthday_rewards
from patron.loyalty.ledger import activate_pending_points, expire_points
from patron.loyalty.order_points import sync_order_points
from patron.loyalty.referrals import settle_referrals
from patron.loyalty.tiers import review_tiers


def _as_of(value: str | None) -> datetime:
    """``--as-of`` as an aware datetime: a date means the end of that day in the shop's zone."""
    if not value:
        return timezone.now()
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--as-of: {value!r} is not a date or a date and time")
        moment = datetime.combine(day, time(23, 59, 59))
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Loyalty jobs. daily: activate pending points, expire points, settle referrals, "
        "grant birthday and anniversary rewards, review tiers (idempotent: a second run the "
        "same day changes nothing). review-tiers: tiers only. sync-orders: settle the points "
        "of every order in the store (earn, refunds, cancellations), e.g. after setting up a "
        "programme on a store that already holds orders; a second run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", choices=["daily", "review-tiers", "sync-orders"])
        parser.add_argument(
            "--as-of", help="run as of this date or datetime (default: now), for catching up"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = _as_of(options.get("as_of"))
        if options["job"] == "sync-orders":
            synced = sync_order_points(as_of=as_of)
            self.stdout.write(f"{synced.orders:,} orders: {synced}")
            for problem in synced.problems:
                self.stderr.write(f"points refused: {problem}")
            return
        if options["job"] == "daily":
            activated = activate_pending_points(as_of)
            self.stdout.write(
                f"activated {activated.points} points ({activated.transactions} transactions, "
                f"{activated.members} members)"
            )
            expired = expire_points(as_of)
            self.stdout.write(
                f"expired {expired.points} points ({expired.transactions} transactions, "
                f"{expired.members} members)"
            )
            # After activation: a referral pays once the first order's points are out of
            # their pending period.
            settled = settle_referrals(as_of)
            self.stdout.write(
                f"referrals: {len(settled.rewarded)} rewarded, {len(settled.refused)} refused, "
                f"{settled.pending} pending ({settled.points} points)"
            )
            birthdays = grant_birthday_rewards(as_of)
            anniversaries = grant_anniversary_rewards(as_of)
            self.stdout.write(
                f"birthday rewards: {len(birthdays)}, anniversary rewards: {len(anniversaries)}"
            )
        review = review_tiers(as_of)
        self.stdout.write(
            f"reviewed {review.members_reviewed} members: {review.upgrades} upgrades, "
            f"{review.downgrades} downgrades"
        )
