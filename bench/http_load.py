"""Open-loop HTTP load shared by the benchmarks (bench/loyalty.py, bench/recommend.py).

Request ``i`` is due at ``start + i / rate`` and its latency counts from then, so a slow answer
delays nothing else's clock. ``connections`` threads each keep one HTTP/1.1 connection open
(as a shop's backend keeps a pool) and take the next due request; when all are busy a request
waits, and that wait counts too.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Keep-alive connections of the load process (each serves the next due request).
CONNECTIONS = 32


@dataclass(frozen=True)
class Request:
    """One request of the load: method, path, body, extra headers, the status expected."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] | None = None
    expected_status: int = 200


def open_loop(
    base: str,
    headers: dict[str, str],
    request_for: Callable[[int], Request],
    rate: float,
    seconds: float,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """Send ``rate * seconds`` requests (``request_for(i)``) at a fixed rate; latencies in ms.

    Returns ``requests, failures, first_failures, p50_ms, p99_ms, max_ms``.
    """
    total = int(rate * seconds)
    latencies: list[float] = [0.0] * total
    failures: list[str] = []
    lock = threading.Lock()
    address = urlsplit(base)
    host, port = address.hostname or "127.0.0.1", address.port
    start = time.perf_counter() + 0.5
    next_index = iter(range(total))

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            request = request_for(index)
            try:
                connection.request(
                    request.method,
                    request.path,
                    body=request.body,
                    headers={**headers, **(request.headers or {})},
                )
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    failures.append(repr(error)[:200])
                status = -1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
            latencies[index] = time.perf_counter() - due
            if status != request.expected_status:
                with lock:
                    failures.append(f"status {status}")
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return {
        "requests": total,
        "failures": len(failures),
        "first_failures": failures[:3],
        "p50_ms": 1000 * ordered[total // 2],
        "p99_ms": 1000 * ordered[min(total - 1, int(total * 0.99))],
        "max_ms": 1000 * ordered[-1],
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; 0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are the 14th and 15th fields; the split starts at the 3rd.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid`` and its children (a server and its workers)."""
    children: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            children = [int(child) for child in listing.read().split()]
    except OSError:
        pass
    return cpu_seconds(pid) + sum(process_tree_cpu_seconds(child) for child in children)


@contextmanager
def patron_server(env: dict[str, str], workers: int = 2, threads: int = 4) -> Iterator[str]:
    """``patron serve``'s server (Granian, ``workers`` x ``threads``) on a free local port
    with the environment ``env``; yields its base URL once it answers, and stops it
    afterwards."""
    with patron_server_process(env, workers, threads) as (base, _):
        yield base


@contextmanager
def patron_server_process(
    env: dict[str, str], workers: int = 2, threads: int = 4
) -> Iterator[tuple[str, int]]:
    """:func:`patron_server`, yielding the base URL and the server's process id (to read the
    CPU time of the server and its workers: :func:`process_tree_cpu_seconds`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "patron.web.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        # One token sends every request of a benchmark: its rate limit (still counted) must
        # not be what the figures measure.
        env={"PATRON_API_RATE_LIMIT": "1000000/min", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(base)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(base: str, seconds: float = 60.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the server at {base} did not answer in {seconds:.0f} s")
