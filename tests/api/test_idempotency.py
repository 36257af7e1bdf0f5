"""``Idempotency-Key`` on the API's writes: a retry is answered, not applied, again."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from patron.api import idempotency
from patron.api.errors import ApiError
from patron.api.idempotency import prune_kept_answers, require_idempotency_key
from patron.api.models import IdempotentRequest
from patron.api.tokens import create_token, hash_token
from patron.customers.models import Customer

BATCH = [{"customer_id": "00042", "name": "张伟"}]
URL = "/api/v1/ingest/customers"


def post(client: Client, body: Any, headers: dict[str, str]) -> Any:
    return client.post(URL, json.dumps(body), content_type="application/json", headers=headers)


def test_the_same_request_again_gets_the_first_answer_without_running_again(
    client: Client, bearer: dict[str, str]
) -> None:
    headers = {**bearer, "Idempotency-Key": "7d0c4f4e-0001"}
    first = post(client, BATCH, headers)
    assert first.status_code == 200
    assert first.json()["inserted"] == 1
    # the customer changes in between: a replay must not import the batch over it
    Customer.objects.filter(external_id="00042").update(name="王芳")

    again = post(client, BATCH, headers)

    assert again.status_code == 200
    assert again.json() == first.json()  # "inserted": 1, not "updated": 1
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Customer.objects.get(external_id="00042").name == "王芳"
    assert IdempotentRequest.objects.count() == 1


def test_another_body_with_a_used_key_is_a_409_that_changes_nothing(
    client: Client, bearer: dict[str, str]
) -> None:
    headers = {**bearer, "Idempotency-Key": "order-1001-paid"}
    assert post(client, BATCH, headers).status_code == 200

    response = post(client, [{"customer_id": "00043", "name": "李娜"}], headers)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "idempotency_key_reused"
    assert "order-1001-paid" in body["message"]
    assert not Customer.objects.filter(external_id="00043").exists()


def test_keys_belong_to_their_credential(
    client: Client, bearer: dict[str, str], api_user: User
) -> None:
    other = {"Authorization": f"Bearer {create_token(api_user, 'other')[1]}"}
    assert post(client, BATCH, {**bearer, "Idempotency-Key": "k-1"}).status_code == 200

    response = post(client, [{"customer_id": "00043"}], {**other, "Idempotency-Key": "k-1"})

    assert response.status_code == 200
    assert response.json()["inserted"] == 1
    assert IdempotentRequest.objects.count() == 2


def test_a_refused_request_is_kept_and_replayed_too(client: Client, bearer: dict[str, str]) -> None:
    headers = {**bearer, "Idempotency-Key": "bad-body"}
    first = post(client, {"not": "a list"}, headers)
    assert first.status_code == 422
    again = post(client, {"not": "a list"}, headers)
    assert (again.status_code, again.json()) == (422, first.json())


def test_an_unauthenticated_write_keeps_no_key(client: Client, db: None) -> None:
    response = post(client, BATCH, {"Authorization": "Bearer nope", "Idempotency-Key": "k"})
    assert response.status_code == 401
    assert not IdempotentRequest.objects.exists()


@pytest.mark.parametrize(
    ("key", "message"),
    [("x" * 256, "1 to 255 characters long, not 256"), ("ключ", "printable ASCII")],
)
def test_a_malformed_key_is_a_422_naming_the_header(
    client: Client, bearer: dict[str, str], key: str, message: str
) -> None:
    response = post(client, BATCH, {**bearer, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_idempotency_key"
    assert message in response.json()["message"]
    assert not Customer.objects.exists()


def test_writes_without_a_key_run_as_before(client: Client, bearer: dict[str, str]) -> None:
    assert post(client, BATCH, bearer).json()["inserted"] == 1
    assert post(client, BATCH, bearer).json()["unchanged"] == 1
    assert not IdempotentRequest.objects.exists()


def test_a_retry_while_the_first_is_still_running_is_a_409(
    client: Client, bearer: dict[str, str], token: str
) -> None:
    # given the first request with the key, still being processed (no answer kept yet)
    body = json.dumps(BATCH).encode()
    IdempotentRequest.objects.create(
        scope="token:" + hash_token(token),
        key="slow-1",
        method="POST",
        path=URL,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    # when it is retried
    response = post(client, BATCH, {**bearer, "Idempotency-Key": "slow-1"})
    # then the retry waits its turn instead of running alongside it
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_use"
    assert not Customer.objects.exists()


def test_an_endpoint_may_require_a_key(rf: Any) -> None:
    with pytest.raises(ApiError) as refused:
        require_idempotency_key(rf.post("/api/v1/loyalty/members/1/redemptions"))
    assert refused.value.status == 422
    assert require_idempotency_key(rf.post("/x", headers={"Idempotency-Key": "abc"})) == "abc"


def _age(record: IdempotentRequest, hours: float) -> None:
    """Make ``record`` look ``hours`` old."""
    IdempotentRequest.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=hours)
    )


def test_a_key_reused_after_it_expired_is_a_new_request(
    client: Client, bearer: dict[str, str], settings: Any
) -> None:
    # given: the first answer was kept 25 hours ago, longer than the 24 kept
    settings.IDEMPOTENCY_KEEP_SECONDS = 24 * 3600
    headers = {**bearer, "Idempotency-Key": "sync-2026-12-01"}
    assert post(client, BATCH, headers).json()["inserted"] == 1
    _age(IdempotentRequest.objects.get(), hours=25)
    # when: the same key comes with another body
    response = post(client, [{"customer_id": "00043", "name": "李娜"}], headers)
    # then: it runs, and its answer is the one kept now
    assert response.status_code == 200
    assert response.json()["inserted"] == 1
    assert "Idempotent-Replayed" not in response
    record = IdempotentRequest.objects.get()
    assert record.created_at > timezone.now() - dt.timedelta(minutes=1)


def test_a_retry_within_the_kept_time_is_still_replayed(
    client: Client, bearer: dict[str, str], settings: Any
) -> None:
    # given
    settings.IDEMPOTENCY_KEEP_SECONDS = 24 * 3600
    headers = {**bearer, "Idempotency-Key": "sync-2026-12-02"}
    post(client, BATCH, headers)
    _age(IdempotentRequest.objects.get(), hours=23)
    # when
    again = post(client, BATCH, headers)
    # then
    assert again["Idempotent-Replayed"] == "true"


def test_expired_answers_are_deleted_and_fresh_ones_kept(
    client: Client, bearer: dict[str, str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: two old answers and a fresh one
    settings.IDEMPOTENCY_KEEP_SECONDS = 3600
    for number in range(3):
        post(client, [{"customer_id": f"C-{number}"}], {**bearer, "Idempotency-Key": f"k-{number}"})
    old = list(IdempotentRequest.objects.order_by("pk"))[:2]
    for record in old:
        _age(record, hours=2)
    # when: the next write finds this process has not pruned for a while
    monkeypatch.setattr(idempotency, "_last_prune", 0.0)
    post(client, [{"customer_id": "C-9"}], {**bearer, "Idempotency-Key": "k-9"})
    # then
    assert sorted(IdempotentRequest.objects.values_list("key", flat=True)) == ["k-2", "k-9"]
    # and the function alone reports what it deleted
    _age(IdempotentRequest.objects.get(key="k-2"), hours=2)
    assert prune_kept_answers() == 1
