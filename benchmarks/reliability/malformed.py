"""Malformed images against the real server and the real ingest.

    python -m benchmarks.reliability.malformed [--count 1000] [--catalog 100] [--out DIR]

Makes ``--count`` malformed inputs from real dev photos (truncations, byte flips, huge
declared sizes, decompression bombs, broken palettes / ICC / EXIF, 16-bit and CMYK files,
1,000-frame GIFs, zero bytes, HTML / SVG / PDF renamed .jpg, ...), sends each to
``POST /api/v1/search`` of a real server (``python app.py`` on loopback, over a catalog of
``--catalog`` dev photos), then puts all of them in one CSV catalog for ``lookalike
ingest`` on a fresh home. It checks: no 5xx, no request over 10 s, the server still
alive, ingest exits 0, adds exactly the inputs the API could search with and names every
other one as failed, and each input whose fate is certain (``expect``) met it. Every
input is sent ``--passes`` times; the server's RSS after each pass is reported (a leak
keeps growing, a warming allocator levels off) and every pass must answer alike.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import struct
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import httpx
from PIL import Image

from benchmarks.common import REPO, machine
from benchmarks.reliability.common import (
    Home,
    cli,
    db_facts,
    dev_photos,
    ingest,
    log,
    running_server,
)

HANG_S = 10.0


@dataclass(frozen=True)
class Case:
    """One malformed input: ``expect`` is "bad" (must be refused), "good" (must be
    accepted) or "any" (fate depends on where the damage fell; the API and ingest must
    agree)."""

    name: str
    kind: str
    ext: str
    expect: str
    data: bytes


@dataclass
class Outcome:
    """What the API answered for a case, and what ingest did with it."""

    name: str
    kind: str
    expect: str
    status: int  # 0: no answer (connection error), -1: over HANG_S
    seconds: float
    ingested: bool | None = None
    named_failed: bool | None = None


def _flip(data: bytes, rng: random.Random, lo: int, n: int) -> bytes:
    b = bytearray(data)
    for _ in range(n):
        i = rng.randrange(min(lo, len(b) - 1), len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_ihdr(png: bytes, width: int, height: int) -> bytes:
    """``png`` with the IHDR's size replaced (CRC fixed, so only the size lies)."""
    ihdr = png[16:29]
    body = struct.pack(">II", width, height) + ihdr[8:]
    return png[:8] + _chunk(b"IHDR", body) + png[33:]


def _jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with the frame header (SOF0/SOF2) declaring another size."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(marker)
        if at > 0:
            b = bytearray(jpeg)
            b[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(b)
    return jpeg


_BOMBS: dict[tuple[int, int], bytes] = {}


def _bomb_png(width: int, height: int) -> bytes:
    """A grey PNG of width x height zero pixels: a few hundred KB that would inflate to
    width * height bytes (built streaming, never held decompressed)."""
    if (width, height) not in _BOMBS:
        z = zlib.compressobj(9)
        row = b"\0" * (width + 1)
        parts = [z.compress(row) for _ in range(height)]
        idat = b"".join(parts) + z.flush()
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        _BOMBS[(width, height)] = (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b"")
        )
    return _BOMBS[(width, height)]


def _gif_frames(img: Image.Image, frames: int) -> bytes:
    small = img.convert("RGB").resize((32, 40))
    seq = [small.point(lambda v, s=i: (v + s) % 256) for i in range(frames)]
    return _encode(seq[0], "GIF", save_all=True, append_images=seq[1:], duration=10, loop=0)


_HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)>not an image</body></html>"
_SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100000" '
    b'height="100000"><rect width="100%" height="100%" fill="red"/></svg>'
)
_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

Maker = Callable[[random.Random, bytes, Image.Image], tuple[bytes, str, str]]

# kind -> maker(rng, original JPEG bytes, decoded photo) -> (bytes, extension, expect)
KINDS: dict[str, Maker] = {
    "truncated": lambda r, j, im: (j[: int(len(j) * r.uniform(0.05, 0.9))], "jpg", "bad"),
    "truncated-header": lambda r, j, im: (j[: r.randint(1, 300)], "jpg", "bad"),
    "truncated-png": lambda r, j, im: (
        (p := _encode(im, "PNG"))[: int(len(p) * r.uniform(0.1, 0.9))],
        "png",
        "bad",
    ),
    "flipped-body": lambda r, j, im: (_flip(j, r, 700, r.randint(1, 30)), "jpg", "any"),
    "flipped-header": lambda r, j, im: (_flip(j, r, 0, r.randint(1, 4))[:], "jpg", "any"),
    "flipped-png": lambda r, j, im: (
        _flip(_encode(im, "PNG"), r, 8, r.randint(1, 8)),
        "png",
        "any",
    ),
    "huge-jpeg-size": lambda r, j, im: (
        _jpeg_with_size(j, 65500, r.randint(60000, 65535)),
        "jpg",
        "bad",
    ),
    "huge-png-size": lambda r, j, im: (
        _png_with_ihdr(_encode(im, "PNG"), r.randint(10**5, 2**31 - 1), 10**5),
        "png",
        "bad",
    ),
    "zero-size-png": lambda r, j, im: (_png_with_ihdr(_encode(im, "PNG"), 0, 0), "png", "bad"),
    "bomb-png": lambda r, j, im: (
        _bomb_png(*r.choice([(8000, 8000), (12000, 12000)])),
        "png",
        "bad",
    ),
    "bomb-gif-screen": lambda r, j, im: (
        (g := _encode(im.resize((8, 8)), "GIF"))[:6] + struct.pack("<HH", 65535, 65535) + g[10:],
        "gif",
        "bad",
    ),
    "broken-palette-png": lambda r, j, im: _broken_palette(r, im),
    "broken-palette-gif": lambda r, j, im: (
        _flip(_encode(im.resize((64, 80)), "GIF"), r, 10, r.randint(1, 6))[:-1] + b"!",
        "gif",
        "any",
    ),
    "broken-icc": lambda r, j, im: (
        _encode(im, "JPEG", icc_profile=r.randbytes(r.randint(1, 4000))),
        "jpg",
        "any",
    ),
    "broken-exif": lambda r, j, im: (
        _encode(im, "JPEG", exif=b"Exif\0\0" + r.randbytes(r.randint(1, 600))),
        "jpg",
        "any",
    ),
    "exif-orientation": lambda r, j, im: (
        _orientation(im, r.choice([0, 6, 8, 9, 255, 65535])),
        "jpg",
        "good",
    ),
    "16-bit-png": lambda r, j, im: (
        _encode(im.convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"),
        "png",
        "good",
    ),
    "cmyk-jpeg": lambda r, j, im: (_encode(im.convert("CMYK"), "JPEG"), "jpg", "good"),
    "cmyk-tiff": lambda r, j, im: (_encode(im.convert("CMYK"), "TIFF"), "tif", "good"),
    "gif-1000-frames": lambda r, j, im: (_gif_frames(im, 1000), "gif", "good"),
    "zero-bytes": lambda r, j, im: (b"", "jpg", "bad"),
    "html-as-jpg": lambda r, j, im: (_HTML, "jpg", "bad"),
    "svg-as-jpg": lambda r, j, im: (_SVG, "jpg", "bad"),
    "pdf-as-jpg": lambda r, j, im: (_PDF, "jpg", "bad"),
    "random-bytes": lambda r, j, im: (r.randbytes(r.randint(1, 20000)), "jpg", "bad"),
    "html-then-jpeg": lambda r, j, im: (_HTML + j, "jpg", "bad"),
    "jpeg-then-garbage": lambda r, j, im: (j + r.randbytes(r.randint(1, 5000)), "jpg", "good"),
    "truncated-webp": lambda r, j, im: (
        (w := _encode(im, "WEBP"))[: int(len(w) * r.uniform(0.1, 0.9))],
        "webp",
        "bad",
    ),
    "flipped-tiff": lambda r, j, im: (
        _flip(_encode(im, "TIFF"), r, 0, r.randint(1, 6)),
        "tif",
        "any",
    ),
    "flipped-bmp": lambda r, j, im: (
        _flip(_encode(im, "BMP"), r, 0, r.randint(1, 3)),
        "bmp",
        "any",
    ),
}


def _broken_palette(r: random.Random, im: Image.Image) -> tuple[bytes, str, str]:
    """A palette PNG whose PLTE is cut short (indices point past it) or has bad bytes."""
    png = _encode(im.quantize(256), "PNG")
    at = png.find(b"PLTE") - 4
    (length,) = struct.unpack(">I", png[at : at + 4])
    plte = png[at + 8 : at + 8 + length]
    body = plte[: 3 * r.randint(0, 16)] if r.random() < 0.7 else plte[:-1]
    rest = png[at + 12 + length :]
    return png[:at] + _chunk(b"PLTE", body) + rest, "png", "any"


def _orientation(im: Image.Image, value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _encode(im, "JPEG", exif=exif.tobytes())


def make_cases(count: int, photos: list[Path], seed: int = 12) -> list[Case]:
    """``count`` malformed inputs, the kinds in turn, each from the next dev photo."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    cases = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        path = photos[i % len(photos)]
        original = path.read_bytes()
        with Image.open(path) as img:
            photo = img.convert("RGB")
        data, ext, expect = KINDS[kind](rng, original, photo)
        cases.append(Case(f"{kind}-{i:04d}", kind, ext, expect, data))
        if (i + 1) % 200 == 0:
            log(f"generated {i + 1}/{count} inputs")
    return cases


def search_all(base: str, cases: list[Case], clients: int = 2) -> list[Outcome]:
    """POST every case to /api/v1/search (``clients`` at a time, keep-alive)."""
    done = 0
    started = time.monotonic()

    def send(case: Case, client: httpx.Client) -> Outcome:
        nonlocal done
        t0 = time.perf_counter()
        try:
            files = {"image": (f"{case.name}.{case.ext}", case.data, "image/jpeg")}
            status = client.post(f"{base}/api/v1/search", files=files).status_code
        except httpx.TimeoutException:
            status = -1
        except httpx.HTTPError:
            status = 0
        seconds = time.perf_counter() - t0
        done += 1
        if done % 100 == 0:
            log(f"searched {done}/{len(cases)} ({time.monotonic() - started:.0f} s)")
        return Outcome(case.name, case.kind, case.expect, status, seconds)

    pools = [httpx.Client(timeout=HANG_S) for _ in range(clients)]
    try:
        with ThreadPoolExecutor(clients) as ex:
            return list(ex.map(lambda ic: send(ic[1], pools[ic[0] % clients]), enumerate(cases)))
    finally:
        for c in pools:
            c.close()


_FAILED = re.compile(r"^failed .* \(sku (\S+)\): ", re.MULTILINE)


def ingest_all(home: Home, cases: list[Case], outcomes: list[Outcome]) -> dict[str, object]:
    """Write every case to a folder, ingest them as one CSV catalog, and fill in what
    happened to each (stored in the database? named as failed?)."""
    folder = home.path / "inputs"
    folder.mkdir(parents=True)
    catalog = home.path / "malformed.csv"
    lines = ["sku,image,title,category"]
    for c in cases:
        (folder / f"{c.name}.{c.ext}").write_bytes(c.data)
        lines.append(f"{c.name},inputs/{c.name}.{c.ext},{c.kind},{c.kind}")
    catalog.write_text("\n".join(lines) + "\n")
    log(f"ingesting {len(cases)} inputs")
    t0 = time.perf_counter()
    done = cli(home, "ingest", str(catalog), "--show-failures", str(len(cases) + 1), timeout=3600)
    seconds = time.perf_counter() - t0
    stored = set(db_facts(home.url).skus)
    named = set(_FAILED.findall(done.stderr))
    for o in outcomes:
        o.ingested = o.name in stored
        o.named_failed = o.name in named
    return {"rc": done.returncode, "seconds": round(seconds, 1), "tail": done.stderr[-1500:]}


def problems(outcomes: list[Outcome]) -> list[str]:
    """Every way the run broke a promise (empty when all held)."""
    out = []
    for o in outcomes:
        ok = 200 <= o.status < 300
        if o.status >= 500 or o.status == 0:
            out.append(f"{o.name}: API answered {o.status or 'nothing (connection lost)'}")
        if o.status == -1 or o.seconds > HANG_S:
            out.append(f"{o.name}: API took over {HANG_S:.0f} s")
        if o.expect == "bad" and ok:
            out.append(f"{o.name}: API searched with an input that must be refused")
        if o.expect == "good" and not ok:
            out.append(f"{o.name}: API refused a valid image ({o.status})")
        if o.ingested is None:
            continue
        if o.ingested == o.named_failed:
            out.append(f"{o.name}: ingest stored={o.ingested}, named as failed={o.named_failed}")
        if o.ingested != ok and o.status in range(200, 500):
            out.append(f"{o.name}: API {o.status} but ingest stored={o.ingested}")
    return out


def summary(outcomes: list[Outcome]) -> dict[str, dict[str, object]]:
    """Per kind: how many, the API's statuses, stored by ingest, slowest answer."""
    table: dict[str, dict[str, object]] = {}
    for kind in dict.fromkeys(o.kind for o in outcomes):
        rows = [o for o in outcomes if o.kind == kind]
        table[kind] = {
            "n": len(rows),
            "api": dict(sorted(Counter(o.status for o in rows).items())),
            "ingested": sum(bool(o.ingested) for o in rows),
            "max_s": round(max(o.seconds for o in rows), 2),
        }
    return table


def run(count: int, catalog_size: int, work: Path, passes: int = 1) -> dict[str, object]:
    """The whole check in ``work``; returns the report (``problems`` empty when it held)."""
    cases = make_cases(count, [p for _, p in dev_photos(max(count, 1), start=7)])
    serving = Home(work / "server")
    log(f"ingesting a catalog of {catalog_size} dev photos for the server")
    ingest(serving, dev_photos(catalog_size))
    with running_server(serving, work / "server.log") as server:
        warm = [
            Case(f"warm-{i}", "warm", "jpg", "good", p.read_bytes())
            for i, (_, p) in enumerate(dev_photos(20, 3))
        ]
        search_all(server.base, warm)
        rss_before = server.rss()
        log(f"server ready, RSS {rss_before:.0f} MiB; sending {len(cases)} inputs")
        t0 = time.perf_counter()
        outcomes = search_all(server.base, cases)
        api_seconds = time.perf_counter() - t0
        rss_after = [server.rss()]
        repeat: list[str] = []  # later passes must answer as the first did, in time
        slowest = max(o.seconds for o in outcomes)
        # Further passes over the same inputs tell a leak (RSS keeps growing) from the
        # allocator and caches warming up (it levels off).
        for k in range(1, passes):
            again = search_all(server.base, cases)
            rss_after.append(server.rss())
            log(f"pass {k + 1}/{passes}: RSS {rss_after[-1]:.0f} MiB")
            repeat += [
                f"{a.name} pass {k + 1}: {a.status} in {a.seconds:.1f} s (first pass {b.status})"
                for a, b in zip(again, outcomes, strict=True)
                if a.status != b.status or a.seconds > HANG_S
            ]
            slowest = max(slowest, *(a.seconds for a in again))
        alive = server.proc.poll() is None and httpx.get(f"{server.base}/readyz").status_code == 200
    report_ingest = ingest_all(Home(work / "ingest"), cases, outcomes)
    found = problems(outcomes) + repeat
    if not alive:
        found.append("the server died")
    if report_ingest["rc"] != 0:
        found.append(f"ingest exited {report_ingest['rc']}")
    statuses = Counter(o.status for o in outcomes)
    return {
        "machine": machine(),
        "inputs": len(cases),
        "kinds": len({c.kind for c in cases}),
        "api_statuses": dict(sorted(statuses.items())),
        "api_5xx": sum(n for s, n in statuses.items() if s >= 500 or s == 0),
        "api_over_10s": sum(o.seconds > HANG_S or o.status == -1 for o in outcomes),
        "api_seconds": round(api_seconds, 1),
        "api_max_s": round(slowest, 2),
        "server_rss_mib": {
            "before": round(rss_before),
            "after_each_pass": [round(m) for m in rss_after],
        },
        "passes": passes,
        "ingest": report_ingest,
        "ingested": sum(bool(o.ingested) for o in outcomes),
        "named_failed": sum(bool(o.named_failed) for o in outcomes),
        "per_kind": summary(outcomes),
        "problems": found,
        "outcomes": [asdict(o) for o in outcomes],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--catalog", type=int, default=100)
    parser.add_argument("--passes", type=int, default=3, help="times each input is sent")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "reliability")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-malformed-") as tmp:
        report = run(args.count, args.catalog, Path(tmp), args.passes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "malformed.json").write_text(json.dumps(report, indent=1))
    brief = {k: v for k, v in report.items() if k not in ("outcomes", "per_kind")}
    print(json.dumps(brief, indent=1))
    for kind, row in cast(dict[str, object], report["per_kind"]).items():
        print(f"{kind:22} {row}")
    if report["problems"]:
        raise SystemExit(f"{len(report['problems'])} problems")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
