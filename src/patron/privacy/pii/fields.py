"""Model fields that store personal data encrypted and index it blindly.

:class:`EncryptedTextField`, :class:`EncryptedDateField` and :class:`EncryptedJSONField` hold
the ciphertext of :mod:`patron.privacy.pii.crypto` in a text column: they encrypt when a value
goes to the database (save, ``bulk_create``, ``bulk_update``, ``update``) and decrypt when a
row is read (instances, ``values``, ``values_list``). Blank values (``""``, ``None``) are stored
as they are. Only ``isnull`` and comparing with a blank value are allowed as lookups: any
other query on ciphertext would silently match nothing, so it is refused with an error that
points to the blind index.

:class:`BlindIndexField` keeps the blind index of another field's normalised value, computed
on save and on ``bulk_create`` (callers of ``bulk_update`` call :func:`refresh_blind_indexes`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.core import validators
from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.db.models.lookups import Exact, IsNull

from patron.privacy.pii.crypto import blind_index, decrypt_text, encrypt_text


class _BlankExact(Exact):
    """``field=""`` / ``field=None``: has the person given no value? Nothing else."""

    def get_prep_lookup(self) -> Any:
        if self.rhs not in ("", None):
            raise FieldError(
                f"{self.lhs.target.model.__name__}.{self.lhs.target.name} is encrypted: it can "
                "only be compared with a blank value; look up through its blind index"
            )
        return self.rhs


class _EncryptedMixin:
    """Shared behaviour: only blank comparisons, and a marker for set-based writers."""

    #: Set-based writers (``patron.core.bulk``) call ``get_prep_value`` on such fields.
    is_encrypted = True

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "exact":
            return _BlankExact
        if lookup_name == "isnull":
            return IsNull
        raise FieldError(
            f"{self.model.__name__}.{self.name} is encrypted: "  # type: ignore[attr-defined]
            f"the lookup {lookup_name!r} cannot work on ciphertext: decrypt in Python, or "
            "find exact values through a blind index (e-mail, phone, name)"
        )

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(
            f"{self.model.__name__}.{self.name} is encrypted: "  # type: ignore[attr-defined]
            f"{lookup_name!r} cannot be computed by the database; decrypt in Python"
        )


class EncryptedTextField(_EncryptedMixin, models.TextField):
    """Text stored encrypted; ``max_length`` limits the plaintext (checked on validation)."""

    _pyi_private_set_type: str
    _pyi_private_get_type: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.max_length is not None:
            self.validators.append(validators.MaxLengthValidator(self.max_length))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt_text(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt_text(str(value))


class EncryptedDateField(_EncryptedMixin, models.TextField):
    """A date stored as encrypted ISO 8601 text (``NULL`` when unknown)."""

    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if not value:
            return None
        return dt.date.fromisoformat(decrypt_text(value))

    def to_python(self, value: Any) -> dt.date | None:
        if value in (None, ""):
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError as error:
            raise ValidationError(
                f"{value!r} is not a date (YYYY-MM-DD)", code="invalid_date"
            ) from error

    def get_prep_value(self, value: Any) -> Any:
        day = self.to_python(value)
        if day is None:
            return None
        return encrypt_text(day.isoformat())

    def formfield(self, **kwargs: Any) -> Any:
        return forms.DateField(required=not self.blank, label=self.verbose_name, **kwargs)


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """A JSON value (dict, list ...) stored as encrypted JSON text."""

    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt_text(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt_text(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)


class BlindIndexField(models.CharField):
    """The blind index (``patron.privacy.pii.crypto.blind_index``) of field ``source``.

    ``normalise`` turns the source value into the form that is indexed (an e-mail lower-cased,
    a phone in E.164, a name with its spaces folded); lookups normalise the query the same way
    and match any of :func:`~patron.privacy.pii.crypto.blind_index_candidates`. It is not part
    of the migration state (it does not change the column).
    """

    def __init__(
        self,
        *args: Any,
        source: str = "",
        purpose: str = "",
        normalise: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)
        self.source = source
        self.purpose = purpose
        self.normalise = normalise

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def index_of(self, value: Any) -> str:
        """The index of a source value ("" for a blank one)."""
        if value in (None, ""):
            return ""
        text = str(value)
        if self.normalise is not None:
            text = self.normalise(text)
        return blind_index(self.purpose or self.source, text) if text else ""

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        index = self.index_of(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, index)
        return index


def refresh_blind_indexes(instance: models.Model) -> None:
    """Recompute every blind index of ``instance`` from its current values (``bulk_update``
    does not call ``pre_save``)."""
    for field in instance._meta.concrete_fields:
        if isinstance(field, BlindIndexField):
            field.pre_save(instance, add=False)


def blind_index_fields(model: type[models.Model]) -> list[BlindIndexField]:
    """The blind index fields of ``model``."""
    return [f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)]


def encrypted_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The encrypted fields of ``model``."""
    return [f for f in model._meta.concrete_fields if getattr(f, "is_encrypted", False)]
