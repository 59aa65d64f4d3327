"""Soak: searching clients plus one writer against the real server, for a while.

    python -m benchmarks.reliability.soak [--minutes 10] [--clients 8] [--catalog 300]
                                          [--png docs/img/reliability-soak.png]

``--clients`` threads each send ``POST /api/v1/search`` (keep-alive) with dev photos, half
of them the photos the writer uses; one writer creates, updates and deletes products in a
loop (never reusing a SKU). Reported per 10 s window: requests, errors, p50/p99 latency,
the server's RSS; and any search that returned a product after its DELETE had been
acknowledged (sent after the acknowledgement). A PNG of latency and RSS over time is drawn
with Pillow.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFont

from benchmarks.common import REPO, Server, machine, percentile
from benchmarks.reliability.common import (
    AUTH,
    Home,
    dev_photos,
    ingest,
    log,
    running_server,
)

WINDOW_S = 10.0


@dataclass
class Record:
    """Everything the clients saw, appended from several threads (list.append is atomic)."""

    requests: list[tuple[float, float, int]] = field(default_factory=list)  # start, s, status
    rss: list[tuple[float, float]] = field(default_factory=list)
    deleted_at: dict[str, float] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=lambda: {"create": 0, "update": 0, "delete": 0})
    write_errors: list[str] = field(default_factory=list)
    t0: float = 0.0
    server_alive: bool = True


def searcher(base: str, photos: list[Path], rec: Record, until: float, seed: int) -> None:
    """Search with random photos until ``until``; flag deleted products in the answers."""
    rng = random.Random(seed)
    data = [(p.name, p.read_bytes()) for p in photos]
    with httpx.Client(base_url=base, timeout=30) as client:
        while (start := time.monotonic()) < until:
            name, body = rng.choice(data)
            try:
                r = client.post("/api/v1/search", files={"image": (name, body, "image/jpeg")})
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            rec.requests.append((start, time.monotonic() - start, status))
            if status != 200:
                continue
            for hit in r.json()["results"]:
                sku = hit["product"]["sku"]
                acked = rec.deleted_at.get(sku)
                if acked is not None and acked < start:
                    rec.stale.append(f"{sku} returned {start - acked:.2f} s after its DELETE")


def writer(base: str, photos: list[Path], rec: Record, until: float, seed: int) -> None:
    """Create, update and delete products (at most 20 of its own alive) until ``until``."""
    rng = random.Random(seed)
    live: list[str] = []
    made = 0
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        while time.monotonic() < until:
            op = "create" if len(live) < 5 else rng.choice(["create", "update", "delete"])
            op = "delete" if len(live) >= 20 and op == "create" else op
            try:
                if op == "create":
                    sku, photo = f"soak-{made:06d}", photos[made % len(photos)]
                    made += 1
                    files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
                    r = client.post("/api/v1/products", data={"sku": sku}, files=files)
                    live.append(sku)
                elif op == "update":
                    sku = rng.choice(live)
                    r = client.put(f"/api/v1/products/{sku}", data={"title": f"t{time.time()}"})
                else:
                    sku = live.pop(rng.randrange(len(live)))
                    r = client.delete(f"/api/v1/products/{sku}")
                    if r.status_code == 204:
                        rec.deleted_at[sku] = time.monotonic()
                ok = r.status_code < 300
            except httpx.HTTPError as exc:
                ok, r = False, None
                rec.write_errors.append(f"{op}: {exc!r}")
            if ok:
                rec.writes[op] += 1
            elif r is not None:
                rec.write_errors.append(f"{op} {sku}: {r.status_code} {r.text[:200]}")


def windows(rec: Record, t0: float) -> list[dict[str, float]]:
    """Per-window figures: time (s from start), requests, errors, p50/p99 ms, RSS MiB."""
    out = []
    end = max((s for s, _, _ in rec.requests), default=t0)
    w = 0
    while t0 + w * WINDOW_S <= end:
        lo, hi = t0 + w * WINDOW_S, t0 + (w + 1) * WINDOW_S
        rows = [(d, st) for s, d, st in rec.requests if lo <= s < hi]
        ok = [d * 1000 for d, st in rows if st == 200]
        rss = [m for t, m in rec.rss if lo <= t < hi]
        out.append(
            {
                "t": round((w + 1) * WINDOW_S),
                "requests": len(rows),
                "errors": sum(st != 200 for _, st in rows),
                "p50_ms": round(percentile(ok, 50), 1) if ok else 0.0,
                "p99_ms": round(percentile(ok, 99), 1) if ok else 0.0,
                "rss_mib": round(max(rss), 1) if rss else 0.0,
            }
        )
        w += 1
    return out


def draw(rows: list[dict[str, float]], path: Path, title: str) -> None:
    """Two stacked line charts (latency p50/p99; server RSS) over time, with Pillow."""
    width, panel, pad = 1000, 260, 70
    img = Image.new("RGB", (width, 2 * panel + 3 * pad // 2 + 40), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    d.text((pad, 10), title, fill="black", font=font)
    span = max((r["t"] for r in rows), default=1)
    series = [
        ("latency, ms", [("p50", "p50_ms", (31, 119, 180)), ("p99", "p99_ms", (214, 39, 40))]),
        ("server RSS, MiB", [("RSS", "rss_mib", (44, 160, 44))]),
    ]
    for i, (label, lines) in enumerate(series):
        top = 40 + i * (panel + pad // 2)
        left, right, bottom = pad, width - 20, top + panel - 30
        values = [r[key] for _, key, _ in lines for r in rows if r[key] > 0] or [1.0]
        vmax = max(values) * 1.1
        vmin = 0.0 if i == 0 else min(values) * 0.95
        d.rectangle((left, top, right, bottom), outline="black")
        for k in range(5):
            v = vmin + (vmax - vmin) * k / 4
            y = bottom - (bottom - top) * k / 4
            d.line((left - 4, y, left, y), fill="black")
            d.text((5, y - 7), f"{v:.0f}", fill="black", font=font)
        for k in range(6):
            x = left + (right - left) * k / 5
            d.text((x - 10, bottom + 4), f"{span * k / 5 / 60:.1f}", fill="black", font=font)
        d.text((right - 150, bottom + 18), "minutes", fill="black", font=font)
        d.text((left, top - 18), label, fill="black", font=font)
        for j, (name, key, colour) in enumerate(lines):
            pts = [
                (
                    left + (right - left) * r["t"] / span,
                    bottom - (bottom - top) * (r[key] - vmin) / (vmax - vmin),
                )
                for r in rows
                if r[key] > 0
            ]
            if len(pts) > 1:
                d.line(pts, fill=colour, width=2)
            d.text((right - 60, top + 6 + 16 * j), name, fill=colour, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def soak(
    server: Server, queries: list[Path], held: list[Path], seconds: float, clients: int
) -> Record:
    """``clients`` searchers (``queries``) and one writer (``held`` photos, none of them in
    the catalog) against ``server`` for ``seconds``; RSS sampled every second."""
    rec = Record()
    t0 = rec.t0 = time.monotonic()
    until = t0 + seconds
    threads = [
        # Daemons: an interrupted run must not leave clients hammering a stopped server.
        threading.Thread(target=searcher, args=(server.base, queries, rec, until, i), daemon=True)
        for i in range(clients)
    ]
    threads.append(
        threading.Thread(target=writer, args=(server.base, held, rec, until, 99), daemon=True)
    )
    for t in threads:
        t.start()
    next_log = t0 + 30
    while any(t.is_alive() for t in threads):
        rec.rss.append((time.monotonic(), server.rss()))
        if time.monotonic() >= next_log:
            recent = [d * 1000 for s, d, st in rec.requests if s > next_log - 30 and st == 200]
            errors = sum(st != 200 for _, _, st in rec.requests)
            log(
                f"{(time.monotonic() - t0) / 60:.1f}/{seconds / 60:g} min: "
                f"{len(rec.requests)} searches, {errors} errors, {sum(rec.writes.values())} "
                f"writes, last 30 s p50 {percentile(recent or [0], 50):.0f} ms "
                f"p99 {percentile(recent or [0], 99):.0f} ms, RSS {rec.rss[-1][1]:.0f} MiB"
            )
            next_log += 30
        time.sleep(1)
    rec.server_alive = server.proc.poll() is None
    return rec


def summarise(rec: Record, seconds: float) -> dict[str, object]:
    """The figures of a soak, and ``problems`` (empty when every promise held)."""
    ok = [d * 1000 for _, d, st in rec.requests if st == 200]
    errors = sum(st != 200 for _, _, st in rec.requests)
    problems = [*rec.stale, *rec.write_errors[:20]]
    if errors:
        problems.append(f"{errors} search errors")
    if not rec.server_alive:
        problems.append("the server died")
    if not all(rec.writes.values()):
        problems.append(f"the writer did not do every kind of write: {rec.writes}")
    rss = [m for _, m in rec.rss if m > 0]
    return {
        "searches": len(rec.requests),
        "searches_per_s": round(len(rec.requests) / seconds, 1),
        "search_errors": errors,
        "p50_ms": round(percentile(ok, 50), 1) if ok else None,
        "p99_ms": round(percentile(ok, 99), 1) if ok else None,
        "writes": rec.writes,
        "write_errors": len(rec.write_errors),
        "deleted_then_returned": len(rec.stale),
        "rss_mib": {"first": round(rss[0]), "max": round(max(rss)), "last": round(rss[-1])}
        if rss
        else {},
        "windows": windows(rec, rec.t0),
        "problems": problems,
    }


def photo_sets(catalog: list[tuple[str, Path]], held: int = 60) -> tuple[list[Path], list[Path]]:
    """(search queries, writer photos): the writer's photos are not in the catalog, and
    half the queries are those photos (so a deleted product would be found if kept)."""
    in_catalog = {sku for sku, _ in catalog}
    extra = [p for sku, p in dev_photos(400, start=1) if sku not in in_catalog][:held]
    return extra + [p for _, p in catalog[:: max(1, len(catalog) // held)]][:held], extra


def run(minutes: float, clients: int, catalog: int, work: Path) -> dict[str, object]:
    """The soak in ``work`` on its own server over ``catalog`` dev photos."""
    rows = dev_photos(catalog)
    home = Home(work / "home")
    log(f"ingesting {catalog} dev photos")
    ingest(home, rows)
    queries, held = photo_sets(rows)
    server_log = work / "server.log"
    with running_server(home, server_log) as server:
        rec = soak(server, queries, held, minutes * 60, clients)
    # Live writes must not make the server rebuild its indexes from the database (issue
    # #12 saw 46 rebuilds in 3 minutes from a race between the change counter and a write).
    rebuilds = [line for line in server_log.read_text().splitlines() if "rebuilt" in line]
    report: dict[str, object] = {
        "machine": machine(),
        "minutes": minutes,
        "clients": clients,
        "catalog": catalog,
        "index_rebuilds_logged": len(rebuilds),
        "rebuild_lines": rebuilds[:5],
    }
    return {**report, **summarise(rec, minutes * 60)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--catalog", type=int, default=300)
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "img" / "reliability-soak.png")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "reliability")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-soak-") as tmp:
        report = run(args.minutes, args.clients, args.catalog, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(report, indent=1))
    title = (
        f"soak: {args.clients} searching clients + 1 writer, {args.minutes:g} min, "
        f"{args.catalog} products, loopback, {report['machine']}"
    )
    draw(report["windows"], args.png, title)  # type: ignore[arg-type]
    print(json.dumps({k: v for k, v in report.items() if k != "windows"}, indent=1))
    if report["problems"]:
        raise SystemExit(f"{len(report['problems'])} problems")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
