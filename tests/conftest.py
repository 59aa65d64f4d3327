"""Shared fixtures: settings on a temporary home, the dev data slice, databases."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.config import Settings
from lookalike.store import CatalogStore

REPO = Path(__file__).resolve().parents[1]
DATASET = (
    Path(os.environ.get("LOOKALIKE_DATASETS", REPO.parent / "shared" / "datasets"))
    / "fashion-products-dev"
)
SMVS = DATASET.parent / "smvs-dvd-covers"
SLICE_SIZE = 200
POSTGRES_ADMIN_URL = os.environ.get(
    "LOOKALIKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# The app's own settings (LOOKALIKE_THREADS, LOOKALIKE_HOME, ...) from the developer's
# shell must not reach the tests (a set LOOKALIKE_THREADS=2 once failed test_batcher):
# each test states the settings it needs. The test suite's own switches (data folder,
# LOOKALIKE_REQUIRE_*) are not settings and stay.
SETTING_VARIABLES = {f"LOOKALIKE_{name.upper()}" for name in Settings.model_fields}
for _name in SETTING_VARIABLES & set(os.environ):
    del os.environ[_name]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export for the whole test session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings(tmp_path: Path, model_cache: Path) -> Settings:
    return Settings(home=tmp_path / "home", model_cache=model_cache, _env_file=None)


def _shared(folder: Path) -> Path:
    """A shared data set's folder, or a skip that says where it was looked for."""
    if not (folder / "labels.csv").exists():
        pytest.skip(
            f"data set not found at {folder} (set LOOKALIKE_DATASETS to the folder "
            f"holding {folder.name})"
        )
    return folder


@pytest.fixture(scope="session")
def dataset() -> Path:
    """The fashion dev set (2,946 catalog photos)."""
    return _shared(DATASET)


@pytest.fixture(scope="session")
def dataset_rows(dataset: Path) -> list[dict[str, str]]:
    with (dataset / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    # Every 14th row: a slice spread over the whole set (many categories), not its head.
    return rows[:: max(1, len(rows) // SLICE_SIZE)][:SLICE_SIZE]


@pytest.fixture(scope="session")
def smvs() -> Path:
    """The SMVS phone-photo set (catalog images and phone photos of 100 DVD covers)."""
    return _shared(SMVS)


def write_catalog(
    path: Path, dataset: Path, rows: list[dict[str, str]], first_price: float = 10
) -> Path:
    """A CSV catalog of dev-set rows (images stay in the shared folder); prices count up
    from ``first_price`` EUR so price filters have something to filter."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image", "title", "category", "price", "currency", "color"])
        for i, r in enumerate(rows):
            image = dataset / r["file"]
            w.writerow(
                [r["id"], image, r["title"], r["category"], first_price + i, "EUR", r["color"]]
            )
    return path


def append_copies(catalog: Path, photo: Path) -> set[str]:
    """Append a mirrored and a re-encoded (JPEG quality 40) copy of ``photo`` to a CSV
    catalog under SKUs copy-mirror and copy-jpeg, written beside the catalog; their SKUs."""
    from PIL import Image, ImageOps

    with Image.open(photo) as opened:
        rgb = opened.convert("RGB")
    ImageOps.mirror(rgb).save(catalog.parent / "mirror.jpg", quality=90)
    rgb.save(catalog.parent / "jpeg.jpg", quality=40)
    with catalog.open("a") as f:
        for kind in ("mirror", "jpeg"):
            f.write(f"copy-{kind},{catalog.parent / f'{kind}.jpg'},A {kind} copy,,,,\n")
    return {"copy-mirror", "copy-jpeg"}


@pytest.fixture
def slice_catalog(tmp_path: Path, dataset: Path, dataset_rows: list[dict[str, str]]) -> Path:
    """A CSV catalog of the 200-image slice."""
    return write_catalog(tmp_path / "catalog.csv", dataset, dataset_rows)


def _postgres_available() -> bool:
    import sqlalchemy as sa

    try:
        with sa.create_engine(POSTGRES_ADMIN_URL).connect():
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the session (dropped afterwards)."""
    import sqlalchemy as sa

    if not _postgres_available():
        if os.environ.get("LOOKALIKE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    name = f"lookalike_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import sqlalchemy as sa

    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[CatalogStore]:
    """A catalog store on each database (see ``database_url``)."""
    s = CatalogStore(database_url)
    yield s
    s.close()
