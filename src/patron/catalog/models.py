"""Products and the category tree."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.core.money import CurrencyField, MoneyField


class Category(models.Model):
    """A node of the category tree; ``path`` is the full name (``Home > Kitchen > Pots``)."""

    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    path = models.CharField(_("path"), max_length=1000, unique=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path


class Product(models.Model):
    """A product the shop sells, named by the shop's own id (``external_id``)."""

    external_id = models.CharField(_("product id"), max_length=128, unique=True)
    sku = models.CharField(_("SKU"), max_length=128, blank=True)
    name = models.CharField(_("name"), max_length=500, blank=True)
    category = models.ForeignKey(
        Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="products"
    )
    brand = models.CharField(_("brand"), max_length=200, blank=True)
    price_amount = MoneyField(_("price"), null=True, blank=True)
    currency = CurrencyField(_("currency"))
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_amount__gte=0) | models.Q(price_amount__isnull=True),
                name="product_price_not_negative",
            )
        ]

    def __str__(self) -> str:
        return self.name or self.external_id
