"""The HTTP server behind ``patron serve``: Granian, started in a fresh Python process.

Granian's HTTP handling (parsing, keep-alive, the hand-over to the application's threads)
is written in Rust: gunicorn's, in Python, cost about 1-2 ms of CPU per request, as much as a
whole member read of the API (``bench/loyalty.py``: redemption p99 at 200/s 80 ms behind
gunicorn, 30 ms behind Granian, on the same two cores and code).

``patron serve`` checks the store and collects static files with Django loaded, then replaces
itself (``os.execv``) with this module, so the server's main process never imports Django or
the apps (libraries with thread pools, such as Polars, are not fork-safe). Each worker
process imports ``patron.wsgi`` itself.

Run directly: ``python -m patron.web.server --host 127.0.0.1 --port 8000 --workers 2
--threads 4``.
"""

from __future__ import annotations

import argparse
from typing import Any

from granian import Granian
from granian.constants import Interfaces


def server_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """Granian settings of Patron: the WSGI application, ``workers`` processes each running
    it on ``threads`` threads, an access log, and failed workers started again."""
    return {
        "target": "patron.wsgi:application",
        "address": host.strip("[]"),
        "port": port,
        "interface": Interfaces.WSGI,
        "workers": workers,
        "blocking_threads": threads,
        "websockets": False,
        "log_access": True,
        "respawn_failed_workers": True,
        # A worker being stopped gets this long to finish its requests.
        "workers_kill_timeout": 10,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the server until stopped (SIGTERM or Ctrl+C)."""
    parser = argparse.ArgumentParser(prog="python -m patron.web.server")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    arguments = parser.parse_args(argv)
    Granian(
        **server_options(arguments.host, arguments.port, arguments.workers, arguments.threads)
    ).serve()


if __name__ == "__main__":
    main()
