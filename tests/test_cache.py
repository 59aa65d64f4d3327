"""The bounded cache searches read through (product rows, vectors, catalog pictures)."""

from __future__ import annotations

from lookalike.cache import BoundedCache


def test_the_cache_is_bounded_and_a_read_racing_a_write_stays_out() -> None:
    cache: BoundedCache[int, str] = BoundedCache(2)
    _, epoch = cache.lookup([])
    cache.store({i: f"s{i}" for i in (1, 2, 3)}, epoch)
    assert set(cache.lookup([1, 2, 3])[0]) == {2, 3}  # the oldest went
    _, epoch = cache.lookup([4])  # a read starts...
    cache.clear()  # ...a write commits...
    cache.store({4: "s4"}, epoch)  # ...the read's rows predate it
    assert cache.lookup([4])[0] == {}
