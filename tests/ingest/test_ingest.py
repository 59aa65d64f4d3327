"""Ingest on a 200-image slice of the dev set: idempotence, failures, interruption."""

from __future__ import annotations

import csv
import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.pipeline import ingest_records
from lookalike.ingest.readers import read_catalog
from lookalike.store.catalog import ProductData

pytestmark = pytest.mark.dataset


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Engine]:
    if request.param == "postgresql":
        settings = settings.model_copy(
            update={"database_url": request.getfixturevalue("database_url_pg")}
        )
    e = Engine(settings)
    yield e
    e.close()


@pytest.fixture
def database_url_pg(postgres_url: str) -> str:
    return postgres_url


def test_ingest_is_idempotent_and_tracks_changes(engine: Engine, slice_catalog: Path) -> None:
    first = engine.ingest(read_catalog(slice_catalog).records)
    assert (first.added, first.updated, first.failed) == (200, 0, [])
    assert len(engine.index) == 200
    again = engine.ingest(read_catalog(slice_catalog).records)
    assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 200, 0)

    rows = _rows(slice_catalog)
    rows[0]["title"] = "Renamed product"  # metadata only: no re-embedding
    rows[1]["image"] = rows[2]["image"]  # new image: re-embedded
    _write(slice_catalog, rows)
    changed = engine.ingest(read_catalog(slice_catalog).records)
    assert (changed.updated, changed.unchanged, changed.embedded) == (2, 198, 1)
    renamed = engine.store.get(rows[0]["sku"])
    assert renamed is not None and renamed.title == "Renamed product"
    assert engine.check_index()["consistent"]
    engine.delete([r["sku"] for r in rows])  # leave the shared PostgreSQL database empty


def test_bad_files_fail_alone_with_reasons(
    settings: Settings, slice_catalog: Path, tmp_path: Path
) -> None:
    rows = _rows(slice_catalog)[:20]
    (tmp_path / "text.jpg").write_text("this is not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = Path(rows[0]["image"]).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 3])
    for sku, name in (
        ("bad-text", "text.jpg"),
        ("bad-empty", "empty.jpg"),
        ("bad-trunc", "truncated.jpg"),
        ("bad-missing", "missing.jpg"),
    ):
        rows.append({**rows[0], "sku": sku, "image": str(tmp_path / name)})
    _write(slice_catalog, rows)
    engine = Engine(settings)
    summary = engine.ingest(read_catalog(slice_catalog).records)
    assert summary.added == 20
    reasons = {f.sku: f.reason for f in summary.failed}
    assert set(reasons) == {"bad-text", "bad-empty", "bad-trunc", "bad-missing"}
    assert "not a recognised image" in reasons["bad-text"]
    assert "empty" in reasons["bad-empty"]
    assert "not found" in reasons["bad-missing"]
    assert engine.store.get("bad-text") is None
    engine.close()


def test_interrupted_ingest_keeps_whole_products_and_heals_the_index(
    settings: Settings, slice_catalog: Path
) -> None:
    records = read_catalog(slice_catalog).records
    settings = settings.model_copy(update={"batch_size": 8})
    engine = Engine(settings)
    seen = 0

    def killer(n: int) -> None:
        nonlocal seen
        seen += n
        if seen >= 60:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.ingest(records, killer)
    stored = engine.store.stats()
    # Every product in the database has its vector: nothing half-written.
    assert stored["products"] == stored["embeddings"][engine.model_config.version] > 0
    engine.close()

    fresh = Engine(settings)  # a new process: the index must agree with the database
    assert len(fresh.index) == stored["products"]
    assert fresh.check_index()["consistent"]
    resumed = fresh.ingest(records)
    assert resumed.added == 200 - stored["products"] and len(fresh.index) == 200
    fresh.close()


def test_changing_model_settings_never_mixes_versions(
    settings: Settings, slice_catalog: Path
) -> None:
    records = read_catalog(slice_catalog).records[:12]
    engine = Engine(settings)
    engine.ingest(records[:10])
    engine.close()
    other = Engine(settings.model_copy(update={"preprocessing": "crop"}))
    assert "reembed" in (other.settings_conflict() or "")
    other.ingest(records)  # the two new products get the catalog's model, not the settings'
    assert list(other.store.stats()["embeddings"]) == [other.model_config.version]
    # Searching works too, with the catalog's own model.
    assert other.model_config.preprocessing == "trim"
    assert other.similar(records[0].sku, k=3)
    summary = other.reembed()
    assert summary.embedded == 12
    reembedded = other.model_config  # a fresh read (mypy still holds the "trim" above)
    assert other.store.active_model_version() == reembedded.version
    assert reembedded.preprocessing == "crop"
    assert list(other.store.stats()["embeddings"]) == [reembedded.version]
    other.close()


def test_a_second_process_sees_writes_through_the_change_counter(
    settings: Settings, slice_catalog: Path
) -> None:
    records = read_catalog(slice_catalog).records
    writer, reader = Engine(settings), Engine(settings)  # e.g. two server workers
    writer.ingest(records[:20])
    assert reader.refresh_if_stale() and len(reader.index) == 20
    assert not reader.refresh_if_stale()  # nothing new
    writer.delete([records[0].sku])
    writer.ingest(records[20:25])
    assert reader.refresh_if_stale()
    assert len(reader.index) == 24 and records[0].sku not in [
        h.product.sku for h in reader.search_files([records[0].image], k=24)[0].hits
    ]
    # The API looks at most every change_check_ms: a check just made is not repeated.
    writer.delete([records[1].sku])
    assert reader.refresh_if_stale(max_age_s=0)
    writer.delete([records[2].sku])
    assert not reader.refresh_if_stale(max_age_s=60)
    assert reader.refresh_if_stale(max_age_s=0)
    writer.close()
    reader.close()


def test_another_process_s_write_during_one_s_own_is_not_missed(
    settings: Settings, slice_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process commits between this one's commit and its index update: the change
    # counter then holds both writes, and adopting it as this process's own would leave
    # the other write unseen until the next change.
    records = read_catalog(slice_catalog).records
    engine, other = Engine(settings), Engine(settings)  # e.g. two server workers
    engine.ingest(records[:10])
    delete = engine.store.delete

    def delete_then_other_writes(skus: list[str]) -> dict[str, int]:
        deleted = delete(skus)
        other.ingest(records[10:12])
        return deleted

    monkeypatch.setattr(engine.store, "delete", delete_then_other_writes)
    engine.delete([records[0].sku])
    assert engine.refresh_if_stale()
    assert len(engine.index) == 11  # 10 - 1 + the other process's 2
    assert not engine.refresh_if_stale()
    engine.close()
    other.close()


@pytest.mark.parametrize("write", ["upsert", "ingest"])
def test_a_first_write_s_model_version_does_not_look_like_another_process_s_write(
    settings: Settings, slice_catalog: Path, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    # The catalog's first write also records its model version (a counted write). A
    # staleness check (another request's) in the middle of that write must wait for it,
    # not take the version's write for another process's and reload the index (an import
    # beside searches then added its batches to an index no search used).
    engine = Engine(settings)
    record_version = engine.store.set_active_model_version
    checks: list[bool] = []
    threads: list[threading.Thread] = []

    def record_then_check(version: str) -> None:
        record_version(version)
        check = threading.Thread(target=lambda: checks.append(engine.refresh_if_stale()))
        check.start()
        check.join(timeout=0.5)  # blocked until the write is done (it used to run here)
        threads.append(check)

    monkeypatch.setattr(engine.store, "set_active_model_version", record_then_check)
    if write == "upsert":
        vector = np.zeros(engine.model_config.dim, np.float32)
        vector[0] = 1.0
        engine.upsert_product(ProductData("first", "first.jpg", "0" * 64), vector)
    else:
        engine.ingest(read_catalog(slice_catalog).records[:3])
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()
    assert checks == [False]
    assert len(engine.index) == (1 if write == "upsert" else 3)
    engine.close()


def test_a_catalog_ingested_without_local_features_gets_them_on_the_next_ingest(
    settings: Settings, slice_catalog: Path
) -> None:
    # A catalog from before photo search (or with LOOKALIKE_LOCAL_FEATURES=false): the
    # next ingest adds the local features without re-adding the products.
    records = read_catalog(slice_catalog).records[:30]
    old = Engine(settings.model_copy(update={"local_features": False}))
    assert old.ingest(records).added == 30
    assert old.local_index is None
    old.close()
    engine = Engine(settings)
    summary = engine.ingest(records)
    assert (summary.added, summary.updated, summary.embedded) == (0, 30, 30)
    check = engine.check_index()
    assert check["consistent"] and check["local"]["consistent"]
    assert check["local"]["products"] == 30
    assert engine.ingest(records).unchanged == 30  # and then they are up to date
    engine.close()


def test_rows_the_database_cannot_hold_fail_alone(
    settings: Settings, database_url: str, slice_catalog: Path
) -> None:
    # Issue #12 D4: on PostgreSQL one such row sank the whole ingest (0 products added);
    # SQLite stored it. Now both report it as a row error and ingest the good rows.
    rows = _rows(slice_catalog)[:3]
    for change in (
        {"sku": "s" * 256},
        {"sku": "bad-category", "category": "c" * 256},
        {"sku": "bad-currency", "currency": "E" * 9},
        {"sku": "bad\x00sku"},
        {"sku": "bad-title", "title": "a\x00b"},
    ):
        rows.append({**rows[0], **change})
    _write(slice_catalog, rows)
    read = read_catalog(slice_catalog)
    assert len(read.errors) == 5
    engine = Engine(settings.model_copy(update={"database_url": database_url}))
    summary = engine.ingest(read.records)
    assert (summary.added, summary.failed) == (3, [])
    assert engine.store.stats()["products"] == 3
    engine.close()


def test_an_ingest_beside_searches_does_not_drop_the_index(
    settings: Settings, slice_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API import runs in the server's process while searches check for other
    processes' writes: its own batches must not look like someone else's (each would
    drop the indexes and rebuild them from the database)."""
    records = read_catalog(slice_catalog).records[:48]
    engine = Engine(settings)
    engine.ingest(records[:8])
    monkeypatch.setattr(
        "lookalike.engine.ingest_records", functools.partial(ingest_records, write_batch=8)
    )
    reloads, done = [], threading.Event()

    def check() -> None:
        while not done.is_set():
            reloads.append(engine.refresh_if_stale(0))

    checker = threading.Thread(target=check)
    checker.start()
    try:
        summary = engine.ingest(records)
    finally:
        done.set()
        checker.join()
    assert summary.added == 40 and len(reloads) > 10
    assert not any(reloads)
    assert len(engine.index) == 48
    engine.close()
