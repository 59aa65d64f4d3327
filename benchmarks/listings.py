"""What grouping the listings of one photo costs a photo search (search/grouping.py):
photo -> top-k on the dev catalog with grouping off, on with nothing cached (each search
after its pictures and verdicts were forgotten), and on again (the same searches, their
verdicts kept); the grouping step's own time; the pictures compared.

    python -m benchmarks.listings [--queries 100] [--copies 30] [--home DIR]

``--copies`` adds the five edited copies (benchmarks/duplicates.py) of that many dev
photos under new SKUs, so that some answers do hold listings of one photo: the originals
are among the queries, each found with its copies as one result. ``--home`` reuses (and
adds the copies to) an ingested dev catalog instead of ingesting one into a temporary
folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import DATASET, dev_rows, machine, percentile
from benchmarks.duplicates import edits
from lookalike.config import Settings
from lookalike.engine import LISTING_PICTURES, Engine
from lookalike.ingest.readers import CatalogRecord
from lookalike.search import grouping
from lookalike.search.duplicates import PictureCache
from lookalike.search.searcher import SearchHit


class Timed:
    """The grouping step's wall time and CPU time (of its thread: on a busy machine the
    wall time counts other processes' turns too) per search, ListingGrouper.group
    wrapped."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.original = grouping.ListingGrouper.group

    def __enter__(self) -> Timed:
        original = self.original

        def group(
            grouper: grouping.ListingGrouper, hits: Sequence[SearchHit], k: int
        ) -> list[SearchHit]:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(grouper, hits, k)
            finally:
                self.times.append((time.perf_counter() - start) * 1000)
                self.cpu.append((time.thread_time() - cpu) * 1000)

        grouping.ListingGrouper.group = group  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        grouping.ListingGrouper.group = self.original  # type: ignore[method-assign]


def line(label: str, times: list[float]) -> None:
    print(
        f"{label:46s} p50 {percentile(times, 50):7.2f} ms   p90 {percentile(times, 90):7.2f} ms"
        f"   mean {float(np.mean(times)):7.2f} ms"
    )


def forget(engine: Engine) -> None:
    """Drop the pictures and verdicts kept for grouping (and for duplicate runs)."""
    engine._verdicts.clear()
    engine._pictures = PictureCache(engine._duplicate_picture, LISTING_PICTURES)


def add_copies(engine: Engine, rows: list[dict[str, str]], folder: Path) -> None:
    records = []
    for r in rows:
        for kind, data in edits((DATASET / r["file"]).read_bytes(), int(r["id"])).items():
            path = folder / f"{r['id']}-{kind}.jpg"
            path.write_bytes(data)
            records.append(CatalogRecord(f"{r['id']}-{kind}", path, str(path)))
    engine.ingest(records)


def run(engine: Engine, files: list[Path], k: int, copied: set[str]) -> None:
    def search(f: Path, group: bool, wall: list[float], cpu: list[float]) -> list[SearchHit]:
        """One search; its wall and CPU time appended to ``wall`` and ``cpu``."""
        start, used = time.perf_counter(), time.process_time()
        (result,) = engine.search_files([f], k, group=group)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - used) * 1000)  # every thread of the process
        return result.hits

    scrap: list[float] = []
    for f in files[:10]:  # warm-up: model, index, caches of the store
        search(f, True, scrap, scrap)
        search(f, False, scrap, scrap)
    times: list[list[float]] = [[] for _ in range(6)]
    off, off_cpu, cold, cold_cpu, warm, warm_cpu = times
    compared: list[int] = []
    grouped_hits = found = 0
    with Timed() as step_cold:
        for f in files:
            search(f, False, off, off_cpu)
            forget(engine)
            hits = search(f, True, cold, cold_cpu)
            compared.append(len(engine._verdicts))
            grouped_hits += sum(1 for h in hits if h.listings)
            for h in hits:  # the copies in the original's group, whichever is its result
                group = {h.product.sku, *(p.sku for p in h.listings)}
                if f.stem in copied and f.stem in group:
                    found += sum(sku.startswith(f"{f.stem}-") for sku in group)
    for f in files:  # every answer's verdicts and pictures kept
        search(f, True, scrap, scrap)
    with Timed() as step_warm:
        for f in files:
            search(f, True, warm, warm_cpu)
    print(f"{len(files)} queries, top-{k}; wall time, then CPU time of the process")
    line("grouping off", off)
    line("grouping on, nothing cached", cold)
    line("grouping on, verdicts and pictures kept", warm)
    line("grouping off (CPU)", off_cpu)
    line("grouping on, nothing cached (CPU)", cold_cpu)
    line("grouping on, verdicts and pictures kept (CPU)", warm_cpu)
    line("  the grouping step, nothing cached", step_cold.times)
    line("  the grouping step, nothing cached (CPU)", step_cold.cpu)
    line("  the grouping step, verdicts kept", step_warm.times)
    line("  the grouping step, verdicts kept (CPU)", step_warm.cpu)
    print(
        f"pictures compared per search (nothing cached): mean {np.mean(compared):.1f}, "
        f"p90 {percentile([float(c) for c in compared], 90):.0f}, max {max(compared)}; "
        f"results with listings: {grouped_hits}; copies in their original's result: "
        f"{found} of {5 * len(copied)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("-k", type=int, default=12)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = dev_rows()
    rng = np.random.default_rng(0)
    chosen = [rows[i] for i in rng.choice(len(rows), args.queries, replace=False)]
    sources = chosen[: args.copies]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        engine = Engine(Settings(home=home, _env_file=None))
        if engine.product_count() == 0:
            engine.ingest([CatalogRecord(r["id"], DATASET / r["file"], r["file"]) for r in rows])
        copies = home / "listing-copies"
        copies.mkdir(exist_ok=True)
        add_copies(engine, sources, copies)
        print(f"catalog: {engine.product_count():,} products ({len(sources)} photos with 5 copies)")
        files = [DATASET / r["file"] for r in chosen]
        run(engine, files, args.k, {r["id"] for r in sources})
        engine.close()


if __name__ == "__main__":
    main()
