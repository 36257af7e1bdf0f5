"""Run the test suite on SQLite, then again on PostgreSQL when one is reachable.

``PATRON_TEST_POSTGRES_URL`` names the server (default: the local one, user ``postgres``).
With ``CI=true`` a missing PostgreSQL server fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import subprocess
import sys

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_reachable(url: str) -> str | None:
    """Return None when the server answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            connection.execute("select 1")
    except psycopg.Error as error:
        return str(error).strip()
    return None


def run_pytest(label: str, extra_env: dict[str, str], args: list[str]) -> int:
    print(f"\n=== test suite on {label} ===", flush=True)
    env = {**os.environ, **extra_env}
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=env)


def main() -> int:
    args = sys.argv[1:]
    in_ci = os.environ.get("CI", "").lower() == "true"
    sqlite_env = {"PATRON_DATABASE_URL": ""}
    status = run_pytest("SQLite", sqlite_env, args)

    url = os.environ.get("PATRON_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    problem = postgres_reachable(url)
    if problem is not None:
        if in_ci:
            print(
                f"FAILED: PostgreSQL is required with CI=true but {url} is unreachable: {problem}"
            )
            return 1
        print(f"SKIPPED the PostgreSQL run: {url} is unreachable ({problem})")
        return status
    # Browser tests prove the pages; running them once (on SQLite) is enough. The engine's
    # tests never touch the store (import-linter keeps Django out of patron.engine), and the
    # database_agnostic ones check logic decided in Python (who may call what), so a second
    # run of them on PostgreSQL would prove nothing new.
    postgres_status = run_pytest(
        "PostgreSQL",
        {"PATRON_DATABASE_URL": url},
        ["-m", "not browser and not database_agnostic", "--ignore=tests/engine", *args],
    )
    return status or postgres_status


if __name__ == "__main__":
    sys.exit(main())
