"""The SMVS phone-photo protocol (issue #9), end to end, in one run.

    python -m benchmarks.smvs [--home DIR] [--no-distractors] [--no-local] [--out DIR]

1. A fresh catalog: the 100 SMVS catalog images (category "DVD cover") plus, unless
   ``--no-distractors``, the 2,946 fashion dev products as distractors.
2. Closed set: every one of the 400 phone photos searched (``lookalike evaluate
   --queries``): R@1/R@5 overall and per phone, exact-match precision/recall.
3. Open set, twice: half of the SMVS products (every other one) deleted, then the other
   half; every photo searched each time. Photos of deleted products must not claim an
   exact match (target: at most 2%), and their results should still be DVD covers.

The reports (with failure grids of the photos: local only, never committed) go to
``reports/smvs/<step>/``. ``--no-local`` runs the same protocol with local features off
(the global descriptor alone, today's baseline).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import DATASET, REPO, machine
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.evaluation.queries import PhotoQuery, evaluate_queries
from lookalike.ingest.readers import CatalogRecord, read_catalog

SMVS = DATASET.parent / "smvs-dvd-covers"
CATEGORY = "DVD cover"


def smvs_rows() -> list[dict[str, str]]:
    labels = SMVS / "labels.csv"
    if not labels.exists():
        raise SystemExit(f"SMVS data set not found at {SMVS}; set LOOKALIKE_DATASETS")
    with labels.open(newline="") as f:
        return list(csv.DictReader(f))


def smvs_catalog(rows: list[dict[str, str]]) -> list[CatalogRecord]:
    return [
        CatalogRecord(r["product_id"], SMVS / r["file"], r["file"], None, CATEGORY)
        for r in rows
        if r["image_type"] == "catalog"
    ]


def smvs_queries(rows: list[dict[str, str]]) -> list[PhotoQuery]:
    return [
        PhotoQuery(SMVS / r["file"], r["product_id"], r["device"], CATEGORY)
        for r in rows
        if r["image_type"] == "photo"
    ]


def run(home: Path, out: Path, distractors: bool, local: bool) -> dict[str, Any]:
    settings = Settings(home=home, local_features=local)
    rows = smvs_rows()
    engine = Engine(settings)
    results: dict[str, Any] = {"machine": machine(), "local_features": local}
    records = smvs_catalog(rows)
    if distractors:
        records += read_catalog(DATASET / "labels.csv").records
    start = time.perf_counter()
    summary = engine.ingest(records)
    results["ingest"] = {
        "products": summary.added + summary.updated + summary.unchanged,
        "seconds": round(time.perf_counter() - start, 1),
        "failed": len(summary.failed),
    }
    print(f"ingested {results['ingest']}", flush=True)
    queries = smvs_queries(rows)
    report = evaluate_queries(engine, queries, out / "closed")
    results["closed"] = _brief(report)
    print("closed set:", json.dumps(results["closed"]), flush=True)
    catalog = smvs_catalog(rows)
    halves = [catalog[0::2], catalog[1::2]]
    for n, removed in enumerate(halves):
        engine.delete([r.sku for r in removed])
        report = evaluate_queries(engine, queries, out / f"open-{n + 1}")
        results[f"open-{n + 1}"] = _brief(report)
        print(f"open set {n + 1}:", json.dumps(results[f"open-{n + 1}"]), flush=True)
        engine.ingest(removed)
    engine.close()
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    return results


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    return {
        key: report[key]
        for key in ("overall", "per_group", "exact", "open_set", "category", "latency_ms")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="catalog folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "smvs")
    parser.add_argument("--no-distractors", action="store_true")
    parser.add_argument("--no-local", action="store_true")
    args = parser.parse_args()
    if args.home:
        run(args.home, args.out, not args.no_distractors, not args.no_local)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.out, not args.no_distractors, not args.no_local)


if __name__ == "__main__":
    main()
