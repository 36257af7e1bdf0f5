"""The registry of personal data: every model field that holds personal data of a customer,
how an export shows it and how an erasure removes it.

Export (:mod:`patron.privacy.export`) and erasure (:mod:`patron.privacy.erasure`) are both
checked against this list by the tests: an export must contain every registered field of the
customer, an erasure must leave none of their values behind, and a model field whose name
looks personal (:data:`PERSONAL_NAME_PATTERN`) must be registered here or listed in
:data:`NOT_PERSONAL` with the reason it is not a customer's personal data.

Not in the database at all: rejected import rows are written to the import's rejects file
with their personal columns masked (``patron.ingest.services``), so no erasure of them is
needed; tickets do not exist yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.utils.translation import gettext_lazy as _


class ErasureChoices(models.TextChoices):
    """How an erasure removes a registered field's value."""

    CLEAR = "clear", _("cleared (blank value)")
    PSEUDONYMISE = "pseudonymise", _("replaced by a random pseudonym")
    DELETE_ROW = "delete_row", _("the row is deleted")
    RECOMPUTE = "recompute", _("recomputed from the cleared value (a blind index)")


@dataclass(frozen=True)
class PersonalField:
    """One registered field: ``model`` (``app_label.ModelName``) and ``field`` (its name),
    the export section it appears in, how it is erased and what it holds."""

    model: str
    field: str
    section: str
    erasure: ErasureChoices
    holds: str

    @property
    def model_class(self) -> type[models.Model]:
        """The Django model of the entry."""
        return apps.get_model(self.model)


#: Field names that look like personal data: a model field matching it must be registered
#: or explained in :data:`NOT_PERSONAL`.
PERSONAL_NAME_PATTERN = re.compile(
    r"(^|_)(name|names|email|e_mail|phone|mobile|address|birthday|birth|device|"
    r"device_id|ip|wechat|openid|unionid|snapshot|secret|id_card|passport)(_|$)"
)

PERSONAL_FIELDS: tuple[PersonalField, ...] = (
    PersonalField(
        "customers.Customer",
        "external_id",
        "profile",
        ErasureChoices.PSEUDONYMISE,
        "the shop's own id of the customer",
    ),
    PersonalField("customers.Customer", "name", "profile", ErasureChoices.CLEAR, "name"),
    PersonalField("customers.Customer", "email", "profile", ErasureChoices.CLEAR, "e-mail"),
    PersonalField("customers.Customer", "phone", "profile", ErasureChoices.CLEAR, "phone"),
    PersonalField("customers.Customer", "birthday", "profile", ErasureChoices.CLEAR, "birthday"),
    PersonalField("customers.Customer", "address", "profile", ErasureChoices.CLEAR, "address"),
    PersonalField(
        "customers.Customer",
        "name_index",
        "profile",
        ErasureChoices.RECOMPUTE,
        "keyed hash of the name",
    ),
    PersonalField(
        "customers.Customer",
        "email_index",
        "profile",
        ErasureChoices.RECOMPUTE,
        "keyed hash of the e-mail",
    ),
    PersonalField(
        "customers.Customer",
        "phone_index",
        "profile",
        ErasureChoices.RECOMPUTE,
        "keyed hash of the phone",
    ),
    PersonalField("customers.Customer", "gender", "profile", ErasureChoices.CLEAR, "gender"),
    PersonalField("customers.Customer", "province", "profile", ErasureChoices.CLEAR, "province"),
    PersonalField("customers.Customer", "city", "profile", ErasureChoices.CLEAR, "city"),
    PersonalField("customers.Customer", "tags", "profile", ErasureChoices.CLEAR, "staff's tags"),
    PersonalField(
        "customers.CustomerIdentity",
        "value",
        "identities",
        ErasureChoices.DELETE_ROW,
        "an identifier (external id, device id, keyed hash of an e-mail or phone)",
    ),
    PersonalField(
        "customers.CustomerIdentity",
        "secret",
        "identities",
        ErasureChoices.DELETE_ROW,
        "the e-mail or phone of an identity",
    ),
    PersonalField(
        "customers.CustomerMerge",
        "merged_external_id",
        "merges",
        ErasureChoices.PSEUDONYMISE,
        "the shop's id of a duplicate merged into the customer",
    ),
    PersonalField(
        "customers.CustomerMerge",
        "snapshot",
        "merges",
        ErasureChoices.CLEAR,
        "the profile of the merged duplicate",
    ),
    PersonalField(
        "customers.CustomerMerge",
        "reason",
        "merges",
        ErasureChoices.CLEAR,
        "why the records were merged (a masked identifier)",
    ),
    PersonalField("orders.Event", "device_id", "events", ErasureChoices.CLEAR, "the device's id"),
    PersonalField(
        "orders.Event",
        "properties",
        "events",
        ErasureChoices.CLEAR,
        "what the shop sent with the event (search terms, pages, addresses)",
    ),
    PersonalField(
        "privacy.ConsentEvent",
        "source_event_id",
        "consent_events",
        ErasureChoices.CLEAR,
        "the source's id of a consent decision",
    ),
)

#: Fields whose names look personal but hold no personal data of a customer, and why.
NOT_PERSONAL: dict[tuple[str, str], str] = {
    ("catalog.Category", "name"): "a category of the catalogue",
    ("catalog.Product", "name"): "a product of the catalogue",
    ("loyalty.CouponTemplate", "name"): "a coupon template set up by staff",
    ("loyalty.Programme", "name"): "the loyalty programme",
    ("loyalty.Promotion", "name"): "a promotion set up by staff",
    ("loyalty.Tier", "name"): "a tier of the programme",
    ("loyalty.Reward", "name"): "a reward of the catalogue",
    ("analytics.CustomerAnalysis", "behaviour_segment_name"): "a segment's label",
    ("api.ApiToken", "name"): "a staff member's label for a token",
    ("api.LoginFailure", "address"): "a staff sign-in's network address, not a customer's",
    ("privacy.AuditEvent", "actor_address"): "the network address of the staff member acting",
    ("loyalty.Tier", "birthday_bonus_points"): "a tier's set-up (points on a birthday)",
}


def personal_fields(model: str | None = None) -> tuple[PersonalField, ...]:
    """The registered fields, all of them or those of ``model`` (``app_label.ModelName``)."""
    if model is None:
        return PERSONAL_FIELDS
    return tuple(entry for entry in PERSONAL_FIELDS if entry.model == model)


def unregistered_personal_looking_fields() -> list[str]:
    """``app_label.Model.field`` of every Patron model field that is encrypted, a blind
    index, or named like personal data, and is neither registered nor in
    :data:`NOT_PERSONAL` (the registry's completeness check)."""
    registered = {(entry.model, entry.field) for entry in PERSONAL_FIELDS}
    missing: list[str] = []
    for model in apps.get_models():
        if not model.__module__.startswith("patron."):
            continue
        label = f"{model._meta.app_label}.{model.__name__}"
        for field in model._meta.concrete_fields:
            key = (label, field.name)
            if key in registered or key in NOT_PERSONAL:
                continue
            is_pii_field = (
                getattr(field, "is_encrypted", False) or type(field).__name__ == "BlindIndexField"
            )
            if is_pii_field or PERSONAL_NAME_PATTERN.search(field.name):
                missing.append(f"{label}.{field.name}")
    return sorted(missing)
