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

from django.db import connection, models

from patron.core.sql import columns, fetch_one, link, quote
from patron.loyalty.models import Member, PointBalance, Programme, Tier

ModelT = TypeVar("ModelT", bound=models.Model)


def lock_rows(queryset: models.QuerySet[ModelT]) -> list[ModelT]:
    """Lock the rows of ``queryset`` in primary-key order and return them (inside atomic())."""
    return list(queryset.order_by("pk").select_for_update())


def lock_point_balances(member_ids: Iterable[int]) -> list[PointBalance]:
    """Lock the point balance rows of the given members, in primary-key order."""
    return lock_rows(PointBalance.objects.filter(member_id__in=sorted(set(member_ids))))


def lock_point_balance(member_id: int) -> PointBalance:
    """Lock one member's balance row, loading the member, its tier and programme in the same
    query (only the balance row is locked: ``FOR UPDATE OF`` on PostgreSQL). Every write of
    points takes this lock, so it is one statement of SQL (``patron.core.sql``)."""
    balance_columns = columns(PointBalance, "b")
    member_columns = columns(Member, "m")
    programme_columns = columns(Programme, "p")
    tier_columns = columns(Tier, "t")
    lock = " FOR UPDATE OF b" if connection.features.has_select_for_update_of else ""
    row = fetch_one(
        f"SELECT {balance_columns.sql}, {member_columns.sql}, {programme_columns.sql}, "
        f"{tier_columns.sql} FROM {balance_columns.table} "
        f"JOIN {member_columns.table} ON m.{quote('id')} = {balance_columns.column('member_id')} "
        f"JOIN {programme_columns.table} ON p.{quote('id')} = "
        f"{member_columns.column('programme_id')} "
        f"LEFT JOIN {tier_columns.table} ON t.{quote('id')} = {member_columns.column('tier_id')} "
        f"WHERE {balance_columns.column('member_id')} = %s{lock}",
        [member_id],
    )
    if row is None:
        raise PointBalance.DoesNotExist(f"member #{member_id} has no point balance")
    balance = balance_columns.instance(row)
    member = member_columns.instance(row, len(balance_columns))
    assert balance is not None
    assert member is not None
    offset = len(balance_columns) + len(member_columns)
    link(member, "programme", programme_columns.instance(row, offset))
    link(member, "tier", tier_columns.instance(row, offset + len(programme_columns)))
    link(balance, "member", member)
    return balance
