"""Recent query photos, kept so that a shopper can re-weigh or re-filter a search without
uploading the photo again (``query_id`` in POST /search).

Per process and bounded (entries, age, bytes of photo kept for the second look): a
server with several workers, or one that restarted, answers an unknown id with 404 and
the client sends the photo again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from lookalike.matching.features import LocalFeatures
from lookalike.search.photo import Zoom


@dataclass(frozen=True)
class CachedQuery:
    """Everything a search needs from a photo once it has been embedded: its vector (of
    model ``version``; searched with whatever index that version has now), local
    features, the photo's size and crop, and how to look closer at its centre."""

    vector: np.ndarray
    features: LocalFeatures | None
    version: str
    width: int
    height: int
    crop: object | None  # the api.schemas.Crop the photo was cut to, if any
    zoom: Zoom | None
    size: int  # bytes it holds on to: the file (for the zoom), features and their pixels


class QueryCache:
    """A least-recently-used map of query ids to :class:`CachedQuery`."""

    def __init__(
        self, max_entries: int = 256, max_age_s: float = 1800.0, max_bytes: int = 256 * 2**20
    ) -> None:
        self.max_entries, self.max_age_s, self.max_bytes = max_entries, max_age_s, max_bytes
        self._entries: OrderedDict[str, tuple[float, CachedQuery]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, query: CachedQuery) -> str:
        """Keep ``query``; returns its new id."""
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._entries[key] = (time.monotonic(), query)
            self._bytes += query.size
            self._evict()
        return key

    def get(self, key: str) -> CachedQuery | None:
        """The query kept under ``key`` (and now the most recently used), or None."""
        with self._lock:
            self._evict()
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries[key] = (time.monotonic(), found[1])
            self._entries.move_to_end(key)
            return found[1]

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self) -> None:
        oldest = time.monotonic() - self.max_age_s
        while self._entries:
            stamp, query = next(iter(self._entries.values()))
            over = len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            if not over and stamp >= oldest:
                return
            self._entries.popitem(last=False)
            self._bytes -= query.size
