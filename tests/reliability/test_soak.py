"""A few seconds of the soak: searching clients plus a writer on the real server; no
errors, no product returned by a search sent after its DELETE was acknowledged, and no
index rebuilt from the database because of the server's own writes."""

from __future__ import annotations

import pytest

from benchmarks.common import Server
from benchmarks.reliability.common import Home, dev_photos
from benchmarks.reliability.soak import photo_sets, soak, summarise
from tests.reliability.conftest import CATALOG

pytestmark = pytest.mark.dataset
SECONDS = 8


def test_short_soak(served: Server, served_home: Home) -> None:
    log = served_home.path.parent / "server.log"
    logged = len(log.read_text().splitlines())
    queries, held = photo_sets(dev_photos(CATALOG), held=12)
    report = summarise(soak(served, queries, held, SECONDS, clients=4), SECONDS)
    assert report["problems"] == []
    assert report["searches"] != 0 and report["deleted_then_returned"] == 0
    # A race between a write's commit and its index update made the server see its own
    # write as another process's and rebuild its indexes (several times a minute).
    rebuilds = [line for line in log.read_text().splitlines()[logged:] if "rebuilt" in line]
    assert rebuilds == []
