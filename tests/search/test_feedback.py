"""Rocchio feedback on stored vectors."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embeddings.embedder import EmbedderConfig
from lookalike.search.aspects import AspectWeights
from lookalike.search.feedback import ALPHA, BETA, GAMMA, Feedback, Refinement, rocchio


def test_rocchio_moves_towards_more_and_away_from_less() -> None:
    rng = np.random.default_rng(0)
    query, more, less = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 32)))
    refined = rocchio(query, more[None], less[None])
    assert np.linalg.norm(refined) == pytest.approx(1.0, abs=1e-5)
    assert refined @ more > query @ more and refined @ less < query @ less
    expected = ALPHA * query + BETA * more - GAMMA * less
    np.testing.assert_allclose(refined, expected / np.linalg.norm(expected), atol=1e-5)
    # Nothing marked: the query as it was.
    none = np.empty((0, 32), np.float32)
    np.testing.assert_allclose(rocchio(query, none, none), query, atol=1e-6)


def test_refinement_weighs_after_it_moves() -> None:
    layout = EmbedderConfig().layout
    rng = np.random.default_rng(1)
    query, more = (v / np.linalg.norm(v) for v in rng.normal(size=(2, layout.parts[-1].stop)))
    plain = Refinement(AspectWeights(colour=1, shape=0))
    moved = Refinement(AspectWeights(colour=1, shape=0), positive=more[None].astype(np.float32))
    q_plain, q_moved = plain.query(query, layout), moved.query(query, layout)
    assert not q_plain[:1280].any() and not q_moved[:1280].any()  # shape weighs 0 in both
    assert not np.allclose(q_plain, q_moved)
    assert not Feedback() and Feedback(positive=("a",))
