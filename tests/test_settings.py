from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_patron(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patron", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PATRON_HOME": str(home), **env},
        check=False,
    )


def test_secret_key_is_generated_once_into_patron_home(tmp_path: Path) -> None:
    first = run_patron(
        tmp_path,
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )
    second = run_patron(
        tmp_path,
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == second.stdout.strip()
    assert (tmp_path / "secret_key").read_text().strip() == first.stdout.strip()


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    result = run_patron(
        tmp_path,
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.TIME_ZONE, s.PATRON_CURRENCY, s.SECRET_KEY, s.DATABASES['default']['NAME'])",
        PATRON_TIME_ZONE="Europe/London",
        PATRON_CURRENCY="gbp",
        PATRON_SECRET_KEY="given-key",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "Europe/London",
        "GBP",
        "given-key",
        str(tmp_path / "patron.sqlite3"),
    ]
    assert not (tmp_path / "secret_key").exists()
