"""Orders, order lines, refunds and returns, and behaviour events."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.catalog.models import Product
from patron.core.choices import ChannelChoices
from patron.core.money import CurrencyField, MoneyField
from patron.customers.models import Customer
from patron.orders.choices import EventTypeChoices, OrderStatusChoices, RefundKindChoices


class Order(models.Model):
    """An order of a customer. ``total_amount`` = ``subtotal_amount`` − ``discount_amount``.

    Net spend (what analytics count) is the total less refunds; cancelled orders count nothing.
    """

    external_id = models.CharField(_("order id"), max_length=128, unique=True)
    # Indexed by order_customer_time, whose first column it is.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    ordered_at = models.DateTimeField(_("ordered at"))
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=OrderStatusChoices.choices,
        default=OrderStatusChoices.PAID,
    )
    channel = models.CharField(
        _("channel"), max_length=16, choices=ChannelChoices.choices, default=ChannelChoices.WEB
    )
    currency = CurrencyField(_("currency"))
    subtotal_amount = MoneyField(_("subtotal"), default=0)
    discount_amount = MoneyField(_("discount"), default=0)
    total_amount = MoneyField(_("total"), default=0)
    coupon_code = models.CharField(_("coupon code"), max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [
            models.Index(fields=["customer", "ordered_at"], name="order_customer_time"),
            models.Index(fields=["ordered_at"], name="order_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(subtotal_amount__gte=0)
                & models.Q(discount_amount__gte=0)
                & models.Q(total_amount__gte=0),
                name="order_amounts_not_negative",
            )
        ]

    def __str__(self) -> str:
        return self.external_id


class OrderLine(models.Model):
    """One line of an order.

    ``line_key`` identifies the line within its order across imports: the source's own line
    id when it has one, else ``<product_id>#<k>`` for the k-th line of that product in the
    order. ``line_number`` is the line's position, for display.
    """

    # Indexed by order_line_unique, whose first column it is.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_key = models.CharField(_("line key"), max_length=160)
    line_number = models.PositiveIntegerField(_("line number"))
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order_lines",
        db_index=False,  # indexed by order_line_product
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price_amount = MoneyField(_("unit price"))
    line_total_amount = MoneyField(_("line total"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.UniqueConstraint(fields=["order", "line_key"], name="order_line_unique"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0)
                & models.Q(unit_price_amount__gte=0)
                & models.Q(line_total_amount__gte=0),
                name="order_line_amounts_valid",
            ),
        ]
        indexes = [models.Index(fields=["product"], name="order_line_product")]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.line_key}"


class Refund(models.Model):
    """Money given back on an order (a refund, or a return of goods), whole or per line."""

    external_id = models.CharField(_("refund id"), max_length=128, unique=True)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="refunds", db_index=False
    )  # indexed by refund_order
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=RefundKindChoices.choices,
        default=RefundKindChoices.REFUND,
    )
    amount = MoneyField(_("amount"))
    currency = CurrencyField(_("currency"))
    refunded_at = models.DateTimeField(_("refunded at"))
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        indexes = [models.Index(fields=["order"], name="refund_order")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")
        ]

    def __str__(self) -> str:
        return self.external_id


class RefundLine(models.Model):
    """The part of a refund that returns units of one order line."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField(_("quantity"))
    amount = MoneyField(_("amount"))

    class Meta:
        verbose_name = _("refund line")
        verbose_name_plural = _("refund lines")

    def __str__(self) -> str:
        return f"{self.refund_id}:{self.order_line_id}x{self.quantity}"


class Event(models.Model):
    """A behaviour event of a customer, or of an anonymous device until a login links it."""

    external_id = models.CharField(_("event id"), max_length=128, unique=True)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,  # indexed by event_customer_time
    )
    device_id = models.CharField(_("device id"), max_length=128, blank=True)
    event_type = models.CharField(_("type"), max_length=24, choices=EventTypeChoices.choices)
    product = models.ForeignKey(
        Product,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,  # indexed by event_product_time
    )
    occurred_at = models.DateTimeField(_("occurred at"))
    channel = models.CharField(
        _("channel"), max_length=16, choices=ChannelChoices.choices, default=ChannelChoices.WEB
    )
    properties = models.JSONField(_("properties"), default=dict, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time"),
            models.Index(fields=["product", "occurred_at"], name="event_product_time"),
            models.Index(fields=["device_id"], name="event_device"),
            models.Index(fields=["occurred_at"], name="event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type}@{self.occurred_at:%Y-%m-%d %H:%M}"
