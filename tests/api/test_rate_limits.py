"""Rate limits: per token (and staff user), per address for calls without a credential."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client, override_settings

from patron.api.ratelimit import count_request, describe_rate, is_over
from patron.api.tokens import create_token
from tests.conftest import require

REDIS_URL = os.environ.get("PATRON_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def get(client: Client, headers: dict[str, str] | None = None, address: str = "10.0.0.1") -> int:
    """Status of a read as ``address``."""
    return client.get(
        "/api/v1/loyalty/tiers", headers=headers or {}, REMOTE_ADDR=address
    ).status_code


@override_settings(API_RATE_LIMIT=(3, 60))
def test_a_token_over_its_limit_gets_429_with_retry_after(bearer: dict[str, str]) -> None:
    # when: four calls in one window
    statuses = [get(Client(), bearer) for _ in range(3)]
    response = Client().get("/api/v1/loyalty/tiers", headers=bearer)
    # then
    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["code"] == "throttled"
    assert "this token may make 3 requests per minute" in body["message"]
    assert 1 <= int(response["Retry-After"]) <= 60
    assert body["retry_after"] == int(response["Retry-After"])


@override_settings(API_RATE_LIMIT=(2, 60))
def test_each_token_has_its_own_count(api_user: User) -> None:
    # given
    first = {"Authorization": f"Bearer {create_token(api_user)[1]}"}
    second = {"Authorization": f"Bearer {create_token(api_user)[1]}"}
    # when
    first_statuses = [get(Client(), first) for _ in range(3)]
    second_statuses = [get(Client(), second) for _ in range(2)]
    # then
    assert first_statuses == [200, 200, 429]
    assert second_statuses == [200, 200]


@override_settings(API_RATE_LIMIT=(2, 60))
def test_a_staff_session_is_limited_per_user(staff_client: Client) -> None:
    statuses = [staff_client.get("/api/v1/loyalty/tiers").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@override_settings(API_RATE_LIMIT=None, API_ANONYMOUS_RATE_LIMIT=None)
def test_limits_switched_off_never_throttle(bearer: dict[str, str]) -> None:
    assert {get(Client(), bearer) for _ in range(30)} == {200}
    assert {get(Client()) for _ in range(30)} == {401}


@override_settings(API_ANONYMOUS_RATE_LIMIT=(2, 60))
def test_an_address_making_failed_calls_is_blocked(bearer: dict[str, str]) -> None:
    # when: two calls without a credential, a wrong token, then a valid token, all from one
    # address, and a valid token from another
    anonymous = [get(Client()), get(Client(), {"Authorization": "Bearer ptn_wrong"})]
    blocked = Client().get("/api/v1/loyalty/tiers", headers=bearer, REMOTE_ADDR="10.0.0.1")
    elsewhere = get(Client(), bearer, address="10.0.0.2")
    # then: guessing costs the guesser, the address is refused everything for the window
    assert anonymous == [401, 401]
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "throttled"
    assert (
        "an address without a valid credential may make 2 requests" in (blocked.json()["message"])
    )
    assert 1 <= int(blocked["Retry-After"]) <= 60
    assert elsewhere == 200


@override_settings(API_ANONYMOUS_RATE_LIMIT=(2, 60))
def test_authenticated_calls_do_not_count_against_the_address(bearer: dict[str, str]) -> None:
    assert [get(Client(), bearer) for _ in range(5)] == [200] * 5
    assert [get(Client()) for _ in range(3)] == [401, 401, 429]


@override_settings(API_ANONYMOUS_RATE_LIMIT=(1, 60))
def test_unknown_api_urls_and_the_schema_count_as_calls_without_a_credential(db: None) -> None:
    first = Client().get("/api/v1/no-such-thing", REMOTE_ADDR="10.0.0.9")
    second = Client().get("/api/v1/openapi.json", REMOTE_ADDR="10.0.0.9")
    assert first.status_code == 404
    assert second.status_code == 429


@override_settings(API_ANONYMOUS_RATE_LIMIT=(1, 60), PROXY_COUNT=1)
def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(db: None) -> None:
    # given: one proxy in front; clients can prepend anything to X-Forwarded-For
    def call(forwarded_for: str) -> int:
        return (
            Client()
            .get(
                "/api/v1/loyalty/tiers", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR=forwarded_for
            )
            .status_code
        )

    # when / then: the rightmost entry (what the proxy appended) is the client
    assert call("1.1.1.1") == 401
    assert call("6.6.6.6, 1.1.1.1") == 429
    assert call("2.2.2.2") == 401


def test_the_window_is_fixed_and_starts_again(db: None) -> None:
    # given: 2 per 60 s, from the start of a window
    limit = (2, 60)
    start = 1_800_000_000.0  # a multiple of 60
    # when / then
    assert count_request("test:w", limit, now=start) is None
    assert count_request("test:w", limit, now=start + 10) is None
    assert count_request("test:w", limit, now=start + 20) == 40
    assert is_over("test:w", limit, now=start + 59) == 1
    assert count_request("test:w", limit, now=start + 60) is None
    assert is_over("test:w", limit, now=start + 61) is None


def test_rates_are_described_in_words() -> None:
    assert describe_rate((600, 60)) == "600 requests per minute"
    assert describe_rate((10, 1)) == "10 requests per second"
    assert describe_rate((100, 300)) == "100 requests per 300 seconds"


@pytest.fixture
def redis_cache() -> Iterator[str]:
    """The default cache on Redis (PATRON_TEST_REDIS_URL, database 15 by default) under a key
    prefix of this test's own; skipped without a Redis server, required with CI=true."""
    address = urlsplit(REDIS_URL)
    try:
        socket.create_connection((address.hostname, address.port or 6379), timeout=1).close()
        reachable = True
    except OSError:
        reachable = False
    require(reachable, f"no Redis server at {REDIS_URL}")
    prefix = f"patron-test-{uuid.uuid4().hex}"
    config = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    with override_settings(CACHES=config):
        yield prefix
        caches["default"].clear()


@override_settings(API_RATE_LIMIT=(3, 60))
def test_on_redis_every_process_shares_the_count(redis_cache: str, bearer: dict[str, str]) -> None:
    # given: the default cache is Redis
    assert isinstance(caches["default"], RedisCache)
    # when: two calls here, then one more counted by "another process" (its own client)
    statuses = [get(Client(), bearer) for _ in range(2)]
    other_process = RedisCache(REDIS_URL, {"KEY_PREFIX": redis_cache})
    keys = other_process._cache.get_client().keys(f"{redis_cache}:*patron:rl:token:*")
    assert len(keys) == 1
    other_process._cache.get_client().incr(keys[0])
    # then: this process sees the other's call, and the fourth call is over the limit
    assert statuses == [200, 200]
    assert get(Client(), bearer) == 429
