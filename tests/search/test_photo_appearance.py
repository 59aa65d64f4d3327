"""The appearance check inside photo search: a geometric match whose catalog image does
not look like the photo is listed, but not as the exact match; a catalog image that can
no longer be read leaves the verdict to geometry."""

from __future__ import annotations

from pathlib import Path

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import CatalogRecord
from tests.matching.conftest import photograph, poster, recoloured, studio


def _engine(settings: Settings, tmp_path: Path) -> tuple[Engine, Path]:
    images = tmp_path / "catalog"
    images.mkdir()
    records = []
    for seed in (1, 2, 3):
        path = images / f"p{seed}.png"
        poster(seed).save(path)
        records.append(CatalogRecord(f"p{seed}", path, path.name, None, "poster"))
    engine = Engine(settings)
    assert not engine.ingest(records).failed
    photo = tmp_path / "photo.jpg"
    photograph(poster(1), seed=5).save(photo, quality=90)
    return engine, photo


def test_a_match_that_does_not_look_alike_is_not_exact(settings: Settings, tmp_path: Path) -> None:
    engine, photo = _engine(settings, tmp_path)
    (before,) = engine.search_files([photo], k=3)
    assert (before.hits[0].product.sku, before.hits[0].match) == ("p1", "exact")
    engine.close()
    # The stored keypoints still match, but the picture between them is another one (a
    # new process: an engine keeps the catalog pictures it compared, by sha256).
    poster(7).save(tmp_path / "catalog" / "p1.png")
    engine = Engine(settings)
    (after,) = engine.search_files([photo], k=3)
    first = after.hits[0]
    assert (first.product.sku, first.match) == ("p1", "similar")
    assert first.inliers is not None and first.inliers >= 15  # verified, listed first
    engine.close()


def test_an_unreadable_catalog_image_leaves_it_to_geometry(
    settings: Settings, tmp_path: Path
) -> None:
    engine, photo = _engine(settings, tmp_path)
    (tmp_path / "catalog" / "p1.png").unlink()
    (result,) = engine.search_files([photo], k=3)
    assert (result.hits[0].product.sku, result.hits[0].match) == ("p1", "exact")
    engine.close()


def test_another_colourway_is_not_the_exact_match(settings: Settings, tmp_path: Path) -> None:
    # A catalog-style photo (studio white) of a product whose other colourway is listed
    # too: the colourway matches geometrically and by its edges, not by its colour.
    images = tmp_path / "catalog"
    images.mkdir()
    pictures = {"red": studio(poster(1)), "teal": studio(recoloured(poster(1))), "p2": poster(2)}
    records = []
    for sku, picture in pictures.items():
        picture.save(images / f"{sku}.png")
        records.append(CatalogRecord(sku, images / f"{sku}.png", f"{sku}.png", None, "poster"))
    engine = Engine(settings)
    assert not engine.ingest(records).failed
    photo = tmp_path / "photo.jpg"
    pictures["red"].resize((420, 520)).save(photo, quality=60)
    (result,) = engine.search_files([photo], k=3, group=False)
    verdicts = {hit.product.sku: (hit.match, hit.inliers or 0) for hit in result.hits}
    assert verdicts["red"][0] == "exact"
    assert verdicts["teal"][0] == "similar" and verdicts["teal"][1] >= 15
    engine.close()


def test_catalog_pictures_compared_are_kept(settings: Settings, tmp_path: Path) -> None:
    # Read once by sha256 and kept: a second search compares without reading the file.
    engine, photo = _engine(settings, tmp_path)
    engine.search_files([photo], k=3)
    poster(7).save(tmp_path / "catalog" / "p1.png")  # not re-ingested: same sha256
    (result,) = engine.search_files([photo], k=3)
    assert (result.hits[0].product.sku, result.hits[0].match) == ("p1", "exact")
    engine.close()
