"""Local ingest vs Ray ingest on this machine, in one run, and the writer's ceiling.

    python -m benchmarks.ray_ingest [--limit N] [--repeats R]

- local: ``Engine.ingest`` as ``lookalike ingest`` runs it (ONNX Runtime on every core,
  decoding on threads).
- Ray, 1 worker process: a local cluster (head node without CPUs + one worker node with
  all the machine's CPUs, separate processes), one actor holding one model with all of
  them; Ray, N worker processes: N actors of one CPU each. Equal cores in all three; the
  driver (this process: reading files, database writes, index) shares them as well.
- writes only: the Ray run's results replayed into a fresh catalog with no embedding at
  all: what one driver can commit (SQLite writes + vector and descriptor indexes), i.e.
  the ceiling of any cluster feeding it.

Each mode runs ``--repeats`` times, alternating, into a fresh SQLite home; the best run
counts (the machine may be shared). The Ray times are steady state: the workers (one
model each) are started before the timing, once per connection, as a long ingest or a
server would keep them; their start time is printed apart, as is the cluster's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from benchmarks.common import DATASET, LocalRayCluster, dev_rows, machine
from lookalike.config import Settings
from lookalike.embeddings.embedder import Embedder, create_embedder
from lookalike.embeddings.pipeline import EmbedResult
from lookalike.engine import Engine
from lookalike.ingest.pipeline import IngestSummary, RecordEmbedder
from lookalike.ingest.ray_ingest import RayEmbedding
from lookalike.ingest.readers import CatalogRecord


class Recorder:
    """An embed hook that keeps what another one yields (for the writes-only replay)."""

    def __init__(self, inner: RecordEmbedder) -> None:
        self.inner = inner
        self.results: list[EmbedResult[CatalogRecord]] = []

    def __call__(
        self, records: list[CatalogRecord], embedder: Embedder, *, local_features: bool
    ) -> Iterator[EmbedResult[CatalogRecord]]:
        self.results.clear()
        for result in self.inner(records, embedder, local_features=local_features):
            self.results.append(result)
            yield result


def replay(results: list[EmbedResult[CatalogRecord]]) -> RecordEmbedder:
    """An embed hook that embeds nothing: it hands back recorded results."""

    def embed(
        records: list[CatalogRecord], embedder: Embedder, *, local_features: bool
    ) -> Iterable[EmbedResult[CatalogRecord]]:
        return iter(results)

    return embed


def timed(
    settings: Settings, home: Path, records: list[CatalogRecord], embed: RecordEmbedder | None
) -> tuple[float, IngestSummary]:
    """images/s of one ingest into a fresh home."""
    engine = Engine(settings.model_copy(update={"home": home}))
    engine.embedder  # noqa: B018  (load the driver's model outside the timing, as the CLI has)
    start = time.perf_counter()
    summary = engine.ingest(records, embed=embed)
    seconds = time.perf_counter() - start
    engine.close()
    assert summary.added == len(records), summary
    return len(records) / seconds, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=600, help="first N dev images")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = dev_rows()[: args.limit]
    records = [
        CatalogRecord(r["id"], DATASET / r["file"], r["file"], r["title"], r["category"])
        for r in rows
    ]
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(home=tmp / "home", _env_file=None)
        config = create_embedder(settings).config  # export the ONNX model outside timings
        actor_start: dict[int, float] = {}
        cluster_start = time.perf_counter()
        with LocalRayCluster(cpus=cores, worker_nodes=1, temp_dir=tmp / "ray") as cluster:
            cluster_seconds = time.perf_counter() - cluster_start
            modes: dict[str, Callable[[], RecordEmbedder | None]] = {"local": lambda: None}
            connection = RayEmbedding(cluster.address, settings).__enter__()
            recorder = Recorder(connection)
            for workers in sorted({1, cores}):
                cpus = cores // workers

                def ray_mode(workers: int = workers, cpus: int = cpus) -> RecordEmbedder:
                    connection.workers, connection.cpus_per_worker = workers, cpus
                    started = time.perf_counter()
                    connection.start_workers(config)  # outside the timing: once per cluster
                    actor_start[workers] = time.perf_counter() - started
                    return recorder

                modes[f"ray, {workers} worker process{'es' if workers > 1 else ''}"] = ray_mode
            runs = 0
            for _ in range(args.repeats):
                for name, make in modes.items():
                    runs += 1
                    rate, _ = timed(settings, tmp / f"home-{runs}", records, make())
                    best[name] = max(best.get(name, 0.0), rate)
                    print(f"  {name:28s} {rate:6.1f} images/s", flush=True)
            writes, _ = timed(settings, tmp / "home-writes", records, replay(recorder.results))
            best["writes only (replayed results)"] = writes
            connection.close()

    local = best["local"]
    print(f"machine: {machine()} (shared with other jobs: best of {args.repeats} runs)")
    print(f"images: first {len(records)} of {DATASET}; Ray cluster start {cluster_seconds:.1f} s")
    starts = ", ".join(f"{n} worker(s) {t:.1f} s" for n, t in sorted(actor_start.items()))
    print(f"worker start (model load, once per connection; last run's): {starts}")
    print(f"{'mode':34s} {'images/s':>9s} {'per core':>9s} {'overhead':>9s}")
    for name, rate in best.items():
        overhead = "" if name.startswith("writes") else f"{local / rate - 1:+9.1%}"
        print(f"{name:34s} {rate:9.1f} {rate / cores:9.1f} {overhead:>9s}")


if __name__ == "__main__":
    main()
