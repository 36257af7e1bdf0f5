"""The recommenders on a two-taste toy shop: contract, filters, reasons, similar items."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from patron.engine.recommend import (
    ALSRecommender,
    BPRRecommender,
    ContentRecommender,
    EASERecommender,
    HybridRecommender,
    Interactions,
    ItemKNNRecommender,
    NotFittedError,
    PopularityRecommender,
    ReasonChoices,
    Recommender,
    build_interactions,
    mmr_rerank,
    tokenize,
)
from tests.engine.recommend.conftest import SHOP, purchases

COFFEE = {"coffee", "mug", "milk"}


def collaborative() -> list[Recommender]:
    return [
        ItemKNNRecommender(k=5),
        ItemKNNRecommender(similarity="bm25", k=5),
        EASERecommender(l2=1.0),
        ALSRecommender(factors=4, iterations=30, regularization=0.1, random_state=0, num_threads=1),
    ]


@pytest.mark.parametrize("model", collaborative(), ids=lambda model: type(model).__name__)
def test_collaborative_models_recommend_the_missing_items_of_the_customers_taste(
    shop: Interactions, model: Recommender
) -> None:
    fitted = model.fit(shop)

    recommended = fitted.recommend(["gus", "hal"], n=2)

    assert fitted is model
    by_customer = {
        customer: set(group["product_id"].to_list())
        for (customer,), group in recommended.group_by("customer_id")
    }
    assert by_customer["gus"] == {"cup", "honey"}
    assert by_customer["hal"] == {"mug", "milk"}
    assert recommended.columns == [
        "customer_id",
        "rank",
        "product_id",
        "score",
        "reason",
        "reason_product_id",
    ]
    assert set(recommended["reason"]) == {ReasonChoices.BECAUSE_YOU_BOUGHT.value}
    assert set(recommended.filter(pl.col("customer_id") == "gus")["reason_product_id"]) == {"tea"}


def test_bpr_fits_and_scores_every_item(shop: Interactions) -> None:
    model = BPRRecommender(factors=4, iterations=20, random_state=0, num_threads=1).fit(shop)

    assert model.user_factors_.shape[0] == shop.n_customers
    assert model.scores(np.array([0])).shape == (1, shop.n_items)


def test_estimators_follow_the_scikit_learn_contract(shop: Interactions) -> None:
    model = ItemKNNRecommender(similarity="bm25", k=3)

    copy = clone(model)

    assert copy.get_params() == {
        "similarity": "bm25",
        "k": 3,
        "binary_similarity": True,
        "bm25_k1": 1.2,
        "bm25_b": 0.75,
    }
    assert not hasattr(copy, "similarity_")
    with pytest.raises(NotFittedError):
        copy.recommend(["ann"])


def test_seen_excluded_and_filtered_items_are_never_recommended(shop: Interactions) -> None:
    model = ItemKNNRecommender(k=5).fit(shop)

    unfiltered = model.recommend(["bob"], n=5, exclude_seen=False)
    filtered = model.recommend(["gus"], n=5, exclude=["cup"], filter_items=["cup", "honey", "mug"])
    dismissed = model.recommend(["gus", "bob"], n=5, exclude={"gus": ["honey"]})

    assert set(unfiltered["product_id"]) == {"tea", "cup", "honey"}
    assert filtered["product_id"].to_list() == ["honey"]
    assert "honey" not in dismissed.filter(pl.col("customer_id") == "gus")["product_id"].to_list()
    assert "honey" in dismissed.filter(pl.col("customer_id") == "bob")["product_id"].to_list()


def test_unknown_customers_get_nothing_from_collaborative_models(shop: Interactions) -> None:
    recommended = ItemKNNRecommender().fit(shop).recommend(["stranger"], n=3)

    assert recommended.height == 0


def test_popularity_counts_customers_and_ranks_per_segment(shop: Interactions) -> None:
    segments = {"ann": "tea", "bob": "tea", "cat": "tea", "gus": "tea", "new": "coffee"} | {
        customer: "coffee" for customer in ("dan", "eve", "fay", "hal")
    }
    model = PopularityRecommender(min_segment_customers=2).fit(shop, segments=segments)

    recommended = model.recommend(["new", "nobody"], n=1)

    assert model.popularity_[shop.item_index["tea"]] == 4
    assert recommended.rows() == [
        ("new", 1, "coffee", 4.0, ReasonChoices.POPULAR_IN_SEGMENT.value, None),
        ("nobody", 1, "tea", 4.0, ReasonChoices.POPULAR.value, None),
    ]


def test_trending_popularity_follows_the_decayed_weight() -> None:
    from patron.engine.recommend import InteractionWeighting

    interactions = build_interactions(
        purchases([("a", "old", 100), ("b", "old", 100), ("c", "new", 1)]),
        weighting=InteractionWeighting(half_life_days=7),
    )

    assert PopularityRecommender().fit(interactions).recommend(["z"], 1)["product_id"][0] == "old"
    trending = PopularityRecommender(measure="weight").fit(interactions)
    assert trending.recommend(["z"], 1)["product_id"][0] == "new"


def test_similar_items_name_what_is_bought_together(shop: Interactions) -> None:
    similar = ItemKNNRecommender(k=5).fit(shop).similar_items(["mug", "unknown"], n=2)

    assert set(similar["similar_product_id"]) == {"coffee", "milk"}
    assert set(similar["product_id"]) == {"mug"}
    assert set(similar["reason"]) == {ReasonChoices.OFTEN_BOUGHT_WITH.value}


def test_hybrid_blends_with_validated_weights_and_falls_back_to_popularity() -> None:
    rows = [(customer, product, days + 40) for customer, product, days in SHOP] + [
        ("ann", "tea", 2),
        ("bob", "honey", 3),
        ("dan", "coffee", 2),
        ("eve", "milk", 5),
        ("gus", "cup", 1),
    ]
    interactions = build_interactions(purchases(rows))
    model = HybridRecommender(
        components=[("knn", ItemKNNRecommender(k=5)), ("popular", PopularityRecommender())],
        validation_days=10,
    ).fit(interactions)

    recommended = model.recommend(["hal", "stranger"], n=2)

    assert sum(model.weights_.values()) == pytest.approx(1.0)
    assert set(model.validation_ndcg_) == {"knn", "popular", "hybrid"}
    assert model.validation_ndcg_["hybrid"] >= max(
        model.validation_ndcg_["knn"], model.validation_ndcg_["popular"]
    )
    hal = recommended.filter(pl.col("customer_id") == "hal")
    assert hal["product_id"][0] in COFFEE
    stranger = recommended.filter(pl.col("customer_id") == "stranger")
    assert stranger.height == 2
    assert set(stranger["reason"]) == {ReasonChoices.POPULAR.value}


def test_hybrid_with_fixed_weights_skips_the_search(shop: Interactions) -> None:
    model = HybridRecommender(
        components=[("knn", ItemKNNRecommender(k=5)), ("popular", PopularityRecommender())],
        weights={"knn": 3.0, "popular": 1.0},
    ).fit(shop)

    assert model.weights_ == {"knn": 0.75, "popular": 0.25}
    assert model.validation_ndcg_ == {}
    reasons = model.recommend(["gus"], n=2)
    assert set(reasons["reason_product_id"]) == {"tea"}


def test_diversity_reranking_trades_relevance_for_variety() -> None:
    relevance = np.array([1.0, 0.95, 0.9, 0.5])
    similarity = np.array(
        [[1, 0.99, 0, 0], [0.99, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64
    )

    assert mmr_rerank(relevance, similarity, 3, 0.0).tolist() == [0, 1, 2]
    assert mmr_rerank(relevance, similarity, 3, 0.5).tolist() == [0, 2, 3]


def test_recommend_with_diversity_keeps_the_list_length(shop: Interactions) -> None:
    model = ItemKNNRecommender(k=5).fit(shop)

    plain = model.recommend(["ann"], n=3, exclude_seen=False)
    diverse = model.recommend(["ann"], n=3, exclude_seen=False, diversity=0.9)

    assert plain.height == diverse.height == 3
    with pytest.raises(ValueError, match="diversity"):
        model.recommend(["gus"], diversity=2.0)


def test_tokenize_segments_chinese_and_splits_english() -> None:
    assert tokenize("白色心形挂饰 White HANGING heart, T-light holder x 6") == [
        "白色",
        "心形",
        "挂饰",
        "white",
        "hanging",
        "heart",
        "light",
        "holder",
    ]


def test_content_model_recommends_new_products_by_name_and_attributes() -> None:
    products = pl.DataFrame(
        {
            "product_id": ["tea", "coffee", "green-tea", "espresso"],
            "name": [
                "西湖龙井绿茶",
                "Arabica coffee beans",
                "龙井绿茶 礼盒",
                "Espresso coffee beans",
            ],
            "category": ["茶叶", "coffee", "茶叶", "coffee"],
        }
    )
    interactions = build_interactions(
        purchases([("ann", "tea", 1), ("bob", "coffee", 1)]), items=products["product_id"]
    )
    model = ContentRecommender(attribute_columns=("category",)).fit(interactions, products=products)

    recommended = model.recommend(["ann", "bob"], n=1)
    similar = model.similar_items(["espresso"], n=1)

    assert recommended.select(
        "customer_id", "product_id", "reason", "reason_product_id"
    ).rows() == [
        ("ann", "green-tea", ReasonChoices.SIMILAR_TO.value, "tea"),
        ("bob", "espresso", ReasonChoices.SIMILAR_TO.value, "coffee"),
    ]
    assert similar.select("similar_product_id", "reason").rows() == [
        ("coffee", ReasonChoices.SIMILAR_TO.value)
    ]
