"""The gunicorn master behind ``patron serve``, started in a fresh Python process.

``patron serve`` checks the store and collects static files with Django loaded, then replaces
itself (``os.execv``) with this module. The master therefore never imports Django or the apps:
libraries with thread pools (Polars) are not fork-safe, and a worker forked from a process that
had imported them hangs on exit. Each worker imports ``patron.wsgi`` after the fork.

Run directly: ``python -m patron.web.server --bind 127.0.0.1:8000 --workers 2 --threads 4``.
"""

from __future__ import annotations

import argparse
from typing import Any

from gunicorn.app.base import BaseApplication


class PatronServer(BaseApplication):
    """Gunicorn run from Python: options from our command line, the application
    ``patron.wsgi.application`` loaded in each worker."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our options to gunicorn's configuration."""
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # Gunicorn 25.1+ opens a control socket shared by every gunicorn of the user
        # (~/.gunicorn/gunicorn.ctl); Patron does not use it, and two Patron servers on one
        # machine must not fight over it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        """The WSGI application (imported in the worker, after the fork)."""
        from patron.wsgi import application

        return application


def server_options(bind: str, workers: int, threads: int, timeout: int) -> dict[str, Any]:
    """Gunicorn settings of Patron: threads use the gthread worker, logs go to stderr."""
    return {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": 10,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "patron",
    }


def main(argv: list[str] | None = None) -> None:
    """Run gunicorn until stopped (SIGTERM or Ctrl+C)."""
    parser = argparse.ArgumentParser(prog="python -m patron.web.server")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--timeout", type=int, default=120)
    arguments = parser.parse_args(argv)
    PatronServer(
        server_options(arguments.bind, arguments.workers, arguments.threads, arguments.timeout)
    ).run()


if __name__ == "__main__":
    main()
