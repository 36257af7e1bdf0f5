"""Run the test suite on SQLite and, side by side, on PostgreSQL when one is reachable.

``PATRON_TEST_POSTGRES_URL`` names the server (default: the local one, user ``postgres``).
With ``CI=true`` a missing PostgreSQL server fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

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


def start_pytest(extra_env: dict[str, str], args: list[str], log: Any = None) -> Any:
    """Start one pass of the suite; its output goes to ``log`` (a file) or to ours."""
    env = {**os.environ, **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args], env=env, stdout=log, stderr=log
    )


def main() -> int:
    args = sys.argv[1:]
    in_ci = os.environ.get("CI", "").lower() == "true"
    url = os.environ.get("PATRON_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    problem = postgres_reachable(url)
    if problem is not None and in_ci:
        print(f"FAILED: PostgreSQL is required with CI=true but {url} is unreachable: {problem}")
        return 1
    print("\n=== test suite on SQLite ===", flush=True)
    if problem is not None:
        status = start_pytest({"PATRON_DATABASE_URL": ""}, args).wait()
        print(f"SKIPPED the PostgreSQL run: {url} is unreachable ({problem})")
        return int(status)
    # The two passes run side by side (each is mostly one busy process, and CI has two
    # cores); the PostgreSQL pass's output is kept and printed after the SQLite pass's.
    # Browser tests prove the pages; running them once (on SQLite) is enough. The engine's
    # tests never touch the store (import-linter keeps Django out of patron.engine), and the
    # database_agnostic ones check logic decided in Python (who may call what), so a second
    # run of them on PostgreSQL would prove nothing new.
    with tempfile.TemporaryFile(mode="w+") as postgres_log:
        postgres = start_pytest(
            {"PATRON_DATABASE_URL": url},
            [
                "-p",
                "no:cacheprovider",
                "-m",
                "not browser and not database_agnostic",
                "--ignore=tests/engine",
                *args,
            ],
            postgres_log,
        )
        status = start_pytest({"PATRON_DATABASE_URL": ""}, args).wait()
        postgres_status = postgres.wait()
        print("\n=== test suite on PostgreSQL ===", flush=True)
        postgres_log.seek(0)
        sys.stdout.write(postgres_log.read())
    return int(status or postgres_status)


if __name__ == "__main__":
    sys.exit(main())
