"""The API's memory of recent query photos: bounded by count, age and bytes."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.api.queries import CachedQuery, QueryCache


def _query(size: int = 0) -> CachedQuery:
    return CachedQuery(np.zeros(4, np.float32), None, "v1", 10, 10, None, None, size)


def test_least_recently_used_goes_first() -> None:
    cache = QueryCache(max_entries=2)
    a, b = cache.put(_query()), cache.put(_query())
    assert cache.get(a) is not None  # a is now the most recently used
    c = cache.put(_query())
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None
    assert len(cache) == 2 and cache.get("never-given") is None


def test_bytes_held_are_bounded() -> None:
    cache = QueryCache(max_bytes=1000)
    first = cache.put(_query(600))
    second = cache.put(_query(600))  # 1,200 bytes: the oldest goes
    assert cache.get(first) is None and cache.get(second) is not None


def test_old_queries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("lookalike.api.queries.time.monotonic", lambda: now[0])
    cache = QueryCache(max_age_s=60)
    key = cache.put(_query())
    now[0] += 59
    assert cache.get(key) is not None  # and its age starts again
    now[0] += 59
    assert cache.get(key) is not None
    now[0] += 61
    assert cache.get(key) is None and len(cache) == 0
