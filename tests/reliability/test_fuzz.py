"""Schemathesis against the real server's served schema (a few hundred requests; the
bounded 10,000-request run is ``python -m benchmarks.reliability.fuzz``): no 5xx."""

from __future__ import annotations

import pytest

from benchmarks.common import Server
from benchmarks.reliability.fuzz import fuzz

pytestmark = pytest.mark.dataset


def test_fuzz_served_schema(served: Server) -> None:
    report = fuzz(served.base, 300, seed=1)
    assert report["server_errors"] == 0, report["failures"]
    assert report["operations"] >= 12 and report["requests"] >= 300
    assert served.proc.poll() is None
