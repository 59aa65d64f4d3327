"""Milvus backend: the vectors live in a Milvus collection, not in this process.

The same code talks to the embedded Milvus Lite (``LOOKALIKE_MILVUS_URI`` a local
``*.db`` path; the default, ``HOME/index/milvus.db``) and to a Milvus standalone or
cluster (``http://host:19530``, with ``LOOKALIKE_MILVUS_TOKEN``).

Collection ``<LOOKALIKE_MILVUS_COLLECTION>_<sha256(model version)[:16]>``, one per model
version, so vectors of two models never mix:

- ``id``: INT64, primary key, the product id (no auto id);
- ``vector``: FLOAT_VECTOR of the model's dimension, index HNSW (M=16,
  efConstruction=200), metric IP (inner product: the embeddings are unit vectors, so it is
  their cosine, the score FAISS gives);
- ``category``: VARCHAR, nullable, and ``price``: DOUBLE, nullable (a product without
  one holds null), each with an INVERTED scalar index: copies of the database's columns,
  so that search filters run inside Milvus (:func:`filter_expression`).

A build ends with a flush: its rows are sealed and indexed (HNSW, INVERTED), not left in
the growing buffer that every search scans. Writes are upserts and deletes, visible to
every process at once (strong consistency); a metadata-only edit (category or price, no
new image) is a partial upsert of those two fields. A collection without the two fields
(made by an older lookalike) fails the load, so the consistency rules rebuild it. When
the HNSW graph cannot find ``k`` products that pass a filter (a very selective one), the
passing products are scored exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from lookalike.index.base import (
    IndexBackendError,
    IndexManifest,
    NoIndexError,
    ProductIndex,
    recall_of,
    top_k,
)
from lookalike.index.vector_index import ids_checksum
from lookalike.store.catalog import ProductFields
from lookalike.store.fields import MAX_LENGTH, storable

if TYPE_CHECKING:
    from lookalike.search.searcher import Filters

_BATCH = 1_000  # rows per insert/upsert/get call: well under gRPC's 64 MB message limit
_MAX_EF = 32_768
_MAX_TOPK = 16_384  # Milvus's limit on k
_HNSW = {"M": 16, "efConstruction": 200}
# Milvus counts a VARCHAR's length in UTF-8 bytes, the database in characters (4 bytes at most).
_CATEGORY_BYTES = 4 * MAX_LENGTH["category"]
# The collection's fields and types: a collection with others is from another version.
_SCHEMA = {
    "id": DataType.INT64,
    "vector": DataType.FLOAT_VECTOR,
    "category": DataType.VARCHAR,
    "price": DataType.DOUBLE,
}
_FIELDS = ["category", "price"]
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_MAX_DOUBLE = float(np.finfo(np.float64).max)


def filter_expression(filters: Filters | None, exclude: Iterable[int] = ()) -> str | None:
    """The Milvus boolean expression of ``filters`` and the ``exclude`` ids, with the
    database's meaning (``CatalogStore.filter_ids``): ``category == "..."`` (exact, case
    and all), ``price >= lo``, ``price <= hi`` (null, no price, passes neither), ``id not
    in [...]``, joined by ``and``. "" when nothing is filtered; None when no product can
    pass (a category no product can hold, a NaN bound)."""
    clauses = []
    if filters is not None and filters.category is not None:
        if not storable(filters.category):
            return None
        clauses.append(f'category == "{filters.category.translate(_ESCAPES)}"')
    if filters is not None:
        for op, bound in ((">=", filters.min_price), ("<=", filters.max_price)):
            if bound is None:
                continue
            if math.isnan(bound):
                return None
            # The grammar has no infinity; clamped, a bound keeps its meaning for any
            # finite price.
            clauses.append(f"price {op} {float(min(max(bound, -_MAX_DOUBLE), _MAX_DOUBLE))!r}")
    excluded = sorted({int(i) for i in exclude})
    if excluded:
        clauses.append(f"id not in [{','.join(map(str, excluded))}]")
    return " and ".join(clauses)


class MilvusProductIndex:
    """One model version's collection. Holds only the id set (for ``len``, ``in`` and the
    consistency check); the vectors and the filter fields stay in Milvus. A
    :class:`~lookalike.index.base.FilteringIndex`."""

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
        if allowed is None:
            return self._search(queries, k, "", exhaustive)
        expression = f"id in [{','.join(map(str, allowed.tolist()))}]" if len(allowed) else None
        return self._search(queries, k, expression, exhaustive)

    def search_filtered(
        self,
        queries: np.ndarray,
        k: int,
        filters: Filters | None,
        exclude: np.ndarray,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) among the products that pass ``filters`` and are not
        excluded: one boolean expression (:func:`filter_expression`), no id list."""
        return self._search(queries, k, filter_expression(filters, exclude.tolist()), exhaustive)

    def _search(
        self, queries: np.ndarray, k: int, expression: str | None, exhaustive: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search with a filter ``expression`` ("": none; None: nothing passes). When the
        graph finds fewer than ``min(k, passing)`` (a very selective filter: measured on
        Milvus Lite, 1 of 20 allowed among 20,000 came back), the passing products are
        scored exactly, so a filter never under-fills ``k``."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
        k = max(1, k)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        found = np.full((len(q), k), -1, dtype=np.int64)
        if expression is None:
            return scores, found
        limit = min(k, _MAX_TOPK)
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
        if expression:
            filled = (found >= 0).sum(axis=1)
            if (filled < k).any():  # counted only then: a broad filter fills k at once
                want = min(k, self._count(expression))
                short = [r for r in range(len(q)) if filled[r] < want]
                if short:
                    exact_scores, exact_ids = top_k(q[short], k, self._rows(expression))
                    scores[short], found[short] = exact_scores, exact_ids
        return scores, found

    def _ef(self, limit: int, exhaustive: bool) -> int:
        """HNSW's search breadth: wider (16x, at most Milvus's 32,768) for a query the
        graph was not built for; not exhaustive, as the graph has no exact mode."""
        return min(_MAX_EF, max(self.ef * (16 if exhaustive else 1), limit))

    def _count(self, expression: str) -> int:
        """How many products pass ``expression``."""
        rows = self.client.query(self.collection, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _rows(self, expression: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(vectors, ids) of the products that pass ``expression``, a batch at a time."""
        for batch in self._iterate(expression, ["vector"]):
            yield (
                np.array([row["vector"] for row in batch], dtype=np.float32).reshape(
                    -1, self._manifest.dim
                ),
                np.array([int(row["id"]) for row in batch], dtype=np.int64),
            )

    def _iterate(self, expression: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        iterator = self.client.query_iterator(
            self.collection, batch_size=_BATCH, filter=expression, output_fields=["id", *fields]
        )
        try:
            while batch := iterator.next():
                yield batch
        finally:
            iterator.close()

    def add(
        self, ids: np.ndarray, vectors: np.ndarray, fields: ProductFields | None = None
    ) -> None:
        """Upsert products (immediate for every process that searches the collection),
        with their ``fields``; without them, a partial upsert of the vectors (a new
        product's fields are null, a replaced one keeps its own)."""
        # A batch at a time, converted as it goes: a build's float32 copy of every vector
        # (6 GB at 1M x 1,536-d) beside what Milvus Lite keeps would not fit in 24 GB.
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            x = np.asarray(vectors[start : start + _BATCH], dtype=np.float32)
            if fields is None:
                rows = [{"id": int(i), "vector": v} for i, v in zip(part, x, strict=True)]
            else:
                rows = [
                    {"id": int(i), "vector": v, "category": category, "price": price}
                    for i, v, (category, price) in zip(part, x, fields.at(part), strict=True)
                ]
            self.client.upsert(self.collection, rows, partial_update=fields is None)
        self._ids.update(int(i) for i in ids)
        self._refresh_manifest()

    def update_fields(self, fields: ProductFields) -> None:
        """Partial upserts of (category, price): the vectors stay as they are, and ids not
        in the collection are skipped (a partial upsert would insert a row without one)."""
        rows = [
            {"id": int(i), "category": category, "price": price}
            for i, category, price in zip(fields.ids, fields.categories, fields.prices, strict=True)
            if int(i) in self._ids
        ]
        for start in range(0, len(rows), _BATCH):
            self.client.upsert(self.collection, rows[start : start + _BATCH], partial_update=True)

    def stored_fields(self) -> ProductFields:
        """Every product's category and price as the collection holds them, by id."""
        rows = sorted(
            (int(row["id"]), row.get("category"), row.get("price"))
            for batch in self._iterate("", _FIELDS)
            for row in batch
        )
        return ProductFields(
            np.array([r[0] for r in rows], dtype=np.int64),
            [r[1] for r in rows],
            [None if r[2] is None else float(r[2]) for r in rows],
        )

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
        """Seal the rows written since the last save (flush): Milvus persists every write
        itself, but keeps new rows in a growing buffer that no index covers (Milvus Lite
        scans it in Python at every search: 5 s a search at 20,000 rows). The engine saves
        after an ingest and when single-product writes are flushed, not after each one."""
        self.client.flush(self.collection)

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 of the HNSW search against exact search."""
        return recall_of(self.search, vectors, ids)


class MilvusBackend:
    """Opens collections on one Milvus (Lite file or server), connecting on first use."""

    name = "milvus"
    keeps_fields = True

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
        fields: ProductFields | None = None,
    ) -> MilvusProductIndex:
        """Drop and re-create the model version's collection with every product and its
        ``fields`` (null without them), and flush it."""
        if kind not in (None, "milvus"):
            raise ValueError(f"the milvus backend builds milvus collections, not {kind}")
        name = self.collection(model_version)
        client = self.client
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("category", DataType.VARCHAR, max_length=_CATEGORY_BYTES, nullable=True)
        schema.add_field("price", DataType.DOUBLE, nullable=True)
        params = client.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="IP", params=_HNSW)
        for field in _FIELDS:  # filters select rows by index, not by a scan of every row
            params.add_index(field, index_type="INVERTED")
        client.create_collection(name, schema=schema, index_params=params)
        manifest = IndexManifest(model_version, "milvus", dim, 0, ids_checksum(np.empty(0)))
        index = MilvusProductIndex(client, name, manifest, set(), self.ef)
        ids = np.asarray(ids, dtype=np.int64)
        index.add(ids, vectors, fields or ProductFields(np.empty(0, np.int64), [], []))
        # Seal what was written: unflushed rows stay in the growing buffer, which no index
        # covers (Milvus Lite scans it in Python at every search: 20,000 x 1,536-d, 5.0 s
        # a search before this flush, 12 ms after, once its HNSW graph is built).
        client.flush(name)
        return index

    def load(self, folder: Path, model_version: str, dim: int) -> MilvusProductIndex:
        """Open the model version's collection and read its id set (what the database is
        checked against)."""
        name = self.collection(model_version)
        client = self.client
        if not client.has_collection(name):
            raise NoIndexError(f"no collection {name} in Milvus at {self.uri}")
        fields = client.describe_collection(name)["fields"]
        types = {f["name"]: f["type"] for f in fields}
        if types != _SCHEMA:
            raise ValueError(
                f"collection {name} has the fields {', '.join(sorted(types))}, not "
                f"{', '.join(sorted(_SCHEMA))} (made by an older version)"
            )
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
