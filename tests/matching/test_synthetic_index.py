"""The helpers that grow a descriptor index with synthetic products for the 1M benchmark
(benchmarks/photo_scale_synthetic.py): codes written as FAISS writes them, descriptors
moved but still RootSIFT, and the plot with synthetic points."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
from PIL import Image

from benchmarks.photo_scale import plot
from benchmarks.photo_scale_synthetic import Noise, _list_bytes, encode
from lookalike.matching.descriptor_index import DescriptorIndex, DescriptorManifest


def _rootsift(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.gamma(0.3, size=(n, 128)).astype(np.float32)
    x /= x.sum(axis=1, keepdims=True)
    return np.sqrt(x)


@pytest.mark.parametrize("nlist", [2, 256, 257, 65536, 65537])
def test_list_bytes_is_faiss_coarse_code_size(nlist: int) -> None:
    ivf = faiss.IndexIVFPQ(faiss.IndexFlatL2(128), 128, nlist, 16, 8)
    assert _list_bytes(nlist) == ivf.coarse_code_size()  # type: ignore[attr-defined]


def test_encoded_codes_are_faiss_codes_and_vote_like_added_ones() -> None:
    rng = np.random.default_rng(0)
    x = _rootsift(20_000, rng)
    ivf = faiss.IndexIVFPQ(faiss.IndexFlatL2(128), 128, 300, 16, 8)
    ivf.train(x)
    ivf.nprobe = 4
    centroids = ivf.quantizer.reconstruct_n(0, 300)
    _, nearest = ivf.quantizer.search(centroids, 3)
    _, lists = ivf.quantizer.search(x[:500], 1)
    # Given the list's neighbours, each lands in its nearest one: FAISS's own encoding.
    codes = encode(ivf, centroids, x[:500], nearest[lists[:, 0]])
    assert np.array_equal(codes, ivf.sa_encode(x[:500]))
    # Added under product ids, the codes are found as descriptors added by add_with_ids are.
    ids = np.repeat(np.arange(50, dtype=np.int64), 10)
    ivf.add_sa_codes(codes, ids)
    index = DescriptorIndex(
        ivf, DescriptorManifest("test", "ivfpq", 0, 0, "", nlist=300), dict.fromkeys(range(50), 10)
    )
    votes = index.votes(x[:10], 3)
    assert votes[0].product_id == 0


def test_noise_keeps_rootsift_and_moves_by_about_the_distance() -> None:
    rng = np.random.default_rng(1)
    x = _rootsift(5_000, rng)
    moved = Noise(0.15)(x, rng)
    assert (moved >= 0).all()
    assert np.allclose(np.linalg.norm(moved, axis=1), 1, atol=1e-4)
    assert 0.08 < float(np.median(np.linalg.norm(moved - x, axis=1))) < 0.2


def test_plot_marks_synthetic_steps(tmp_path: Path) -> None:
    def step(products: int, synthetic: int, ms: float) -> dict[str, object]:
        path = {"p50_ms": ms, "p99_ms": ms * 1.3, "r1": 1.0}
        return {"products": products, "synthetic": synthetic, "two_stage": path, "global": path}

    out = tmp_path / "scale.png"
    plot([step(3046, 0, 120), step(100_000, 96_954, 200), step(1_000_000, 996_954, 400)], out)
    with Image.open(out) as img:
        assert img.size == (900, 360)
