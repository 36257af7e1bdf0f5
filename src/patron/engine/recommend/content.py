"""Content similarity of products from their names and attributes, for new products.

Each product becomes a TF-IDF vector (Salton & Buckley 1988, "Term-weighting approaches in
automatic text retrieval", Information Processing & Management 24(5)) of its tokens:

* words of its names: runs of Chinese characters are segmented with ``jieba`` (its bundled
  dictionary; nothing is downloaded), other text is lower-cased and split into words of
  letters and digits;
* one token ``column=value`` per attribute (category, brand, colour ...).

Similarity is the cosine of the vectors. A customer's profile is the sum of their history's
vectors weighted by the interactions, and their score of a product its cosine with the
profile. Products without interactions are scored too (if the interactions were built with
them, see ``build_interactions(items=...)``): that is what this model is for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from patron.engine.frames import EngineInputError, collect, prepare
from patron.engine.recommend.base import (
    ReasonChoices,
    Reasons,
    Recommender,
    history_reasons,
    reject_params,
)
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Words of a product name: jieba for Chinese runs, lower-cased words for the rest.

    Single Latin letters and digits are dropped (sizes such as "S", noise such as "x").
    """
    import jieba  # type: ignore[import-untyped]

    jieba.setLogLevel(logging.WARNING)
    tokens: list[str] = []
    position = 0
    for match in _HAN_RUN.finditer(text):
        tokens.extend(_latin_words(text[position : match.start()]))
        tokens.extend(word for word in jieba.lcut(match.group()) if word.strip())
        position = match.end()
    tokens.extend(_latin_words(text[position:]))
    return tokens


def _latin_words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if len(word) > 1]


class ContentRecommender(Recommender):
    """Products like the customer's, by name and attributes (see the module docstring).

    Parameters
    ----------
    text_columns
        Columns of the products table read as text (names, titles, descriptions).
    attribute_columns
        Columns whose value is one token each (category, brand ...).
    sublinear_tf
        Count a repeated token ``1 + log(tf)`` times.

    Fit parameters
    --------------
    products
        A table with ``product_id`` and the named columns (nulls allowed). Products of the
        interactions missing from it have no content and are never recommended.

    Attributes
    ----------
    item_vectors_ : scipy.sparse.csr_matrix of shape (n_items, n_terms)
        L2-normalised TF-IDF vectors, rows in the interactions' item order.
    vocabulary_ : dict
        Token -> column of ``item_vectors_``.
    """

    _similarity_reason = ReasonChoices.SIMILAR_TO.value

    def __init__(
        self,
        text_columns: tuple[str, ...] = ("name",),
        attribute_columns: tuple[str, ...] = (),
        sublinear_tf: bool = True,
    ) -> None:
        self.text_columns = text_columns
        self.attribute_columns = attribute_columns
        self.sublinear_tf = sublinear_tf

    def fit(
        self, interactions: Interactions, products: Any = None, **params: Any
    ) -> ContentRecommender:
        """Vectorise ``products`` (required) aligned to the interactions' items."""
        if products is None:
            raise EngineInputError("ContentRecommender.fit needs products=<table>")
        return super().fit(interactions, products=products, **params)

    def _fit(self, interactions: Interactions, products: Any = None, **params: Any) -> None:
        reject_params(self, params)
        columns = ("product_id", *self.text_columns, *self.attribute_columns)
        table = collect(prepare(products, columns, "products").frame.select(list(columns)))
        documents: dict[Hashable, list[str]] = {}
        for row in table.iter_rows(named=True):
            tokens: list[str] = []
            for column in self.text_columns:
                if row[column] is not None:
                    tokens.extend(tokenize(str(row[column])))
            for column in self.attribute_columns:
                if row[column] is not None:
                    tokens.append(f"{column}={str(row[column]).strip().lower()}")
            documents.setdefault(row["product_id"], []).extend(tokens)
        corpus = [documents.get(item, []) for item in interactions.item_ids.tolist()]
        if not any(corpus):
            raise EngineInputError("products: no product of the interactions has any content")
        vectorizer = TfidfVectorizer(
            analyzer=lambda tokens: tokens, sublinear_tf=self.sublinear_tf, norm="l2"
        )
        self.item_vectors_ = sp.csr_matrix(vectorizer.fit_transform(corpus), dtype=np.float64)
        self.vocabulary_ = dict(vectorizer.vocabulary_)

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        matrix = self.interactions_.matrix
        scores = np.full((len(customers), matrix.shape[1]), np.nan)
        known = customers >= 0
        if known.any():
            profiles = normalize(
                sp.csr_matrix(matrix[customers[known]], dtype=np.float64) @ self.item_vectors_
            )
            scores[known] = (profiles @ self.item_vectors_.T).toarray()
        return scores

    def _item_similarity(self, items: IntArray) -> FloatArray:
        return np.asarray((self.item_vectors_[items] @ self.item_vectors_.T).toarray())

    def _reasons(
        self, customers: IntArray, customer_ids: Sequence[Hashable], items: IntArray
    ) -> Reasons:
        reasons = history_reasons(self, customers, items)
        codes = reasons.codes.copy()
        codes[codes == ReasonChoices.BECAUSE_YOU_BOUGHT.value] = ReasonChoices.SIMILAR_TO.value
        return Reasons(codes=codes, items=reasons.items)
