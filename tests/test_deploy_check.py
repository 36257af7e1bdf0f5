"""``patron check --deploy --fail-level WARNING`` passes with production settings, and the
embedded default stays plain http (the check says so)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

# The check reads settings only; the SQLite file of a temporary PATRON_HOME is enough.
pytestmark = pytest.mark.database_agnostic

STRONG_KEY = secrets.token_urlsafe(50)


def deploy_check(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the deploy check in a fresh process with ``env`` over a clean environment."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PATRON_") and name != "DJANGO_SETTINGS_MODULE"
    }
    return subprocess.run(
        [sys.executable, "-m", "patron", "check", "--deploy", "--fail-level", "WARNING"],
        env={**base, "PATRON_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(**overrides: str) -> dict[str, str]:
    return {
        "PATRON_PRODUCTION": "1",
        "PATRON_SECRET_KEY": STRONG_KEY,
        "PATRON_ALLOWED_HOSTS": "crm.example.cn",
        **overrides,
    }


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **production(PATRON_REDIS_URL="redis://127.0.0.1:6379/15"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_redis_it_passes_and_notes_the_per_process_counts(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "patron.api.I001" in result.stdout + result.stderr


def test_a_short_token_key_fails_it(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **production(PATRON_TOKEN_KEY="too-short"))
    assert result.returncode != 0
    assert "patron.api.W001" in result.stderr
    assert "PATRON_TOKEN_KEY is 9 characters long" in result.stderr


def test_a_weak_secret_key_fails_it(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **production(PATRON_SECRET_KEY="shop-secret"))
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_debug_mode_fails_it(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **production(PATRON_DEBUG="1"))
    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_the_embedded_default_is_plain_http_and_the_check_says_so(tmp_path: Path) -> None:
    result = deploy_check(tmp_path)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_a_bad_setting_value_is_named(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, **production(PATRON_HSTS_PRELOAD="maybe"))
    assert result.returncode != 0
    assert "PATRON_HSTS_PRELOAD must be 1 or 0" in result.stderr
