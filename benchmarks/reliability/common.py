"""Real processes for the reliability runs: the API server, the CLI, databases, RSS."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from benchmarks import common
from benchmarks.common import DATASET, Server

API_KEY = "reliability-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
POSTGRES_ADMIN_URL = os.environ.get(
    "LOOKALIKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# One ONNX export shared by every run (keyed by the weights' digest, so sharing is safe).
MODEL_CACHE = Path(
    os.environ.get(
        "LOOKALIKE_MODEL_CACHE", Path(tempfile.gettempdir()) / "lookalike-reliability-models"
    )
)
LOOKALIKE = str(Path(sys.executable).with_name("lookalike"))


def log(message: str) -> None:
    """Progress on stderr, flushed at once (long runs must show they are alive)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Home:
    """A lookalike data folder and the database it uses (SQLite inside it by default)."""

    path: Path
    database_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The environment a CLI call or server on this home runs with."""
        env = {
            **os.environ,
            "LOOKALIKE_HOME": str(self.path),
            "LOOKALIKE_MODEL_CACHE": str(MODEL_CACHE),
            "LOOKALIKE_API_KEYS": API_KEY,
            "COLUMNS": "400",  # rich: one failure per line, never wrapped
            **self.extra,
        }
        if self.database_url:
            env["LOOKALIKE_DATABASE_URL"] = self.database_url
        return env

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.path / 'catalog.db').resolve()}"


def cli(home: Home, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``lookalike ARGS`` on ``home`` to the end; output captured."""
    return subprocess.run(
        [LOOKALIKE, *args], env=home.env(), capture_output=True, text=True, timeout=timeout
    )


def start_cli(home: Home, *args: str) -> subprocess.Popen[bytes]:
    """Start ``lookalike ARGS`` on ``home`` in the background (to be killed)."""
    return subprocess.Popen(
        [LOOKALIKE, *args],
        env=home.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def index_check(home: Home) -> dict[str, object]:
    """``lookalike index check --json`` as a dict (with the exit code under ``rc``)."""
    done = cli(home, "index", "check", "--json")
    start = done.stdout.find("{")
    report: dict[str, object] = json.loads(done.stdout[start:]) if start >= 0 else {}
    report["rc"] = done.returncode
    if start < 0:
        report["stderr"] = done.stderr[-2000:]
    return report


def write_catalog(path: Path, rows: list[tuple[str, Path]]) -> Path:
    """A CSV catalog of (sku, image path) rows."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image", "title", "category"])
        for sku, image in rows:
            w.writerow([sku, image, f"product {sku}", "test"])
    return path


def dev_photos(count: int, start: int = 0) -> list[tuple[str, Path]]:
    """(sku, path) of ``count`` dev photos, spread over the whole set from ``start``."""
    from benchmarks.common import dev_rows

    rows = dev_rows()
    step = max(1, len(rows) // max(count, 1))
    picked = (rows[start % step :: step] if step > 1 else rows)[:count]
    return [(r["id"], DATASET / r["file"]) for r in picked]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    name = f"lookalike_rel_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.engine.make_url(POSTGRES_ADMIN_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        with sa.create_engine(POSTGRES_ADMIN_URL).connect():
            return True
    except Exception:
        return False


@dataclass(frozen=True)
class Facts:
    """What a database holds, read with plain SQL."""

    skus: list[str]
    without_vector: int  # products without a vector for the active model
    active: str | None  # the active model version
    versions: list[str]  # model versions that have vectors

    @property
    def duplicates(self) -> int:
        return len(self.skus) - len(set(self.skus))


def db_facts(url: str) -> Facts:
    """Products, vectors and the active model version in the database at ``url``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            skus = [r[0] for r in conn.execute(sa.text("SELECT sku FROM products"))]
            state = {k: v for k, v in conn.execute(sa.text("SELECT key, value FROM state"))}
            active = state.get("active_model_version")
            bare = conn.execute(
                sa.text(
                    "SELECT count(*) FROM products p WHERE NOT EXISTS (SELECT 1 FROM "
                    "embeddings e WHERE e.product_id = p.id AND e.model_version = :v)"
                ),
                {"v": active},
            ).scalar_one()
            versions = [
                r[0] for r in conn.execute(sa.text("SELECT DISTINCT model_version FROM embeddings"))
            ]
    finally:
        engine.dispose()
    return Facts(skus, int(bare), active, versions)


def start_server(home: Home, log_file: Path, timeout: float = 120) -> Server:
    """Start the real server on ``home`` (its output appended to ``log_file``) and wait
    until /readyz answers 200."""
    return common.start_server(home.env(), log_file, timeout)


def stop_server(server: Server) -> int:
    """Stop the server gracefully (SIGTERM); its exit code (-9: it had to be killed)."""
    return server.stop()


@contextmanager
def running_server(home: Home, log_file: Path) -> Iterator[Server]:
    """A server on ``home`` for the duration of a block."""
    with common.running_server(home.env(), log_file) as server:
        yield server


def ingest(home: Home, rows: list[tuple[str, Path]]) -> subprocess.CompletedProcess[str]:
    """Ingest (sku, image) rows with the CLI on ``home``."""
    home.path.mkdir(parents=True, exist_ok=True)
    catalog = write_catalog(home.path / "seed.csv", rows)
    done = cli(home, "ingest", str(catalog))
    if done.returncode != 0:
        raise RuntimeError(f"ingest failed: {done.stderr[-2000:]}")
    return done
