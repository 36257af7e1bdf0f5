"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PATRON_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = REPO_ROOT / "test-artifacts"


def require(condition: bool, reason: str) -> None:
    """Skip the test with ``reason`` when ``condition`` is false; with CI=true, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required with CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fresh_local_cache() -> None:
    """Every test starts with an empty local-memory cache, so that the API's rate-limit
    counts (kept there, per process) of one test never throttle the next. A Redis cache
    (PATRON_CACHE_URL) is left alone: it may be shared."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture
def shared_data() -> Path:
    """The public datasets folder (../shared/data); skipped where absent, required in CI."""
    require(SHARED_DATA.is_dir(), f"public datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def artifacts_dir() -> Path:
    """Folder for files a test leaves for people to look at (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
