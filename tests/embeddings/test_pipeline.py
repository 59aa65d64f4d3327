from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.config import Settings
from lookalike.embeddings import create_embedder, embed_stream
from lookalike.errors import NotAnImageError
from lookalike.images.loader import LoadedImage


def test_stream_embeds_good_items_and_reports_bad_ones(settings: Settings) -> None:
    emb = create_embedder(settings)
    rng = np.random.default_rng(0)

    def load(i: int) -> LoadedImage:
        if i % 4 == 3:
            raise NotAnImageError(f"item-{i}", "not a recognised image format")
        pil = Image.fromarray(rng.integers(0, 255, (50, 40, 3), dtype=np.uint8))
        return LoadedImage(pil, f"{i:064d}", "PNG", 40, 50)

    results = list(embed_stream(emb, range(10), load, batch_size=3, workers=2))
    assert sorted(r.item for r in results) == list(range(10))
    bad = {r.item for r in results if r.error is not None}
    assert bad == {3, 7}
    good = [r for r in results if r.error is None]
    assert all(r.vector is not None and r.vector.shape == (emb.dim,) for r in good)
    assert all(r.sha256 == f"{r.item:064d}" for r in good)
