"""Choices of the orders app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OrderStatusChoices(models.TextChoices):
    PLACED = "placed", _("Placed")
    PAID = "paid", _("Paid")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    CANCELLED = "cancelled", _("Cancelled")
    RETURNED = "returned", _("Returned")


class RefundKindChoices(models.TextChoices):
    REFUND = "refund", _("Refund")
    RETURN = "return", _("Return")


class EventTypeChoices(models.TextChoices):
    VIEW = "view", _("View")
    SEARCH = "search", _("Search")
    ADD_TO_CART = "add_to_cart", _("Add to cart")
    REMOVE_FROM_CART = "remove_from_cart", _("Remove from cart")
    CHECKOUT = "checkout", _("Checkout")
    PURCHASE = "purchase", _("Purchase")
    LOGIN = "login", _("Login")
