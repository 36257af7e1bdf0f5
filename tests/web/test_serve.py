"""``patron serve``: refuses an unmigrated store, serves pages and static files with Granian."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from patron.web.management.commands.serve import bind_address, default_workers


def _patron(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "patron", *args]


def _environment(home: Path) -> dict[str, str]:
    # A fresh embedded store in a temporary PATRON_HOME, whatever database the suite uses.
    environment = {key: value for key, value in os.environ.items() if key != "PATRON_DEBUG"}
    environment.update({"PATRON_HOME": str(home), "PATRON_DATABASE_URL": ""})
    return environment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_help_names_its_options(tmp_path: Path) -> None:
    # when
    result = subprocess.run(
        _patron(tmp_path, "serve", "--help"),
        capture_output=True,
        text=True,
        env=_environment(tmp_path),
        check=False,
    )
    # then
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--threads"):
        assert option in result.stdout


def test_serve_refuses_a_store_with_unapplied_migrations(tmp_path: Path) -> None:
    # when
    result = subprocess.run(
        _patron(tmp_path, "serve", "--port", str(_free_port())),
        capture_output=True,
        text=True,
        env=_environment(tmp_path),
        check=False,
        timeout=60,
    )
    # then
    assert result.returncode == 1
    assert "unapplied migration" in result.stderr
    assert "Run `patron migrate` first" in result.stderr


def test_serve_refuses_debug_mode(tmp_path: Path) -> None:
    # when
    result = subprocess.run(
        _patron(tmp_path, "serve"),
        capture_output=True,
        text=True,
        env={**_environment(tmp_path), "PATRON_DEBUG": "1"},
        check=False,
        timeout=60,
    )
    # then
    assert result.returncode == 1
    assert "production mode only" in result.stderr


@pytest.mark.slow
def test_serve_serves_the_login_page_and_static_files(tmp_path: Path) -> None:
    # given a migrated store
    environment = _environment(tmp_path)
    subprocess.run(_patron(tmp_path, "migrate", "-v", "0"), env=environment, check=True)
    port = _free_port()
    server = subprocess.Popen(
        _patron(tmp_path, "serve", "--port", str(port), "--workers", "1"),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # when
        page = _get_when_up(f"http://127.0.0.1:{port}/login/", server)
        # then
        assert "Staff login" in page or "员工登录" in page
        stylesheet = next(
            part.split('"')[0] for part in page.split('href="') if part.startswith("/static/")
        )
        assert stylesheet.startswith("/static/web/patron.")  # hashed by the manifest storage
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{stylesheet}") as response:
            assert response.headers["Server"] == "granian"
            assert ".menu-item" in response.read().decode()
        assert (tmp_path / "static" / "vendor" / "plotly" / "plotly.min.js").is_file()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_when_up(url: str, server: subprocess.Popen[str], seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            pytest.fail(f"patron serve exited with {server.returncode}: {output}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: str = response.read().decode()
                return body
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"patron serve did not answer {url} within {seconds} s")


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [("127.0.0.1", 8000, "127.0.0.1:8000"), ("::1", 80, "[::1]:80"), ("[::]", 8000, "[::]:8000")],
)
def test_bind_address(host: str, port: int, expected: str) -> None:
    assert bind_address(host, port) == expected


def test_default_workers_use_fewer_processes_on_sqlite() -> None:
    assert default_workers(sqlite=True) == 2
    assert default_workers(sqlite=False) == min(2 * (os.cpu_count() or 1) + 1, 9)
