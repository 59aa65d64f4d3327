"""Keeps the descriptor index in step with the stored local features (the database is
the truth), with the same rules as the product index (index/manager.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.index.manager import SyncReport
from lookalike.index.vector_index import ids_checksum
from lookalike.matching.descriptor_index import MANIFEST_FILE, DescriptorIndex
from lookalike.matching.features import FEATURE_VERSION, LocalFeatures
from lookalike.store.catalog import CatalogStore

log = logging.getLogger(__name__)


class LocalIndexManager:
    """Loads, rebuilds, updates and checks the descriptor index of one feature version."""

    def __init__(
        self,
        store: CatalogStore,
        index_root: Path,
        feature_version: str = FEATURE_VERSION,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.feature_version = feature_version
        self.folder = index_root / "local" / re.sub(r"[^A-Za-z0-9._-]+", "_", feature_version)
        self._say = progress or log.info

    def load(self) -> tuple[DescriptorIndex, SyncReport]:
        """The saved index if it matches the database exactly; brought in line by adding
        and removing the products that differ when a few do (another server process
        wrote, or a crash came between a commit and the save); otherwise a rebuild."""
        if not (self.folder / MANIFEST_FILE).exists():
            index = self.rebuild()
            return index, SyncReport(True, "no descriptor index yet", len(index), first_build=True)
        try:
            index = DescriptorIndex.load(self.folder)
        except ValueError as exc:
            reason: str | None = str(exc)
        else:
            reason = self._mismatch(index)
            if reason is None:
                return index, SyncReport(False, None, len(index))
            if index.manifest.feature_version == self.feature_version and self._sync(index):
                log.info("descriptor index brought in line with the database: %s", reason)
                return index, SyncReport(False, reason, len(index))
        log.warning("descriptor index rebuilt from the database: %s", reason)
        index = self.rebuild()
        return index, SyncReport(True, reason, len(index))

    def rebuild(self) -> DescriptorIndex:
        """Build from every stored feature set of this version, and save."""
        self._say("building the local-feature index from the database")
        index = DescriptorIndex.build(
            self.feature_version, _Stored(self.store, self.feature_version)
        )
        index.save(self.folder)
        m = index.manifest
        self._say(f"local-feature index: {m.products} products, {m.descriptors} descriptors")
        return index

    def _sync(self, index: DescriptorIndex) -> bool:
        """Add and remove the products in which the index and the database differ, if
        they are few (a quarter of the index at most); saves. False if too many."""
        db_ids = set(self.store.local_feature_ids(self.feature_version).tolist())
        held = set(index.product_ids())
        missing, extra = sorted(db_ids - held), sorted(held - db_ids)
        if len(missing) + len(extra) > max(16, len(held) // 4):
            return False
        stored = self.store.local_features(missing, self.feature_version)
        added = {pid: LocalFeatures.from_bytes(data) for pid, data in stored.items()}
        self.apply(index, added, np.array(extra, dtype=np.int64))
        return self._mismatch(index) is None

    def apply(
        self,
        index: DescriptorIndex,
        added: dict[int, LocalFeatures],
        removed: np.ndarray,
        *,
        save: bool = True,
    ) -> DescriptorIndex:
        """Apply a committed database change; rebuild when the index has outgrown its
        quantizer (or its flat kind)."""
        index.remove(removed)
        index.add((pid, f.rootsift()) for pid, f in added.items())
        if index.outgrown:
            return self.rebuild()
        if save:
            index.save(self.folder)
        return index

    def check(self, index: DescriptorIndex) -> dict[str, Any]:
        """Does the descriptor index agree with the database?"""
        problem = self._mismatch(index)
        m = index.manifest
        return {
            "feature_version": self.feature_version,
            "kind": m.kind,
            "products": m.products,
            "descriptors": m.descriptors,
            "database_products": len(self.store.local_feature_ids(self.feature_version)),
            "consistent": problem is None,
            "problem": problem,
            "memory_bytes": index.memory_bytes(),
        }

    def _mismatch(self, index: DescriptorIndex) -> str | None:
        m = index.manifest
        if m.feature_version != self.feature_version:
            return f"descriptor index is of {m.feature_version}, expected {self.feature_version}"
        db_ids = self.store.local_feature_ids(self.feature_version)
        if m.products != len(db_ids):
            return f"descriptor index holds {m.products} products, database {len(db_ids)}"
        if m.ids_sha256 != ids_checksum(db_ids):
            return "descriptor index and database hold different products"
        return None


class _Stored:
    """Every stored feature set's RootSIFT, read from the database each time it is
    iterated (a large catalog's build reads it twice)."""

    def __init__(self, store: CatalogStore, feature_version: str) -> None:
        self.store = store
        self.feature_version = feature_version

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for pid, data in self.store.iter_local_features(self.feature_version):
            yield pid, LocalFeatures.from_bytes(data).rootsift()
