"""Start the real server (`python app.py`) on a free loopback port for a test: the helper
the benchmarks use (``benchmarks.common.running_server``), yielding the base URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.common import running_server as running_server_process


@contextmanager
def running_server(env: dict[str, str], timeout: float = 60) -> Iterator[str]:
    """Yield the base URL once /readyz answers 200; stop the server afterwards. The
    server's output goes to the test's (captured) stdout and stderr."""
    with running_server_process(env, timeout=timeout) as server:
        yield server.base
