"""The points ledger: immutable double-entry transactions and postings, point lots, and the
cached balance row that is the lock point of a member's points.

Double-entry bookkeeping: every transaction's postings sum to zero across accounts, so no
point appears or disappears without a counterpart (Pacioli, *Summa de arithmetica*, 1494;
the same scheme Saleor's gift cards and most wallet ledgers use). Member accounts hold what a
member has (pending, available) or owes (debt, a negative balance); programme accounts are
the counterparts (issued, adjustments, redeemed, expired).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.core.money import MoneyField
from patron.loyalty.models.programme import Member, Programme
from patron.orders.models import Order, Refund


class TransactionKindChoices(models.TextChoices):
    """What a ledger transaction records."""

    EARN = "earn", _("Earned on an order")
    ACTIVATE = "activate", _("Pending points became available")
    REFUND = "refund", _("Reversed for a refund")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Manual adjustment")
    DEBT_REPAY = "debt_repay", _("Debt repaid")


class AccountChoices(models.TextChoices):
    """Ledger accounts. Member accounts are positive while the member holds points; the debt
    account goes negative by the points a member owes. Programme accounts are counterparts."""

    MEMBER_PENDING = "member_pending", _("Member: pending")
    MEMBER_AVAILABLE = "member_available", _("Member: available")
    MEMBER_DEBT = "member_debt", _("Member: debt")
    PROGRAMME_ISSUED = "programme_issued", _("Programme: issued on orders")
    PROGRAMME_ADJUSTMENTS = "programme_adjustments", _("Programme: adjustments")
    PROGRAMME_REDEEMED = "programme_redeemed", _("Programme: redeemed")
    PROGRAMME_EXPIRED = "programme_expired", _("Programme: expired")


class LedgerTransaction(models.Model):
    """One applied event (an order paid, a refund, a redemption ...), immutable once written.

    ``idempotency_key`` is unique: a second delivery of the same event finds this row and
    gets it back; ``request_fingerprint`` (SHA-256 of the event's payload) tells a true
    duplicate from a different request reusing the key. ``points`` is the event's headline
    amount (signed for adjustments); ``qualifying_points`` and ``spend_amount`` are what the
    event adds to (or takes from) the tier metric.
    """

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="ledger_transactions", db_index=False
    )  # indexed by ledger_transaction_member_time
    kind = models.CharField(_("kind"), max_length=16, choices=TransactionKindChoices.choices)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    request_fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    points = models.BigIntegerField(_("points"))
    qualifying_points = models.BigIntegerField(_("qualifying points"), default=0)
    spend_amount = MoneyField(_("qualifying spend"), default=0)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    actor = models.CharField(_("made by"), max_length=200, blank=True)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund = models.ForeignKey(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The money a reversal accounts for: kept here, not read from the refund, because a
    # refund's amount can grow (a later import row) and a cancellation has no refund row.
    refunded_amount = MoneyField(_("refunded amount"), default=0)
    related_transaction = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        indexes = [
            models.Index(fields=["member", "occurred_at"], name="ledger_tx_member_time"),
            models.Index(fields=["order", "kind"], name="ledger_tx_order_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points} ({self.idempotency_key})"


class Posting(models.Model):
    """One leg of a transaction: ``points`` added to (or, negative, taken from) ``account``.

    ``member`` repeats the transaction's member so that balances are one indexed sum.
    """

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="postings"
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.CharField(_("account"), max_length=32, choices=AccountChoices.choices)
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        indexes = [models.Index(fields=["member", "account"], name="posting_member_account")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(points=0), name="posting_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.points:+d}"


class PointLot(models.Model):
    """Points earned together (one order, one adjustment), consumed first-in-first-out.

    ``remaining_points`` caches ``points`` minus the lot's consumptions and changes only
    with ``F()`` inside the transaction that writes the consumption. ``activated_by`` is set
    once, by the activation that made the lot available.
    """

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="point_lots")
    earned_by = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, related_name="lot"
    )
    points = models.BigIntegerField(_("points"))
    remaining_points = models.BigIntegerField(_("remaining points"))
    earned_at = models.DateTimeField(_("earned at"))
    available_at = models.DateTimeField(_("available at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    activated_by = models.OneToOneField(
        LedgerTransaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="activated_lot",
    )

    class Meta:
        verbose_name = _("point lot")
        verbose_name_plural = _("point lots")
        indexes = [
            models.Index(fields=["available_at"], name="point_lot_available_at"),
            models.Index(fields=["expires_at"], name="point_lot_expires_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points__gt=0)
                & models.Q(remaining_points__gte=0)
                & models.Q(remaining_points__lte=models.F("points")),
                name="point_lot_remaining_valid",
            )
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining_points}/{self.points}"


class LotConsumption(models.Model):
    """Points a transaction (redeem, expire, refund, debt repayment, negative adjustment)
    took from a lot."""

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="consumptions"
    )
    lot = models.ForeignKey(PointLot, on_delete=models.PROTECT, related_name="consumptions")
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("lot consumption")
        verbose_name_plural = _("lot consumptions")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points__gt=0), name="lot_consumption_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id} took {self.points} from lot {self.lot_id}"


class PointBalance(models.Model):
    """Cached balances of a member, always equal to the sums of the member's postings.

    It is the row every points action locks first (``select_for_update``) and changes with
    ``F()`` in the same database transaction as the postings; the database refuses a
    negative figure. ``debt`` is the points the member owes (minus the debt account).
    """

    member = models.OneToOneField(
        Member, on_delete=models.PROTECT, primary_key=True, related_name="balance"
    )
    pending = models.BigIntegerField(_("pending"), default=0)
    available = models.BigIntegerField(_("available"), default=0)
    debt = models.BigIntegerField(_("debt"), default=0)
    redeemed = models.BigIntegerField(_("redeemed"), default=0)
    expired = models.BigIntegerField(_("expired"), default=0)
    lifetime_earned = models.BigIntegerField(_("lifetime earned"), default=0)

    class Meta:
        verbose_name = _("point balance")
        verbose_name_plural = _("point balances")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pending__gte=0)
                & models.Q(available__gte=0)
                & models.Q(debt__gte=0)
                & models.Q(redeemed__gte=0)
                & models.Q(expired__gte=0)
                & models.Q(lifetime_earned__gte=0),
                name="point_balance_not_negative",
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.available} available, {self.pending} pending"
