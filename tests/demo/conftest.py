"""Worlds shared by the demo tests (generated once per session: they are pure and frozen)."""

from __future__ import annotations

from datetime import date

import pytest

from patron.demo.generator import DemoConfig, DemoWorld, generate_world

AS_OF = date(2025, 6, 1)


@pytest.fixture(scope="session")
def small_world() -> DemoWorld:
    """300 customers: enough for every kind of row, quick to import."""
    return generate_world(DemoConfig(customers=300, seed=1, as_of=AS_OF))


@pytest.fixture(scope="session")
def large_world() -> DemoWorld:
    """20,000 customers (the default size): enough for the statistics to settle."""
    return generate_world(DemoConfig(customers=20_000, seed=7, as_of=AS_OF))
