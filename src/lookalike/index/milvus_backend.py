"""Milvus backend: the vectors live in a Milvus collection, not in this process.

The same code talks to the embedded Milvus Lite (``LOOKALIKE_MILVUS_URI`` a local
``*.db`` path; the default, ``HOME/index/milvus.db``) and to a Milvus standalone or
cluster (``http://host:19530``, with ``LOOKALIKE_MILVUS_TOKEN``).

Collection ``<LOOKALIKE_MILVUS_COLLECTION>_<sha256(model version)[:16]>``, one per model
version, so vectors of two models never mix:

- ``id``: INT64, primary key, the product id (no auto id);
- ``vector``: FLOAT_VECTOR of the model's dimension, index HNSW (M=16,
  efConstruction=200), metric IP (inner product: the embeddings are unit vectors, so it is
  their cosine, the score FAISS gives).

Writes are upserts and deletes, visible to every process at once (strong consistency).
Filters are pushed down as the boolean expression ``id in [...]`` over the ids the
database lets through (category and price stay in the database, the one source of truth
for them: a price edit writes no vector); when the HNSW graph cannot find ``k`` of them
(a very selective filter), the allowed products are scored exactly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from lookalike.index.base import (
    IndexBackendError,
    IndexManifest,
    NoIndexError,
    ProductIndex,
    recall_of,
)
from lookalike.index.vector_index import ids_checksum

_BATCH = 1_000  # rows per insert/upsert/get call: well under gRPC's 64 MB message limit
_MAX_EF = 32_768
_MAX_TOPK = 16_384  # Milvus's limit on k
_HNSW = {"M": 16, "efConstruction": 200}


class MilvusProductIndex:
    """One model version's collection. Holds only the id set (for ``len``, ``in`` and the
    consistency check); the vectors stay in Milvus."""

    def __init__(
        self, client: MilvusClient, collection: str, manifest: IndexManifest, ids: set[int], ef: int
    ) -> None:
        self.client = client
        self.collection = collection
        self._manifest = manifest
        self._ids = ids
        self.ef = ef

    @property
    def manifest(self) -> IndexManifest:
        """Model version, count and id checksum of what this process last saw."""
        return self._manifest

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, product_id: int) -> bool:
        return product_id in self._ids

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) from Milvus; ``allowed`` as an ``id in [...]`` filter."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
        k = max(1, k)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        found = np.full((len(q), k), -1, dtype=np.int64)
        if allowed is not None and len(allowed) == 0:
            return scores, found
        limit = min(k, _MAX_TOPK)
        expression = "" if allowed is None else f"id in [{','.join(map(str, allowed.tolist()))}]"
        rows = self.client.search(
            self.collection,
            data=list(q),
            limit=limit,
            filter=expression,
            output_fields=["id"],
            search_params={"metric_type": "IP", "params": {"ef": self._ef(limit, exhaustive)}},
        )
        for r, hits in enumerate(rows):
            for c, hit in enumerate(hits):
                found[r, c], scores[r, c] = int(hit["id"]), float(hit["distance"])
        if allowed is not None:
            want = min(k, len(allowed))
            short = [r for r in range(len(q)) if int((found[r] >= 0).sum()) < want]
            if short:
                self._exact(q[short], allowed, scores, found, short)
        return scores, found

    def _ef(self, limit: int, exhaustive: bool) -> int:
        """HNSW's search breadth: wider (16x, at most Milvus's 32,768) for a query the
        graph was not built for; not exhaustive, as the graph has no exact mode."""
        return min(_MAX_EF, max(self.ef * (16 if exhaustive else 1), limit))

    def _exact(
        self,
        q: np.ndarray,
        allowed: np.ndarray,
        scores: np.ndarray,
        found: np.ndarray,
        rows: list[int],
    ) -> None:
        """Score the allowed products exactly (a filter so selective that the HNSW search
        under-filled: measured on Milvus Lite, 1 of 20 allowed among 20,000 came back)."""
        ids, vectors = self.vectors(allowed)
        k = found.shape[1]
        sc = q @ vectors.T
        for r, row in zip(rows, sc, strict=True):
            top = np.argsort(-row, kind="stable")[:k]
            scores[r, : len(top)], found[r, : len(top)] = row[top], ids[top]

    def vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored (ids, vectors) of those of ``ids`` in the collection."""
        got: list[dict[str, Any]] = []
        for start in range(0, len(ids), _BATCH):
            chunk = [int(i) for i in ids[start : start + _BATCH]]
            got += self.client.get(self.collection, ids=chunk, output_fields=["vector"])
        dim = self._manifest.dim
        return (
            np.array([int(g["id"]) for g in got], dtype=np.int64),
            np.array([g["vector"] for g in got], dtype=np.float32).reshape(-1, dim),
        )

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Upsert products (immediate for every process that searches the collection)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        rows = [{"id": int(i), "vector": v} for i, v in zip(ids, vectors, strict=True)]
        for start in range(0, len(rows), _BATCH):
            self.client.upsert(self.collection, rows[start : start + _BATCH])
        self._ids.update(int(i) for i in ids)
        self._refresh_manifest()

    def remove(self, ids: np.ndarray) -> int:
        """Delete products; returns how many this process knew in the collection."""
        present = [int(i) for i in ids if int(i) in self._ids]
        if present:
            self.client.delete(self.collection, ids=present)
            self._ids.difference_update(present)
            self._refresh_manifest()
        return len(present)

    def _refresh_manifest(self) -> None:
        ids = np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))
        self._manifest.count = len(ids)
        self._manifest.ids_sha256 = ids_checksum(ids)

    def save(self, folder: Path) -> None:
        """Nothing to do: Milvus persists every write itself."""

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 of the HNSW search against exact search."""
        return recall_of(self.search, vectors, ids)


class MilvusBackend:
    """Opens collections on one Milvus (Lite file or server), connecting on first use."""

    name = "milvus"

    def __init__(self, uri: str, token: str = "", prefix: str = "lookalike", ef: int = 128):
        self.uri = uri
        self.token = token
        self.prefix = prefix
        self.ef = ef
        self._client: MilvusClient | None = None

    @property
    def client(self) -> MilvusClient:
        """The connection; IndexBackendError naming the setting when Milvus cannot be reached."""
        if self._client is None:
            if "://" not in self.uri:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._client = MilvusClient(uri=self.uri, token=self.token, timeout=10)
            except (MilvusException, OSError) as exc:
                raise IndexBackendError(
                    f"cannot reach Milvus at LOOKALIKE_MILVUS_URI={self.uri}: {exc}"
                ) from None
        return self._client

    def collection(self, model_version: str) -> str:
        """The collection of ``model_version`` (Milvus names allow letters, digits and _)."""
        return f"{self.prefix}_{hashlib.sha256(model_version.encode()).hexdigest()[:16]}"

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int,
        kind: str | None = None,
    ) -> MilvusProductIndex:
        """Drop and re-create the model version's collection with every product."""
        if kind not in (None, "milvus"):
            raise ValueError(f"the milvus backend builds milvus collections, not {kind}")
        name = self.collection(model_version)
        client = self.client
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        params = client.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="IP", params=_HNSW)
        client.create_collection(name, schema=schema, index_params=params)
        manifest = IndexManifest(model_version, "milvus", dim, 0, ids_checksum(np.empty(0)))
        index = MilvusProductIndex(client, name, manifest, set(), self.ef)
        index.add(np.asarray(ids, dtype=np.int64), vectors)
        return index

    def load(self, folder: Path, model_version: str, dim: int) -> MilvusProductIndex:
        """Open the model version's collection and read its id set (what the database is
        checked against)."""
        name = self.collection(model_version)
        client = self.client
        if not client.has_collection(name):
            raise NoIndexError(f"no collection {name} in Milvus at {self.uri}")
        fields = client.describe_collection(name)["fields"]
        stored_dim = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vector")
        if stored_dim != dim:
            raise ValueError(f"collection {name} holds {stored_dim}-d vectors, not {dim}-d")
        client.load_collection(name)  # a reopened Milvus Lite file starts released
        ids = self._ids(name)
        array = np.fromiter(ids, dtype=np.int64, count=len(ids))
        manifest = IndexManifest(model_version, "milvus", dim, len(ids), ids_checksum(array))
        return MilvusProductIndex(client, name, manifest, ids, self.ef)

    def _ids(self, name: str) -> set[int]:
        iterator = self.client.query_iterator(name, batch_size=10_000, output_fields=["id"])
        ids: set[int] = set()
        while batch := iterator.next():
            ids.update(int(row["id"]) for row in batch)
        iterator.close()
        return ids

    def outgrown(self, index: ProductIndex) -> bool:
        """Never: Milvus maintains its own index as rows come and go."""
        return False
