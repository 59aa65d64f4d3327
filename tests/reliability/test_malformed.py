"""One of each kind of malformed image (30 inputs from dev photos) against the real server
and the real ingest: no 5xx, no hang, ingest stores exactly what the API could search."""

from __future__ import annotations

import pytest

from benchmarks.common import Server
from benchmarks.reliability.common import Home, dev_photos
from benchmarks.reliability.malformed import KINDS, ingest_all, make_cases, problems, search_all

pytestmark = pytest.mark.dataset


def test_malformed_images_are_refused_by_name(served: Server, fresh_home: Home) -> None:
    cases = make_cases(len(KINDS), [p for _, p in dev_photos(len(KINDS), start=7)])
    assert {c.kind for c in cases} == set(KINDS)
    outcomes = search_all(served.base, cases)
    assert served.proc.poll() is None, "the server died"
    report = ingest_all(fresh_home, cases, outcomes)
    assert report["rc"] == 0, report["tail"]
    assert problems(outcomes) == []
    # Both fates occur: the check is not vacuous.
    assert any(o.ingested for o in outcomes) and any(o.named_failed for o in outcomes)
