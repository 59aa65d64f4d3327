"""CatalogStore: every read and write of products and embeddings goes through here."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from lookalike.cache import BoundedCache
from lookalike.store.fields import storable
from lookalike.store.models import (
    Embedding,
    ImportJob,
    LocalFeatureSet,
    Product,
    State,
    utcnow,
)

MIGRATIONS = Path(__file__).parent / "migrations"
_GENERATION = "generation"
_ACTIVE_MODEL = "active_model_version"


@dataclass
class ProductData:
    """A product as the rest of the system sees it (no ORM session attached)."""

    sku: str
    image_path: str
    image_sha256: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    currency: str | None = None
    url: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def same_metadata(self, other: ProductData) -> bool:
        """True when everything but the database id is equal."""
        return _fields(self) == _fields(other)


# The columns a ProductData and a products row share one to one (the attributes are a JSON
# column, the id the database's), derived so the two cannot drift apart.
_FIELDS = [f.name for f in dataclasses.fields(ProductData) if f.name not in ("attributes", "id")]


def _fields(p: ProductData) -> tuple[Any, ...]:
    return (*(getattr(p, f) for f in _FIELDS), p.attributes)


@dataclass(frozen=True)
class ProductFields:
    """The fields search filters test (``search.searcher.Filters``), column by column:
    what an index that applies the filters itself keeps beside each vector (Milvus).
    ``ids`` ascending; ``None`` where a product has no category or no price."""

    ids: np.ndarray
    categories: list[str | None]
    prices: list[float | None]

    def at(self, ids: np.ndarray) -> list[tuple[str | None, float | None]]:
        """(category, price) of each of ``ids``; (None, None) for an id not here."""
        if len(self.ids) == 0:
            return [(None, None)] * len(ids)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return [
            (self.categories[p], self.prices[p]) if self.ids[p] == i else (None, None)
            for p, i in zip(pos.tolist(), np.asarray(ids).tolist(), strict=True)
        ]

    def differing(self, other: ProductFields) -> np.ndarray:
        """Ids (ascending) held by both whose category or price differs between the two."""
        common, mine, theirs = np.intersect1d(self.ids, other.ids, return_indices=True)
        differ = [
            self.categories[a] != other.categories[b] or self.prices[a] != other.prices[b]
            for a, b in zip(mine.tolist(), theirs.tolist(), strict=True)
        ]
        return common[np.array(differ, dtype=bool)] if differ else common


@dataclass(frozen=True)
class StoredEmbedding:
    product_id: int
    image_sha256: str


@dataclass(frozen=True)
class FeatureBlob:
    """A product image's local features, serialised (lookalike.matching.features)."""

    version: str
    count: int
    data: bytes


def _to_data(row: Product) -> ProductData:
    return ProductData(
        id=row.id,
        attributes=dict(row.attributes or {}),
        **{f: getattr(row, f) for f in _FIELDS},
    )


class CatalogStore:
    """Products and embeddings in SQLite or PostgreSQL, migrated to the latest schema on open.

    Lookups by text no product can hold (a NUL, see store/fields.py) find nothing without
    asking the database: PostgreSQL would refuse the query, SQLite find no row."""

    def __init__(
        self, url: str, row_cache_size: int = 20_000, vector_cache_size: int = 4_096
    ) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        # Pre-ping survives server restarts; pointless (and a query per checkout) for SQLite.
        self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._rows: BoundedCache[int, ProductData] = BoundedCache(row_cache_size)
        # A search reads the same products' vectors to rank, group and explain its results
        # (three reads of ~0.8 ms each on the dev catalog), and popular products recur
        # across searches: 4,096 vectors of 1,536 floats hold 25 MB.
        self._vectors: BoundedCache[tuple[str, int], np.ndarray] = BoundedCache(vector_cache_size)
        self._own_changes = 0
        self._own_lock = threading.Lock()
        self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ---- reads -------------------------------------------------------------------------

    def get(self, sku: str) -> ProductData | None:
        if not storable(sku):
            return None
        with self._sessions() as s:
            row = s.scalar(select(Product).where(Product.sku == sku))
            return _to_data(row) if row else None

    def get_many(self, skus: Sequence[str]) -> dict[str, ProductData]:
        out: dict[str, ProductData] = {}
        with self._sessions() as s:
            for chunk in _chunks(_storable(skus), 500):
                for row in s.scalars(select(Product).where(Product.sku.in_(chunk))):
                    out[row.sku] = _to_data(row)
        return out

    def by_ids(self, ids: Sequence[int]) -> dict[int, ProductData]:
        """Products by id: the search hot path, served from a cache of recent rows that
        every write drops (:meth:`forget_cached`). The returned objects are shared: read
        them, do not modify them."""
        return self._rows.read_through([int(i) for i in ids], self._read_rows)

    def _read_rows(self, ids: list[int]) -> dict[int, ProductData]:
        table = Product.__table__
        fetched: dict[int, ProductData] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids, 500):
                for row in conn.execute(select(table).where(table.c.id.in_(chunk))).mappings():
                    fetched[row["id"]] = ProductData(
                        id=row["id"],
                        attributes=dict(row["metadata"] or {}),
                        **{f: row[f] for f in _FIELDS},
                    )
        return fetched

    def forget_cached(self) -> None:
        """Drop cached product rows and vectors: another process changed the catalog
        (this store's own writes drop them by themselves)."""
        self._rows.clear()
        self._vectors.clear()

    def embedded(self, skus: Sequence[str], model_version: str) -> dict[str, StoredEmbedding]:
        """For each SKU that has an embedding under ``model_version``: what it was made from."""
        out: dict[str, StoredEmbedding] = {}
        with self._sessions() as s:
            for chunk in _chunks(_storable(skus), 500):
                q = (
                    select(Product.sku, Embedding.product_id, Embedding.image_sha256)
                    .join(Embedding)
                    .where(Product.sku.in_(chunk), Embedding.model_version == model_version)
                )
                for sku, pid, sha in s.execute(q):
                    out[sku] = StoredEmbedding(pid, sha)
        return out

    def local_feature_skus(self, skus: Sequence[str], feature_version: str) -> set[str]:
        """The SKUs among ``skus`` whose current image has local features of this version."""
        out: set[str] = set()
        with self._sessions() as s:
            for chunk in _chunks(_storable(skus), 500):
                q = (
                    select(Product.sku)
                    .join(LocalFeatureSet, LocalFeatureSet.product_id == Product.id)
                    .where(
                        Product.sku.in_(chunk),
                        LocalFeatureSet.feature_version == feature_version,
                        LocalFeatureSet.image_sha256 == Product.image_sha256,
                    )
                )
                out.update(s.scalars(q))
        return out

    def local_features(self, ids: Sequence[int], feature_version: str) -> dict[int, bytes]:
        """Stored local features of these products (those that have them)."""
        table = LocalFeatureSet.__table__
        out: dict[int, bytes] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks([int(i) for i in ids], 500):
                q = select(table.c.product_id, table.c.data).where(
                    table.c.product_id.in_(chunk), table.c.feature_version == feature_version
                )
                out.update((int(pid), bytes(data)) for pid, data in conn.execute(q))
        return out

    def local_feature_ids(self, feature_version: str) -> np.ndarray:
        """Sorted ids of the products with local features of this version."""
        return self._sorted_ids(
            LocalFeatureSet.product_id, LocalFeatureSet.feature_version == feature_version
        )

    def iter_local_features(
        self, feature_version: str, chunk: int = 1024
    ) -> Iterator[tuple[int, bytes]]:
        """Every product's local features of this version, by id."""
        last = -1
        with self._sessions() as s:
            while True:
                rows = s.execute(
                    select(LocalFeatureSet.product_id, LocalFeatureSet.data)
                    .where(
                        LocalFeatureSet.feature_version == feature_version,
                        LocalFeatureSet.product_id > last,
                    )
                    .order_by(LocalFeatureSet.product_id)
                    .limit(chunk)
                ).all()
                if not rows:
                    return
                for pid, data in rows:
                    yield int(pid), bytes(data)
                last = int(rows[-1][0])

    def filter_ids(
        self,
        category: str | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        among: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Ids of the products that pass the filters (of ``among`` when given)."""
        if category is not None and not storable(category):
            return np.zeros(0, dtype=np.int64)
        q = select(Product.id)
        if among is not None:
            q = q.where(Product.id.in_([int(i) for i in among]))
        if category is not None:
            q = q.where(Product.category == category)
        if min_price is not None:
            q = q.where(Product.price >= min_price)
        if max_price is not None:
            q = q.where(Product.price <= max_price)
        with self._sessions() as s:
            return np.fromiter(s.scalars(q), dtype=np.int64)

    def product_fields(self, model_version: str, ids: Sequence[int] | None = None) -> ProductFields:
        """Category and price of the products embedded under ``model_version`` (of those
        of ``ids`` when given), by id."""
        q = (
            select(Product.id, Product.category, Product.price)
            .join(Embedding)
            .where(Embedding.model_version == model_version)
            .order_by(Product.id)
        )
        with self._sessions() as s:
            if ids is None:
                rows = list(s.execute(q))
            else:
                rows = [
                    r
                    for chunk in _chunks(sorted({int(i) for i in ids}), 500)
                    for r in s.execute(q.where(Product.id.in_(chunk)))
                ]
        return ProductFields(
            np.array([r[0] for r in rows], dtype=np.int64),
            [r[1] for r in rows],
            [None if r[2] is None else float(r[2]) for r in rows],
        )

    def embedding_ids(self, model_version: str) -> np.ndarray:
        """Sorted ids of the products embedded under ``model_version``."""
        return self._sorted_ids(Embedding.product_id, Embedding.model_version == model_version)

    def _sorted_ids(self, column: Any, condition: Any) -> np.ndarray:
        with self._sessions() as s:
            q = select(column).where(condition).order_by(column)
            return np.fromiter(s.scalars(q), dtype=np.int64)

    def vector(self, product_id: int, model_version: str) -> np.ndarray | None:
        with self._sessions() as s:
            blob = s.scalar(
                select(Embedding.vector).where(
                    Embedding.product_id == product_id, Embedding.model_version == model_version
                )
            )
            return None if blob is None else np.frombuffer(blob, dtype="<f4").copy()

    def vectors(self, product_ids: Sequence[int], model_version: str) -> dict[int, np.ndarray]:
        """The ``model_version`` vectors of several products, by id (missing ones left
        out): the search hot path, served from a cache of recent vectors that every write
        drops, as :meth:`by_ids` is. The arrays are shared and read-only."""
        if not product_ids:
            return {}

        def read(keys: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
            # A connection, not an ORM session: 0.8 instead of 1.3 ms for 64 vectors.
            with self.engine.connect() as c:
                rows = c.execute(
                    select(Embedding.product_id, Embedding.vector).where(
                        Embedding.model_version == model_version,
                        Embedding.product_id.in_([pid for _, pid in keys]),
                    )
                ).all()
            fetched = {}
            for pid, blob in rows:
                vector = np.frombuffer(blob, dtype="<f4").copy()
                vector.flags.writeable = False
                fetched[(model_version, int(pid))] = vector
            return fetched

        found = self._vectors.read_through([(model_version, int(i)) for i in product_ids], read)
        return {pid: vector for (_, pid), vector in found.items()}

    def iter_vectors(
        self, model_version: str, chunk: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All embeddings of ``model_version`` as (ids, N x d matrix) chunks, by id."""
        last = -1
        with self._sessions() as s:
            while True:
                rows = s.execute(
                    select(Embedding.product_id, Embedding.vector)
                    .where(Embedding.model_version == model_version, Embedding.product_id > last)
                    .order_by(Embedding.product_id)
                    .limit(chunk)
                ).all()
                if not rows:
                    return
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                vecs = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
                last = int(ids[-1])
                yield ids, vecs

    def list_products(
        self,
        category: str | None = None,
        title_contains: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[ProductData], int]:
        """A page of products (by id) and the total that match the filters."""
        if not all(storable(t) for t in (category, title_contains) if t is not None):
            return [], 0
        q = select(Product)
        if category is not None:
            q = q.where(Product.category == category)
        if title_contains:
            escaped = title_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(Product.title.ilike(f"%{escaped}%", escape="\\"))
        with self._sessions() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(Product.id).offset(offset).limit(limit))
            return [_to_data(r) for r in rows], int(total)

    def has_category(self, category: str) -> bool:
        """True when some product has ``category``."""
        if not storable(category):
            return False
        with self._sessions() as s:
            q = select(Product.id).where(Product.category == category).limit(1)
            return s.scalars(q).first() is not None

    def categories(self) -> list[tuple[str, int]]:
        """Categories with their product counts, largest first."""
        with self._sessions() as s:
            rows = s.execute(
                select(Product.category, func.count())
                .where(Product.category.is_not(None))
                .group_by(Product.category)
                .order_by(func.count().desc(), Product.category)
            ).all()
        return [(str(c), int(n)) for c, n in rows]

    # ---- import jobs -------------------------------------------------------------------

    def create_job(self, job_id: str, catalog_path: str) -> None:
        with self._sessions.begin() as s:
            s.add(ImportJob(id=job_id, status="queued", catalog_path=catalog_path, errors=[]))

    def update_job(self, job_id: str, **fields: Any) -> None:
        with self._sessions.begin() as s:
            job = s.get(ImportJob, job_id)
            if job is not None:
                for key, value in fields.items():
                    setattr(job, key, value)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        if not storable(job_id):
            return None
        with self._sessions() as s:
            job = s.get(ImportJob, job_id)
            return None if job is None else _job_dict(job)

    def unfinished_jobs(self) -> list[dict[str, Any]]:
        with self._sessions() as s:
            q = select(ImportJob).where(ImportJob.status.in_(["queued", "running"]))
            return [_job_dict(j) for j in s.scalars(q.order_by(ImportJob.created_at))]

    def image_hashes(self) -> set[str]:
        """The SHA-256 of every image some product uses."""
        with self.engine.connect() as conn:
            return set(conn.scalars(select(Product.image_sha256).distinct()))

    def shared_images(self) -> list[np.ndarray]:
        """The product ids (sorted) of each image that more than one product uses: the
        byte-identical copies (one GROUP BY on the indexed sha256 column, then their ids)."""
        with self.engine.connect() as conn:
            shared = select(Product.image_sha256).group_by(Product.image_sha256)
            shared = shared.having(func.count() > 1)
            rows = conn.execute(
                select(Product.image_sha256, Product.id)
                .where(Product.image_sha256.in_(shared))
                .order_by(Product.image_sha256, Product.id)
            ).all()
        groups: dict[str, list[int]] = {}
        for sha, pid in rows:
            groups.setdefault(sha, []).append(pid)
        return [np.array(ids, dtype=np.int64) for ids in groups.values()]

    def all_products(self) -> list[ProductData]:
        with self._sessions() as s:
            return [_to_data(r) for r in s.scalars(select(Product).order_by(Product.id))]

    def count(self) -> int:
        """How many products there are."""
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(Product)) or 0

    def stats(self) -> dict[str, Any]:
        """Counts of products, categories and embeddings per model version."""
        products = self.count()
        with self._sessions() as s:
            cats = s.execute(
                select(Product.category, func.count())
                .group_by(Product.category)
                .order_by(func.count().desc())
            ).all()
            versions = s.execute(
                select(Embedding.model_version, func.count()).group_by(Embedding.model_version)
            ).all()
            local = s.execute(
                select(
                    LocalFeatureSet.feature_version,
                    func.count(),
                    func.sum(LocalFeatureSet.count),
                    func.sum(func.length(LocalFeatureSet.data)),
                ).group_by(LocalFeatureSet.feature_version)
            ).all()
        return {
            "products": products,
            "categories": {c or "(none)": n for c, n in cats},
            "embeddings": {v: n for v, n in versions},
            "local_features": {
                v: {"products": n, "keypoints": int(k or 0), "bytes": int(b or 0)}
                for v, n, k, b in local
            },
            "active_model_version": self.active_model_version(),
            "generation": self.generation(),
        }

    # ---- state -------------------------------------------------------------------------

    def generation(self) -> int:
        """Change counter: bumped by every write, so readers can tell their view is stale."""
        return int(self._state(_GENERATION) or 0)

    def active_model_version(self) -> str | None:
        return self._state(_ACTIVE_MODEL)

    @property
    def own_changes(self) -> int:
        """How many times this store's own writes moved the change counter
        (:meth:`generation`): the rest of its moves are other processes' writes."""
        return self._own_changes

    def _changed(self) -> None:
        with self._own_lock:
            self._own_changes += 1

    def set_active_model_version(self, version: str) -> None:
        with self._sessions.begin() as s:
            _set_state(s, _ACTIVE_MODEL, version)
            _bump(s)
        self._changed()

    def _state(self, key: str) -> str | None:
        with self._sessions() as s:
            return s.scalar(select(State.value).where(State.key == key))

    # ---- writes ------------------------------------------------------------------------

    def upsert(
        self,
        items: Sequence[tuple[ProductData, np.ndarray | None]],
        model_version: str,
        features: Sequence[FeatureBlob | None] | None = None,
    ) -> list[int]:
        """Insert or update products, each with its new vector (``None`` keeps the stored
        vectors) and optionally its local features, in one transaction. A new image drops
        vectors of other model versions and local features, which no longer describe it.
        Returns the product ids in order."""
        with self._sessions.begin() as s:
            existing = {
                r.sku: r
                for chunk in _chunks([p.sku for p, _ in items], 500)
                for r in s.scalars(select(Product).where(Product.sku.in_(chunk)))
            }
            stale: list[int] = []  # products whose image changed
            rows: list[Product] = []
            for data, _ in items:
                row = existing.get(data.sku)
                if row is None:
                    row = existing[data.sku] = Product(sku=data.sku)
                    s.add(row)
                elif row.image_sha256 != data.image_sha256:
                    stale.append(row.id)
                for f in _FIELDS[1:]:
                    setattr(row, f, getattr(data, f))
                row.attributes = dict(data.attributes)
                rows.append(row)
            s.flush()  # assigns ids to new products
            with_vector = [
                (row.id, data, vec)
                for row, (data, vec) in zip(rows, items, strict=True)
                if vec is not None
            ]
            for chunk in _chunks(stale, 500):
                s.execute(delete(Embedding).where(Embedding.product_id.in_(chunk)))
                s.execute(delete(LocalFeatureSet).where(LocalFeatureSet.product_id.in_(chunk)))
            _write_features(s, rows, features or [None] * len(rows))
            for chunk in _chunks([pid for pid, _, _ in with_vector], 500):
                s.execute(
                    delete(Embedding).where(
                        Embedding.product_id.in_(chunk), Embedding.model_version == model_version
                    )
                )
            if with_vector:
                now = utcnow()
                s.execute(
                    insert(Embedding),
                    [
                        {
                            "product_id": pid,
                            "model_version": model_version,
                            "dim": int(vec.shape[0]),
                            "vector": np.ascontiguousarray(vec, dtype="<f4").tobytes(),
                            "image_sha256": data.image_sha256,
                            "created_at": now,
                        }
                        for pid, data, vec in with_vector
                    ],
                )
            _bump(s)
            ids = [row.id for row in rows]
        self._changed()
        self.forget_cached()
        return ids

    def delete(self, skus: Sequence[str]) -> dict[str, int]:
        """Delete products (and their embeddings). Returns sku -> id of those that existed."""
        with self._sessions.begin() as s:
            rows = s.execute(
                select(Product.sku, Product.id).where(Product.sku.in_(_storable(skus)))
            )
            found = {str(sku): int(pid) for sku, pid in rows}
            if found:
                ids = list(found.values())
                s.execute(delete(Embedding).where(Embedding.product_id.in_(ids)))
                s.execute(delete(LocalFeatureSet).where(LocalFeatureSet.product_id.in_(ids)))
                s.execute(delete(Product).where(Product.id.in_(ids)))
                _bump(s)
        if found:
            self._changed()
        self.forget_cached()
        return found

    def delete_embeddings(self, model_version: str) -> int:
        with self._sessions.begin() as s:
            n = s.execute(delete(Embedding).where(Embedding.model_version == model_version))
            _bump(s)
        self._changed()
        self._vectors.clear()
        return int(getattr(n, "rowcount", 0) or 0)


def _job_dict(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "catalog_path": job.catalog_path,
        "total": job.total or 0,
        "processed": job.processed or 0,
        "added": job.added or 0,
        "updated": job.updated or 0,
        "unchanged": job.unchanged or 0,
        "errors": list(job.errors or []),
        "message": job.message,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "updated_at": job.updated_at.isoformat() if job.updated_at else None,
    }


def _write_features(s: Session, rows: list[Product], blobs: Sequence[FeatureBlob | None]) -> None:
    """Replace the local features of the products that come with new ones."""
    pairs = [(row, b) for row, b in zip(rows, blobs, strict=True) if b is not None]
    for chunk in _chunks(pairs, 500):
        for version in {b.version for _, b in chunk}:
            s.execute(
                delete(LocalFeatureSet).where(
                    LocalFeatureSet.product_id.in_(
                        [r.id for r, b in chunk if b.version == version]
                    ),
                    LocalFeatureSet.feature_version == version,
                )
            )
    if pairs:
        s.execute(
            insert(LocalFeatureSet),
            [
                {
                    "product_id": row.id,
                    "feature_version": b.version,
                    "count": b.count,
                    "data": b.data,
                    "image_sha256": row.image_sha256,
                }
                for row, b in pairs
            ],
        )


def _bump(s: Session) -> None:
    row = s.get(State, _GENERATION)
    if row is None:
        s.add(State(key=_GENERATION, value="1"))
    else:
        row.value = str(int(row.value) + 1)


def _set_state(s: Session, key: str, value: str) -> None:
    row = s.get(State, key)
    if row is None:
        s.add(State(key=key, value=value))
    else:
        row.value = value


def _storable(skus: Sequence[str]) -> list[str]:
    """The SKUs a product could have (the others match nothing)."""
    return [sku for sku in skus if storable(sku)]


def _chunks(seq: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
