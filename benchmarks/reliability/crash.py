"""Crash consistency: ``kill -9`` of ingest, of the API server during writes, and of
``lookalike models activate``, on SQLite and PostgreSQL.

    python -m benchmarks.reliability.crash [--kills 5] [--catalog 600] [--rounds 5]
        [--activate-catalog 200] [--databases sqlite,postgresql] [--seed 12]
        [--scenarios ingest,server,activate] [--out DIR]

After every kill: no SKU twice, every product has a vector for the active model, nothing
committed before is lost, ``lookalike index check`` agrees (exit 0) — and after the
server's restart every acknowledged write is there (created/updated products with
their last acknowledged fields, deleted ones gone, also from search), search works.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx

from benchmarks.common import REPO, Server, kill9, machine
from benchmarks.reliability.common import (
    AUTH,
    Home,
    cli,
    db_facts,
    dev_photos,
    index_check,
    ingest,
    log,
    postgres_database,
    start_cli,
    start_server,
    stop_server,
    write_catalog,
)
from lookalike.models import DEFAULT_MODEL


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[Home]:
    """A fresh home on SQLite or on a fresh PostgreSQL database."""
    if kind == "sqlite":
        yield Home(folder)
        return
    with postgres_database() as url:
        yield Home(folder, url)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file(uri: str) -> Path:
    """The file a CLI result's ``file:`` URI names."""
    return Path(url2pathname(urlparse(uri).path))


def search_finds_itself(home: Home, photos: list[Path]) -> list[str]:
    """Search each photo with the CLI; the first result must be that very image (its
    bytes: the dev set has a few byte-identical photos under other SKUs)."""
    done = cli(home, "search", *map(str, photos), "-k", "3", "--json")
    found = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    out = [f"search exited {done.returncode}: {done.stderr[-300:]}"] if done.returncode else []
    for photo, doc in zip(photos, found, strict=False):
        hits = doc.get("results", [])
        if not hits or _sha(_file(hits[0]["product"]["image_url"])) != _sha(photo):
            out.append(f"search with {photo.name} did not find it first: {hits[:1]}")
    if len(found) != len(photos):
        out.append(f"search answered {len(found)} of {len(photos)} photos")
    return out


def check_store(home: Home, before: int = 0) -> tuple[int, list[str]]:
    """Database and index after a crash: (products, problems). ``index check`` runs first:
    it is the restart (it opens the store, migrating a schema a kill cut short)."""
    out = []
    report = index_check(home)
    if report["rc"] != 0 or not report.get("consistent"):
        out.append(f"index check: {report}")
    facts = db_facts(home.url)
    n = len(facts.skus)
    if facts.duplicates:
        out.append(f"{facts.duplicates} duplicated SKUs")
    if facts.without_vector:
        out.append(f"{facts.without_vector} products without a vector for {facts.active}")
    if n < before:
        out.append(f"products went from {before} to {n}: committed products lost")
    return n, out


def _timed(home: Home, *args: str) -> float:
    t0 = time.perf_counter()
    done = cli(home, *args)
    if done.returncode:
        raise RuntimeError(f"lookalike {' '.join(args)}: {done.stderr[-1000:]}")
    return time.perf_counter() - t0


def ingest_kills(home: Home, size: int, kills: int, rng: random.Random) -> dict[str, object]:
    """Kill ``lookalike ingest`` of ``size`` dev photos ``kills`` times at random moments of
    what is left of the run, checking the store after each; then let it finish and check
    everything is there. A whole run on a scratch home times the kills first."""
    rows = dev_photos(size)
    home.path.mkdir(parents=True, exist_ok=True)
    catalog = write_catalog(home.path / "catalog.csv", rows)
    scratch = Home(home.path.with_name(home.path.name + "-timing"), extra=home.extra)
    whole = _timed(scratch, "ingest", str(catalog))
    startup = min(3.0, whole / 3)  # process start, settings, database, model: about 2-3 s
    counts: list[int] = []
    found: list[str] = []
    n = killed = 0
    while killed < kills and len(counts) < 3 * kills and n < size:
        # A random moment in the next share of what is left, so that the kills spread
        # over the run instead of one late kill letting it finish.
        share = 2 / (kills - killed + 1)
        left = startup + (whole - startup) * (size - n) / size * share
        delay = rng.uniform(0.5, left)
        proc = start_cli(home, "ingest", str(catalog))
        time.sleep(delay)
        finished = proc.poll() is not None
        kill9(proc)
        killed += not finished
        n, problems = check_store(home, n)
        counts.append(n)
        found += [f"kill {len(counts)}: {p}" for p in problems]
        log(
            f"ingest kill {len(counts)} after {delay:.1f} s of ~{left:.0f}: {n}/{size} products, "
            f"{'finished before the kill' if finished else 'killed'}, {len(problems)} problems"
        )
    if killed < kills:
        found.append(f"only {killed} of {kills} kills came before ingest finished")
    done = cli(home, "ingest", str(catalog))
    if done.returncode:
        found.append(f"final ingest exited {done.returncode}")
    n, problems = check_store(home, n)
    found += problems
    if n != size:
        found.append(f"{n} products after the final ingest, expected {size}")
    found += search_finds_itself(home, [p for _, p in rows[:: max(1, size // 5)][:5]])
    return {
        "catalog": size,
        "whole_run_s": round(whole, 1),
        "kills_mid_run": killed,
        "products_after_each_kill": counts,
        "problems": found,
    }


# ---- kill -9 of the API server during writes ---------------------------------------------


@dataclass
class Ledger:
    """Acknowledged writes: sku -> its title, or None once its DELETE was acknowledged;
    ``doubt`` holds the writes in flight at the kill (either outcome is allowed)."""

    state: dict[str, str | None] = field(default_factory=dict)
    doubt: dict[str, set[str | None]] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)
    acknowledged: int = 0


def write_stream(
    base: str, ledger: Ledger, photos: list[Path], rng: random.Random, stop: threading.Event
) -> None:
    """Creates, updates and deletes in a loop until the server dies or ``stop`` is set."""
    client = httpx.Client(base_url=base, headers=AUTH, timeout=30)
    while not stop.is_set():
        live = [s for s, t in ledger.state.items() if t is not None and s not in ledger.doubt]
        op = rng.choice(["create", "create", "update", "delete"]) if live else "create"
        sku = f"w{len(ledger.state):05d}" if op == "create" else rng.choice(live)
        before = ledger.state.get(sku)
        title = f"{op} {time.time_ns()}"
        after: str | None = None if op == "delete" else title
        ledger.doubt[sku] = {before, after}
        try:
            if op == "create":
                photo = photos[len(ledger.state) % len(photos)]
                ledger.images[sku] = photo
                files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
                r = client.post("/api/v1/products", data={"sku": sku, "title": title}, files=files)
            elif op == "update":
                r = client.put(f"/api/v1/products/{sku}", data={"title": title})
            else:
                r = client.delete(f"/api/v1/products/{sku}")
        except httpx.HTTPError:
            break  # the server died mid-request: this write stays in doubt
        if r.status_code >= 300:
            raise RuntimeError(f"{op} {sku}: {r.status_code} {r.text[:300]}")
        ledger.state[sku] = after
        ledger.acknowledged += 1
        del ledger.doubt[sku]
    client.close()


def verify_writes(server: Server, ledger: Ledger, seed: int) -> list[str]:
    """Every acknowledged write is visible after the restart, in the database and in
    search; then the in-doubt writes are settled to what the server shows."""
    out = []
    client = httpx.Client(base_url=server.base, timeout=30)
    # A create in flight at the kill is in ``doubt`` only: it may or may not exist.
    for sku in [*ledger.state, *(s for s in ledger.doubt if s not in ledger.state)]:
        r = client.get(f"/api/v1/products/{sku}")
        shown = r.json().get("title") if r.status_code == 200 else None
        allowed = ledger.doubt.get(sku, {ledger.state.get(sku)})
        if shown not in allowed:
            out.append(f"{sku}: expected title {allowed}, server shows {shown!r} ({r.status_code})")
        ledger.state[sku] = shown
    ledger.doubt.clear()
    skus: list[str] = []
    page = 1
    while True:
        body = client.get("/api/v1/products", params={"page": page, "page_size": 200}).json()
        skus += [p["sku"] for p in body["items"]]
        if page * 200 >= body["total"]:
            break
        page += 1
    if len(skus) != len(set(skus)):
        out.append(f"{len(skus) - len(set(skus))} SKUs listed twice")
    present = sum(t is not None for t in ledger.state.values())
    if len(skus) != seed + present:
        out.append(f"{len(skus)} products listed, expected {seed} + {present}")
    for sku, title in list(ledger.state.items())[-12:]:  # the latest writes, in search
        photo = ledger.images[sku]
        files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
        r = client.post("/api/v1/search", files=files, data={"k": "20"})
        if r.status_code != 200:
            out.append(f"search with {sku}'s photo: {r.status_code}")
            continue
        hits = {h["product"]["sku"] for h in r.json()["results"]}
        if title is None and sku in hits:
            out.append(f"deleted {sku} still returned by search")
        if title is not None and sku not in hits and _sha(photo) not in _shas(client, hits):
            out.append(f"{sku} not found by search with its own photo")
    client.close()
    return out


def _shas(client: httpx.Client, skus: set[str]) -> set[str]:
    """The sha256 of each product's stored image (as the API serves it)."""
    return {hashlib.sha256(client.get(f"/api/v1/images/{s}").content).hexdigest() for s in skus}


def server_kills(
    home: Home,
    rounds: int,
    rng: random.Random,
    work: Path,
    seed_size: int = 40,
    write_s: tuple[float, float] = (2, 8),
) -> dict[str, object]:
    """``rounds`` times: start the server, check the previous round's acknowledged writes,
    write for a random ``write_s`` seconds, kill -9 it mid-stream, check the database and
    index. ``seed_size`` dev photos are ingested first."""
    seed_rows = dev_photos(seed_size)
    ingest(home, seed_rows)
    seeded = {sku for sku, _ in seed_rows}
    photos = [p for sku, p in dev_photos(400, start=5) if sku not in seeded]
    ledger, found, writes = Ledger(), [], []
    for k in range(rounds + 1):
        server = start_server(home, work / "server.log")
        try:
            found += [f"round {k}: {p}" for p in verify_writes(server, ledger, len(seed_rows))]
            if k == rounds:
                break
            stop = threading.Event()
            before = ledger.acknowledged
            writer = threading.Thread(
                target=write_stream, args=(server.base, ledger, photos, rng, stop), daemon=True
            )
            writer.start()
            time.sleep(rng.uniform(*write_s))
            kill9(server.proc)
            stop.set()
            writer.join(60)
        finally:
            if server.proc.poll() is None:
                stop_server(server)
        writes.append(ledger.acknowledged - before)
        _, problems = check_store(home)
        found += [f"kill {k + 1}: {p}" for p in problems]
        log(
            f"server kill {k + 1}/{rounds}: {writes[-1]} writes acknowledged before it, "
            f"{len(ledger.doubt)} in flight, {len(problems)} problems"
        )
    _, problems = check_store(home)
    found += problems
    return {"acknowledged_per_round": writes, "problems": found}


# ---- kill -9 during models activate --------------------------------------------------------


def activate_kills(
    home: Home, size: int, kills: int, rng: random.Random, targets: tuple[str, str]
) -> dict[str, object]:
    """Kill ``lookalike models activate`` (a full re-embed, switching between the two
    ``targets``; the second one is the model a new catalog gets) ``kills`` times; after
    each: the catalog uses the old model or the new one, wholly; index check agrees;
    search finds a product's own photo. Then a complete switch."""
    rows = dev_photos(size, start=2)
    ingest(home, rows)
    probe = [p for _, p in rows[:: max(1, size // 3)][:3]]
    found: list[str] = []
    versions = {targets[1]: str(db_facts(home.url).active)}
    # A complete switch to the first target: its version, and how long a whole run takes.
    t0 = time.perf_counter()
    done = cli(home, "models", "activate", targets[0])
    full = time.perf_counter() - t0
    versions[targets[0]] = str(db_facts(home.url).active)
    if done.returncode or versions[targets[0]] == versions[targets[1]]:
        found.append(f"activate {targets[0]}: rc {done.returncode}, versions {versions}")
    attempts = killed = 0
    while killed < kills and attempts < 3 * kills:
        attempts += 1
        before = str(db_facts(home.url).active)
        target = targets[0] if before == versions[targets[1]] else targets[1]  # the other one
        proc = start_cli(home, "models", "activate", target)
        delay = rng.uniform(1.0, max(1.5, full * 0.9))
        time.sleep(delay)
        finished = proc.poll() is not None
        kill9(proc)
        killed += not finished
        active = str(db_facts(home.url).active)
        problems = []
        if active not in (before, versions[target]):
            problems.append(f"active model {active}, neither {before} nor {versions[target]}")
        _, checked = check_store(home)
        problems += checked + search_finds_itself(home, probe)
        found += [f"kill {attempts}: {p}" for p in problems]
        state = "switched" if active != before else "not switched"
        log(
            f"activate {target} kill {attempts} after {delay:.1f} s: {state}"
            f"{' (finished before the kill)' if finished else ''}, {len(problems)} problems"
        )
    if killed < kills:
        found.append(f"only {killed} of {kills} kills came before activate finished")
    before = str(db_facts(home.url).active)
    last = targets[0] if before == versions[targets[1]] else targets[1]
    last = targets[kills % 2]
    done = cli(home, "models", "activate", last)
    facts = db_facts(home.url)
    if done.returncode or facts.active != versions[last]:
        found.append(f"final activate {last}: rc {done.returncode}, active {facts.active}")
    if len(facts.versions) != 1:
        found.append(f"vectors of several models left behind: {facts.versions}")
    _, problems = check_store(home)
    found += problems + search_finds_itself(home, probe)
    return {
        "catalog": size,
        "targets": list(targets),
        "full_switch_s": round(full, 1),
        "kills_mid_run": killed,
        "attempts": attempts,
        "problems": found,
    }


def run(
    databases: list[str],
    kills: int,
    size: int,
    rounds: int,
    activate_size: int,
    seed: int,
    work: Path,
    targets: tuple[str, str] = ("lite2", DEFAULT_MODEL),
    scenarios: tuple[str, ...] = ("ingest", "server", "activate"),
) -> dict[str, object]:
    """The scenarios on every database; the report (``problems`` empty when all held)."""
    rng = random.Random(seed)
    report: dict[str, object] = {"machine": machine(), "seed": seed}
    for db in databases:
        plan: dict[str, Callable[[Home], dict[str, object]]] = {
            "ingest": lambda h: ingest_kills(h, size, kills, rng),
            "server": lambda h: server_kills(h, rounds, rng, work),
            "activate": lambda h: activate_kills(h, activate_size, kills, rng, targets),
        }
        for name, scenario in plan.items():
            if name not in scenarios:
                continue
            log(f"{db}: kill -9 during {name}")
            t0 = time.perf_counter()
            with database(db, work / f"{db}-{name}") as home:
                result = scenario(home)
            result["seconds"] = round(time.perf_counter() - t0)
            report[f"{db}/{name}"] = result
    report["problems"] = [
        f"{key}: {p}"
        for key, value in report.items()
        if isinstance(value, dict)
        for p in value["problems"]
    ]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--catalog", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5, help="server kills")
    parser.add_argument("--activate-catalog", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--scenarios", default="ingest,server,activate")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "reliability")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-crash-") as tmp:
        report = run(
            args.databases.split(","),
            args.kills,
            args.catalog,
            args.rounds,
            args.activate_catalog,
            args.seed,
            Path(tmp),
            scenarios=tuple(args.scenarios.split(",")),
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crash.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    if report["problems"]:
        raise SystemExit(f"{len(report['problems'])} problems")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
