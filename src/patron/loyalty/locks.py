"""Row locks of the loyalty app, in one place so that every action takes them in the same
order (by primary key) and two transactions never wait on each other in a cycle.

Lock order across tables: point balances first (the lock point of a member's points), then
anything else an action needs (coupons, rewards) in primary-key order. On PostgreSQL these are
``SELECT ... FOR UPDATE``; on SQLite, where ``select_for_update`` is a no-op, the settings open
every ``transaction.atomic()`` with ``BEGIN IMMEDIATE`` so writers queue on the database lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.db import models

from patron.loyalty.models import PointBalance

ModelT = TypeVar("ModelT", bound=models.Model)


def lock_rows(queryset: models.QuerySet[ModelT]) -> list[ModelT]:
    """Lock the rows of ``queryset`` in primary-key order and return them (inside atomic())."""
    return list(queryset.order_by("pk").select_for_update())


def lock_point_balances(member_ids: Iterable[int]) -> list[PointBalance]:
    """Lock the point balance rows of the given members, in primary-key order."""
    return lock_rows(PointBalance.objects.filter(member_id__in=sorted(set(member_ids))))


def lock_point_balance(member_id: int) -> PointBalance:
    """Lock one member's balance row, loading the member, its tier and programme in the same
    query (only the balance row is locked: ``FOR UPDATE OF`` on PostgreSQL)."""
    return (
        PointBalance.objects.select_related("member__programme", "member__tier")
        .select_for_update(of=("self",))
        .get(member_id=member_id)
    )
