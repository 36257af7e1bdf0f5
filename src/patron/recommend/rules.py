"""The repeat-purchase rule in SQL, shared by training (which products it may recommend to
a customer who bought them) and serving (the same rule at request time): one definition, so
that the two cannot drift apart."""

from __future__ import annotations

from patron.catalog.models import Category, Product
from patron.core.sql import Columns, columns, fetch_all
from patron.recommend.config import repeat_purchase_categories


def repeat_purchase_test(
    category: Columns[Category], paths: tuple[str, ...] | None = None
) -> tuple[str, list[object]]:
    """SQL that is true when the (left-joined) category ``category`` is, or is under, one of
    the repeat-purchase categories (``paths``, by default :func:`repeat_purchase_categories`),
    and false otherwise (also for a product without category: never null), with its
    parameters; ``("", [])`` when there are none. A path covers its sub-categories
    (``path > ...``), not categories that only start with the same letters."""
    paths = repeat_purchase_categories() if paths is None else paths
    if not paths:
        return "", []
    path = category.column("path")
    test = " OR ".join([f"{path} = %s OR {path} LIKE %s ESCAPE '!'"] * len(paths))
    params: list[object] = []
    for repeat_path in paths:
        params += [repeat_path, like_prefix(f"{repeat_path} > ")]
    return f"COALESCE(({test}), %s)", [*params, False]


def repeat_purchase_products(paths: tuple[str, ...] | None = None) -> set[int]:
    """The products of the repeat-purchase categories (:func:`repeat_purchase_test`)."""
    product, category = columns(Product, "p", only=()), columns(Category, "pc", only=())
    test, params = repeat_purchase_test(category, paths)
    if not test:
        return set()
    rows = fetch_all(
        f"SELECT {product.column('id')} FROM {product.table} "
        f"LEFT JOIN {category.table} ON {category.column('id')} = {product.column('category_id')} "
        f"WHERE {test}",
        params,
    )
    return {row[0] for row in rows}


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape character ``!``) for texts that start with ``prefix``."""
    escaped = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"{escaped}%"
