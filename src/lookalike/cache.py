"""A bounded, thread-safe cache for what searches read again and again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """The ``size`` entries used last, shared by search threads (product rows by id,
    vectors by model version and id, catalog pictures by sha256). Whoever changes what it
    caches clears it after the change and so bumps its epoch: a read that raced the change
    (it began before) cannot put its stale entries back."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._epoch = 0
        self._lock = threading.Lock()

    def lookup(self, keys: Sequence[K]) -> tuple[dict[K, V], int]:
        """The entries of ``keys`` it holds (now the most recently used), and the epoch
        to :meth:`store` a read under."""
        with self._lock:
            entries = self._entries
            found = {k: entries[k] for k in keys if k in entries}
            for k in found:
                entries.move_to_end(k)
            return found, self._epoch

    def read_through(self, keys: Sequence[K], read: Callable[[list[K]], dict[K, V]]) -> dict[K, V]:
        """The entries of ``keys``: those it holds, the others from ``read`` (given the
        missing keys; it leaves out what it cannot find), kept for next time."""
        found, epoch = self.lookup(keys)
        missing = [k for k in keys if k not in found]
        if not missing:
            return found
        fetched = read(missing)
        self.store(fetched, epoch)
        return found | fetched

    def store(self, fetched: dict[K, V], epoch: int) -> None:
        """Keep ``fetched``, read under ``epoch``, unless the cache was cleared since."""
        with self._lock:
            if epoch != self._epoch or self.size == 0:
                return
            self._entries.update(fetched)
            for _ in range(len(self._entries) - self.size):  # evict the oldest entries
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry; reads begun before now cannot store theirs."""
        with self._lock:
            self._entries.clear()
            self._epoch += 1
