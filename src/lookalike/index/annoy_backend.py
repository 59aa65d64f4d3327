"""Annoy backend: static random-projection trees, plus a small exact delta for writes.

Annoy cannot add to or remove from a built forest. So a loaded index is three parts:

- the **base**: an Annoy forest (inner product, memory-mapped from ``trees.ann``);
- the **delta**: products added or replaced since the base was built, searched exactly
  (a matrix product over at most ``delta_max`` vectors);
- the **tombstones**: base products deleted or replaced since, skipped in its answers.

A query merges the base's and the delta's top k. When delta + tombstones pass
``delta_max``, a background thread builds a new forest from a snapshot (base survivors +
delta), then swaps it in under the lock, keeping in the delta (and tombstones) only what
changed while it was building. A process that exits before its fold finishes saved a
consistent base + delta; the next :meth:`AnnoyBackend.load` folds it before serving.

The trade-off against FAISS: the forest is memory-mapped and shared between processes,
but every write costs exact-search time until the next fold, and a fold is a full build.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from annoy import AnnoyIndex

from lookalike.index.base import (
    MANIFEST_FILE,
    RECALL_K,
    IndexManifest,
    NoIndexError,
    ProductIndex,
    recall,
    recall_of,
    tuning_queries,
)
from lookalike.index.vector_index import atomic_write, ids_checksum

if TYPE_CHECKING:
    from lookalike.store.catalog import ProductFields

SUBDIR = "annoy"
TREES_FILE = "trees.ann"
STATE_FILE = "state.npz"
_METRIC: Final = "dot"  # Annoy's "dot" distance is the inner product itself: our score


@dataclass
class AnnoyManifest(IndexManifest):
    """An Annoy index's manifest: the FAISS fields plus the forest's parameters."""

    trees: int = 0
    search_k: int = 0  # nodes inspected per query, tuned to the target recall
    base_count: int = 0
    state_sha256: str = ""


@dataclass
class _Forest:
    """A built Annoy forest, the file it is memory-mapped from, and the product id at each
    of its positions. Never modified once built: a fold makes a new one."""

    trees: AnnoyIndex | None
    path: Path | None
    ids: np.ndarray
    search_k: int
    recall_at_10: float | None


def _build_forest(
    ids: np.ndarray, vectors: np.ndarray, trees: int, target_recall: float, jobs: int
) -> _Forest:
    """Build a forest and tune ``search_k``: the smallest of ``trees * 10 * 2**j`` whose
    recall@10 against exact search reaches ``target_recall`` on fresh-like queries
    (:func:`~lookalike.index.base.tuning_queries`, as FAISS tunes nprobe).

    The forest is built straight into a temporary file (deleted with the forest) rather
    than in memory: Annoy's ``save`` of an in-memory forest unloads and re-maps it, which
    a search or a fold reading it at that moment would not survive. Saving copies the file.
    """
    n = len(ids)
    ids = np.asarray(ids, dtype=np.int64)
    if n == 0:
        return _Forest(None, None, ids, 0, None)
    fd, name = tempfile.mkstemp(prefix="lookalike-", suffix=".ann")
    os.close(fd)
    forest = AnnoyIndex(vectors.shape[1], _METRIC)
    forest.on_disk_build(name)
    for pos, vector in enumerate(vectors):
        forest.add_item(pos, vector)
    forest.build(trees, n_jobs=jobs)  # releases the GIL: searches go on meanwhile
    built = _Forest(forest, Path(name), ids, trees * RECALL_K, None)
    weakref.finalize(built, os.unlink, name)
    sample = tuning_queries(vectors, ids)
    while True:
        positions = [forest.get_nns_by_vector(q, RECALL_K, built.search_k) for q in sample.queries]
        found = np.array([_padded(ids[p], RECALL_K) for p in positions])
        reached = recall(found, sample.truth)
        if reached >= target_recall or built.search_k >= n * trees:
            built.recall_at_10 = round(reached, 4)
            return built
        built.search_k *= 2


def _padded(ids: np.ndarray, k: int) -> np.ndarray:
    return np.concatenate([ids, np.full(k - len(ids), -1, dtype=np.int64)])


class AnnoyProductIndex:
    """Annoy forest + exact delta + tombstones (see the module docstring)."""

    def __init__(
        self,
        manifest: AnnoyManifest,
        forest: _Forest,
        delta: dict[int, np.ndarray],
        tombstones: set[int],
        *,
        delta_max: int,
        target_recall: float,
    ) -> None:
        self._manifest = manifest
        self._forest = forest
        self._pos = {int(i): p for p, i in enumerate(forest.ids.tolist())}
        self._delta = delta
        self._tombstones = tombstones
        self._ids = (set(self._pos) - tombstones) | set(delta)
        self._delta_matrix: tuple[np.ndarray, np.ndarray] | None = None
        self.delta_max = delta_max
        self.target_recall = target_recall
        self._lock = threading.RLock()
        self._changed: set[int] | None = None  # ids written while a fold is running
        self._folding: threading.Thread | None = None
        self._saved_forest: _Forest | None = None  # the forest ``trees.ann`` holds

    @property
    def manifest(self) -> AnnoyManifest:
        """Model version, count, id checksum, and the forest's parameters."""
        return self._manifest

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, product_id: int) -> bool:
        return product_id in self._ids

    @property
    def pending(self) -> int:
        """Writes not yet folded into the forest (delta + tombstones)."""
        return len(self._delta) + len(self._tombstones)

    # ---- queries -----------------------------------------------------------------------

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids): the forest's and the delta's, merged. With
        ``allowed``, the forest is asked for more and more neighbours until ``k`` allowed
        ones are found or it has been searched through."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
        k = max(1, k)
        permitted = None if allowed is None else set(np.asarray(allowed).tolist())
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        found = np.full((len(q), k), -1, dtype=np.int64)
        with self._lock:
            delta_ids, delta_vectors = self._delta_arrays()
            if permitted is not None:
                keep = np.fromiter((i in permitted for i in delta_ids.tolist()), bool)
                delta_ids, delta_vectors = delta_ids[keep], delta_vectors[keep]
            # Tombstones are always forest products, so the forest holds this many live ones.
            in_forest = len(self._pos) - len(self._tombstones)
            if permitted is not None:
                in_forest = sum(i in self._pos and i not in self._tombstones for i in permitted)
            want = min(k, in_forest)
            for row, vector in enumerate(q):
                base_ids, base_scores = self._search_forest(vector, k, permitted, want, exhaustive)
                ids = np.concatenate([base_ids, delta_ids])
                sc = np.concatenate([base_scores, delta_vectors @ vector])
                top = np.argsort(-sc, kind="stable")[:k]
                scores[row, : len(top)] = sc[top]
                found[row, : len(top)] = ids[top]
        return scores, found

    def _search_forest(
        self,
        vector: np.ndarray,
        k: int,
        permitted: set[int] | None,
        want: int,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The forest's top ``k`` live (and permitted) products; asks for 4x more
        neighbours until ``want`` of them are found or every node was searched."""
        forest = self._forest
        size = len(forest.ids)
        if forest.trees is None:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        # Ask for enough to cover the tombstones a top k holds on average (asking for
        # k + all of them cost 22 ms instead of 1 ms a query after 500 replaced products
        # among 10,000); the loop below widens when that was too few.
        dead = len(self._tombstones)
        n = k + -(-k * dead // max(1, size - dead))
        while True:
            n = min(n, size)
            # Searched through: every node (Annoy's own default for n == size).
            search_k = (
                -1
                if n == size
                else size * self._manifest.trees
                if exhaustive  # every node of every tree
                else max(forest.search_k, n * self._manifest.trees)
            )
            pos, dist = forest.trees.get_nns_by_vector(vector, n, search_k, True)
            ids = forest.ids[np.asarray(pos, dtype=np.int64)]
            keep = np.fromiter(
                (
                    i not in self._tombstones and (permitted is None or i in permitted)
                    for i in ids.tolist()
                ),
                bool,
                count=len(ids),
            )
            if int(keep.sum()) >= want or n == size:
                return ids[keep][:k], np.asarray(dist, dtype=np.float32)[keep][:k]
            n *= 4

    def _delta_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._delta_matrix is None:
            ids = np.fromiter(self._delta, dtype=np.int64, count=len(self._delta))
            dim = self._manifest.dim
            vectors = (
                np.stack([self._delta[int(i)] for i in ids])
                if len(ids)
                else np.empty((0, dim), np.float32)
            )
            self._delta_matrix = ids, vectors
        return self._delta_matrix

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 of forest + delta against exact search, on fresh-like queries."""
        return recall_of(self.search, vectors, ids)

    # ---- updates -----------------------------------------------------------------------

    def add(
        self, ids: np.ndarray, vectors: np.ndarray, fields: ProductFields | None = None
    ) -> None:
        """Add or replace products: into the delta (a replaced base product is tombstoned).
        ``fields`` unused: filters come as allowed ids."""
        if len(ids) == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            for pid, vector in zip(np.asarray(ids).tolist(), vectors, strict=True):
                if pid in self._pos:
                    self._tombstones.add(pid)
                self._delta[pid] = vector.copy()
                self._ids.add(pid)
                if self._changed is not None:
                    self._changed.add(pid)
            self._written()

    def remove(self, ids: np.ndarray) -> int:
        """Remove products: from the delta, or tombstoned in the forest."""
        with self._lock:
            present = [i for i in np.asarray(ids).tolist() if i in self._ids]
            for pid in present:
                self._delta.pop(pid, None)
                if pid in self._pos:
                    self._tombstones.add(pid)
                self._ids.discard(pid)
                if self._changed is not None:
                    self._changed.add(pid)
            if present:
                self._written()
            return len(present)

    def _written(self) -> None:
        self._delta_matrix = None
        ids = np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))
        self._manifest.count = len(ids)
        self._manifest.ids_sha256 = ids_checksum(ids)
        if self.pending > self.delta_max and self._folding is None:
            self._folding = threading.Thread(
                target=self._fold, name="annoy-fold", daemon=True, kwargs={"jobs": 1}
            )
            self._changed = set()
            self._folding.start()

    def fold(self) -> None:
        """Fold delta and tombstones into a new forest now (on every core), waiting for
        a background fold if one is running."""
        with self._lock:
            running = self._folding
        if running is not None:
            running.join()
        with self._lock:
            if self.pending:
                self._changed = set()
                self._fold(jobs=-1)

    def _fold(self, jobs: int) -> None:
        """Build a forest of the live products, then swap it in. Runs outside the lock
        (in the background) except for the snapshot and the swap."""
        with self._lock:
            old = self._forest
            survivors = [p for p, i in enumerate(old.ids.tolist()) if i not in self._tombstones]
            delta = dict(self._delta)
        # The old forest is never modified, so its vectors can be read without the lock.
        dim = self._manifest.dim
        base = np.empty((0, dim), np.float32)
        if old.trees is not None and survivors:
            base = np.array([old.trees.get_item_vector(p) for p in survivors], np.float32)
        ids = np.concatenate(
            [old.ids[survivors], np.fromiter(delta, dtype=np.int64, count=len(delta))]
        )
        added = np.array(list(delta.values()), np.float32).reshape(-1, dim)
        vectors = np.concatenate([base, added])
        forest = _build_forest(ids, vectors, self._manifest.trees, self.target_recall, jobs)
        with self._lock:
            changed = self._changed or set()
            self._forest = forest
            self._pos = {int(i): p for p, i in enumerate(forest.ids.tolist())}
            # What was written during the build stays pending: re-added products in the
            # delta, and the forest's copy of anything written since tombstoned.
            self._delta = {i: v for i, v in self._delta.items() if i in changed}
            self._tombstones = {i for i in changed if i in self._pos}
            self._delta_matrix = None
            self._changed = None
            self._folding = None
            m = self._manifest
            m.base_count, m.search_k = len(ids), forest.search_k
            m.recall_at_10 = forest.recall_at_10
            m.built_at = datetime.now(UTC).isoformat(timespec="seconds")

    # ---- persistence -------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the forest (only when it changed since the last save), the delta and
        tombstones, then the manifest with both files' checksums."""
        folder = folder / SUBDIR
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            forest = self._forest
            delta_ids, delta_vectors = self._delta_arrays()
            tombstones = np.fromiter(self._tombstones, np.int64, count=len(self._tombstones))
            manifest = AnnoyManifest(**asdict(self._manifest))
        if forest is not self._saved_forest or not (folder / TREES_FILE).exists():
            manifest.file_sha256 = _save_trees(forest, folder / TREES_FILE)
            self._saved_forest = forest
        state = _npz(
            base_ids=forest.ids, delta_ids=delta_ids, delta=delta_vectors, tombstones=tombstones
        )
        manifest.state_sha256 = hashlib.sha256(state).hexdigest()
        atomic_write(folder / STATE_FILE, state)
        atomic_write(folder / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2).encode())
        self._manifest.file_sha256 = manifest.file_sha256


def _save_trees(forest: _Forest, path: Path) -> str:
    """Copy the forest's file to ``path`` by write-then-rename; returns its sha256 ("" when
    the forest is empty)."""
    if forest.path is None:
        path.unlink(missing_ok=True)
        return ""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, forest.path.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        digest = _sha256_file(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


class AnnoyBackend:
    """Builds and opens Annoy indexes (``HOME/index/<model version>/annoy/``)."""

    name = "annoy"
    keeps_fields = False

    def __init__(self, trees: int = 32, delta_max: int = 2_000, target_recall: float = 0.95):
        self.trees = trees
        self.delta_max = delta_max
        self.target_recall = target_recall

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int,
        kind: str | None = None,
        fields: ProductFields | None = None,
    ) -> AnnoyProductIndex:
        """A forest of every product, on every core, ``search_k`` tuned; ``fields`` unused."""
        if kind not in (None, "annoy"):
            raise ValueError(f"the annoy backend builds annoy indexes, not {kind}")
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        forest = _build_forest(ids, vectors, self.trees, self.target_recall, jobs=-1)
        manifest = AnnoyManifest(
            model_version,
            "annoy",
            dim,
            len(ids),
            ids_checksum(ids),
            recall_at_10=forest.recall_at_10,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            trees=self.trees,
            search_k=forest.search_k,
            base_count=len(ids),
        )
        return self._open(manifest, forest, {}, set())

    def load(self, folder: Path, model_version: str, dim: int) -> AnnoyProductIndex:
        """The saved index, its files checked against the manifest; folded first if its
        pending writes passed ``delta_max`` (a process exited before its fold ended)."""
        folder = folder / SUBDIR
        if not (folder / MANIFEST_FILE).exists():
            raise NoIndexError(f"no annoy index in {folder}")
        try:
            manifest = AnnoyManifest(**json.loads((folder / MANIFEST_FILE).read_text()))
            state_bytes = (folder / STATE_FILE).read_bytes()
            if hashlib.sha256(state_bytes).hexdigest() != manifest.state_sha256:
                raise ValueError("state file does not match its manifest")
            state = np.load(io.BytesIO(state_bytes))
            trees: AnnoyIndex | None = None
            if len(state["base_ids"]):
                if _sha256_file(folder / TREES_FILE) != manifest.file_sha256:
                    raise ValueError("trees file does not match its manifest")
                trees = AnnoyIndex(manifest.dim, _METRIC)
                trees.load(str(folder / TREES_FILE))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"no usable annoy index in {folder}: {exc}") from exc
        forest = _Forest(
            trees,
            folder / TREES_FILE if trees is not None else None,
            state["base_ids"],
            manifest.search_k,
            manifest.recall_at_10,
        )
        delta = {int(i): v for i, v in zip(state["delta_ids"], state["delta"], strict=True)}
        index = self._open(manifest, forest, delta, set(state["tombstones"].tolist()))
        index._saved_forest = forest
        if index.pending > self.delta_max:
            index.fold()
            index.save(folder.parent)
        return index

    def _open(
        self,
        manifest: AnnoyManifest,
        forest: _Forest,
        delta: dict[int, np.ndarray],
        tombstones: set[int],
    ) -> AnnoyProductIndex:
        return AnnoyProductIndex(
            manifest,
            forest,
            delta,
            tombstones,
            delta_max=self.delta_max,
            target_recall=self.target_recall,
        )

    def outgrown(self, index: ProductIndex) -> bool:
        """Never: writes fold into the forest by themselves (see the module docstring)."""
        return False
