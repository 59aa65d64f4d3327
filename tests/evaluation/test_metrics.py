from __future__ import annotations

import numpy as np
import pytest

from lookalike.evaluation.metrics import leave_one_out


def _vectors(points: list[list[float]]) -> np.ndarray:
    v = np.asarray(points, dtype=np.float32)
    unit: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit


def test_map_at_r_by_hand() -> None:
    # Query 0 (A) has two other A's (R=2). Ranking from 0: 1 (A), 3 (B), 2 (A).
    vectors = _vectors([[1, 0], [0.99, 0.14], [0.2, 0.98], [0.9, 0.44]])
    result = leave_one_out(vectors, ["A", "A", "A", "B"], ["red", "red", "blue", "red"])
    q0 = result.queries[0]
    assert q0.neighbors[:3] == [1, 3, 2]
    assert q0.map_at_r == pytest.approx((1 / 1 + 0) / 2)  # P(1)=1 at rank 1, miss at rank 2
    assert q0.precision[1] == 1.0
    assert q0.color_match == pytest.approx(2 / 3)  # top list has only 3 others
    # B has no other member: it is not scored.
    assert np.isnan(result.queries[3].map_at_r)
    assert result.overall.queries == 3
    assert set(result.per_category) == {"A"}


def test_perfect_and_random_embeddings() -> None:
    rng = np.random.default_rng(0)
    labels = [str(i % 5) for i in range(200)]
    centres = rng.normal(size=(5, 16))
    good = _vectors(
        (centres[[i % 5 for i in range(200)]] + 0.01 * rng.normal(size=(200, 16))).tolist()
    )
    bad = _vectors(rng.normal(size=(200, 16)).tolist())
    assert leave_one_out(good, labels).overall.map_at_r > 0.99
    r = leave_one_out(bad, labels).overall
    assert r.map_at_r < 0.35 and abs(r.precision[10] - 0.2) < 0.08


def test_identical_images_are_not_counted_as_found() -> None:
    vectors = _vectors([[1, 0], [1, 0], [0.7, 0.7], [0, 1]])
    result = leave_one_out(vectors, ["A", "A", "A", "B"], duplicate_keys=["x", "x", "y", "z"])
    # 0 and 1 are one image: neither may find the other; each looks for item 2 only.
    assert 1 not in result.queries[0].neighbors
    assert result.queries[0].map_at_r == 1.0
