"""Key rotation: move every encrypted value and blind index to the newest key.

Models are found through the app registry (any model with encrypted or blind index fields, or
a ``pii_blind_indexes`` declaration for a column indexed from another column), so this layer
needs to import none of them. Rows are read and rewritten in primary-key batches, each in its
own transaction with its rows locked; a value already under the newest key is left alone, so
a second run (or a run resumed after an interruption) changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction

from patron.privacy.pii.crypto import (
    blind_index,
    decrypt_text,
    encrypt_text,
    index_key_id,
    key_id_of,
)
from patron.privacy.pii.fields import BlindIndexField, encrypted_fields
from patron.privacy.pii.keys import KeyRing, key_ring

DEFAULT_BATCH_SIZE = 2000


@dataclass
class ModelRotation:
    """What rotation did to one table."""

    label: str
    rows: int = 0
    values_reencrypted: int = 0
    indexes_recomputed: int = 0

    @property
    def rows_changed(self) -> bool:
        """Whether any value of the table was rewritten."""
        return bool(self.values_reencrypted or self.indexes_recomputed)


@dataclass
class RotationSummary:
    """What ``rotate_keys`` did, per table, and the key everything is now under."""

    key_id: str
    tables: list[ModelRotation] = field(default_factory=list)

    @property
    def values_reencrypted(self) -> int:
        """Encrypted values rewritten under the newest key."""
        return sum(table.values_reencrypted for table in self.tables)

    @property
    def indexes_recomputed(self) -> int:
        """Blind indexes recomputed under the newest key."""
        return sum(table.indexes_recomputed for table in self.tables)


class _Plaintext:
    """The decrypted values of one row, each decrypted at most once."""

    def __init__(self, values: dict[str, Any], ring: KeyRing) -> None:
        self.values = values
        self.ring = ring
        self.plain: dict[str, str] = {}

    def of(self, column: str) -> str:
        token = self.values[column]
        if not token:
            return ""
        if column not in self.plain:
            self.plain[column] = decrypt_text(token, self.ring)
        return self.plain[column]


def _column(model: type[models.Model], attname: str) -> str:
    field = model._meta.get_field(attname)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"{model.__name__}.{attname} is not a column")
    return field.column


def _declared_indexes(model: type[models.Model]) -> dict[str, tuple[str, str]]:
    # {index column attname: (encrypted source attname, attname of the column naming the
    # purpose)}: e.g. an identity whose value is the index of its secret under its kind.
    return dict(getattr(model, "pii_blind_indexes", {}))


def models_with_personal_data() -> list[type[models.Model]]:
    """Every installed model holding encrypted values or blind indexes, in label order."""
    found = [
        model
        for model in apps.get_models()
        if encrypted_fields(model)
        or any(isinstance(f, BlindIndexField) for f in model._meta.concrete_fields)
        or _declared_indexes(model)
    ]
    return sorted(found, key=lambda model: model._meta.label_lower)


def rotate_model(
    model: type[models.Model], *, batch_size: int = DEFAULT_BATCH_SIZE, ring: KeyRing | None = None
) -> ModelRotation:
    """Rewrite ``model``'s encrypted values and blind indexes made under older keys."""
    ring = ring or key_ring()
    newest = ring.newest.key_id
    meta = model._meta
    encrypted = [_column(model, f.attname) for f in encrypted_fields(model)]
    indexes = {
        _column(model, f.attname): f
        for f in meta.concrete_fields
        if isinstance(f, BlindIndexField) and f.source
    }
    declared = {
        _column(model, index): (_column(model, source), _column(model, purpose))
        for index, (source, purpose) in _declared_indexes(model).items()
    }
    source_columns = {_column(model, f.source) for f in indexes.values()}
    extra = {purpose for _, purpose in declared.values()} | {s for s, _ in declared.values()}
    columns = list(dict.fromkeys([*encrypted, *indexes, *declared, *source_columns, *extra]))
    assert meta.pk is not None
    pk_column = _column(model, meta.pk.attname)
    quote = connection.ops.quote_name
    select = (
        f"SELECT {quote(pk_column)}, {', '.join(quote(c) for c in columns)} "
        f"FROM {quote(meta.db_table)} WHERE {quote(pk_column)} > %s "
        f"ORDER BY {quote(pk_column)} LIMIT %s"
    )
    if connection.vendor == "postgresql":
        select += " FOR UPDATE"
    result = ModelRotation(meta.label_lower)
    last: Any = -(2**63)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(select, [last, batch_size])
            rows = cursor.fetchall()
            if not rows:
                break
            last = rows[-1][0]
            result.rows += len(rows)
            updates: dict[tuple[str, ...], list[list[Any]]] = {}
            for row in rows:
                values = dict(zip(columns, row[1:], strict=True))
                plain = _Plaintext(values, ring)
                changes: dict[str, Any] = {}
                for column in encrypted:
                    token = values[column]
                    if token and key_id_of(token) != newest:
                        changes[column] = encrypt_text(plain.of(column), ring)
                        result.values_reencrypted += 1
                for column, index_field in indexes.items():
                    current = values[column]
                    if current and index_key_id(current) != newest:
                        source = _column(model, index_field.source)
                        changes[column] = index_field.index_of(plain.of(source))
                        result.indexes_recomputed += 1
                for column, (source, purpose) in declared.items():
                    current = values[column]
                    if values[source] and current and index_key_id(current) != newest:
                        changes[column] = blind_index(values[purpose], plain.of(source), ring)
                        result.indexes_recomputed += 1
                if changes:
                    names = tuple(sorted(changes))
                    updates.setdefault(names, []).append([*(changes[n] for n in names), row[0]])
            for names, parameters in updates.items():
                assignments = ", ".join(f"{quote(name)} = %s" for name in names)
                cursor.executemany(
                    f"UPDATE {quote(meta.db_table)} SET {assignments} "
                    f"WHERE {quote(pk_column)} = %s",
                    parameters,
                )
    return result


def rotate_keys(*, batch_size: int = DEFAULT_BATCH_SIZE) -> RotationSummary:
    """Re-encrypt every encrypted value and recompute every blind index under the newest key
    of ``PATRON_PII_KEYS``, table by table, in batches. Idempotent."""
    ring = key_ring()
    summary = RotationSummary(ring.newest.key_id)
    for model in models_with_personal_data():
        summary.tables.append(rotate_model(model, batch_size=batch_size, ring=ring))
    return summary


def stale_values(model: type[models.Model], ring: KeyRing | None = None) -> int:
    """How many values and indexes of ``model`` are under another key than the newest
    (0 after a complete rotation)."""
    ring = ring or key_ring()
    newest = ring.newest.key_id
    meta = model._meta
    columns = [_column(model, f.attname) for f in encrypted_fields(model)]
    index_columns = [
        _column(model, f.attname) for f in meta.concrete_fields if isinstance(f, BlindIndexField)
    ]
    declared = [
        (_column(model, index), _column(model, source))
        for index, (source, _) in _declared_indexes(model).items()
    ]
    stale = 0
    quote = connection.ops.quote_name
    wanted = [*columns, *index_columns, *(i for i, _ in declared), *(s for _, s in declared)]
    if not wanted:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(quote(c) for c in dict.fromkeys(wanted))} "
            f"FROM {quote(meta.db_table)}"
        )
        names = list(dict.fromkeys(wanted))
        for raw in cursor.fetchall():
            row = dict(zip(names, raw, strict=True))
            stale += sum(1 for c in columns if row[c] and key_id_of(row[c]) != newest)
            stale += sum(1 for c in index_columns if row[c] and index_key_id(row[c]) != newest)
            stale += sum(
                1 for i, s in declared if row[s] and row[i] and index_key_id(row[i]) != newest
            )
    return stale
