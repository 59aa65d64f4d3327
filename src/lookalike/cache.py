"""A bounded, thread-safe cache for what searches read again and again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """The last ``size`` entries stored, shared by search threads (product rows by id,
    vectors by model version and id, catalog pictures by sha256). Whoever changes what it
    caches clears it after the change and so bumps its epoch: a read that raced the change
    (it began before) cannot put its stale entries back."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._epoch = 0
        self._lock = threading.Lock()

    def lookup(self, keys: Sequence[K]) -> tuple[dict[K, V], int]:
        """The entries of ``keys`` it holds, and the epoch to :meth:`store` a read under."""
        with self._lock:
            entries = self._entries
            return {k: entries[k] for k in keys if k in entries}, self._epoch

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
