"""MicroBatcher: batches, parallel streams, errors reach every waiter."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from lookalike.api.batcher import MicroBatcher
from lookalike.config import Settings
from lookalike.embeddings.embedder import Embedder, PreparedImage, create_embedder
from lookalike.images.loader import load_image


class _Gate:
    """Stands in for the model where the test is about threads, not vectors: each call
    waits until ``parties`` calls are inside at once (or fails after a timeout)."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=5)
        self.sizes: list[int] = []

    def embed_prepared(self, images: list[PreparedImage]) -> np.ndarray:
        self.sizes.append(len(images))
        self.barrier.wait()
        return np.zeros((len(images), 4), np.float32)


def _as_embedder(fake: object) -> Embedder:
    """A stand-in model as the Embedder MicroBatcher takes: the fakes here implement
    only ``embed_prepared``, the one method it calls."""
    return cast(Embedder, fake)


async def _embed_all(
    batcher: MicroBatcher, items: list[PreparedImage], model: Embedder
) -> list[np.ndarray]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.embed(i, model) for i in items))
    finally:
        await batcher.stop()


def test_two_streams_run_two_batches_at_once() -> None:
    gate = _Gate(parties=2)  # a second batch must start while the first still runs
    items = [PreparedImage(None, None) for _ in range(4)]
    vectors = asyncio.run(_embed_all(MicroBatcher(2, 50, streams=2), items, _as_embedder(gate)))
    assert len(vectors) == 4 and sorted(gate.sizes) == [2, 2]


def test_one_stream_runs_batches_one_after_another() -> None:
    # Also stops cleanly while the next batch is being collected (it once hung there).
    gate = _Gate(parties=2)
    gate.barrier = threading.Barrier(2, timeout=0.5)
    items = [PreparedImage(None, None) for _ in range(4)]
    with pytest.raises(threading.BrokenBarrierError):
        asyncio.run(_embed_all(MicroBatcher(2, 50, streams=1), items, _as_embedder(gate)))


def test_batched_streams_give_the_same_vectors_as_one_call(
    settings: Settings, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    embedder = create_embedder(settings.for_api())
    prepared = [
        embedder.prepare(
            load_image(
                (dataset / r["file"]).read_bytes(), r["file"], max_pixels=settings.max_image_pixels
            )
        )
        for r in dataset_rows[:10]
    ]
    batcher = MicroBatcher(3, 20, streams=2)
    got = asyncio.run(_embed_all(batcher, prepared, embedder))
    assert np.allclose(np.stack(got), embedder.embed_prepared(prepared), atol=1e-5)


def test_a_failing_batch_fails_its_waiters_and_the_batcher_goes_on() -> None:
    class Flaky:
        calls = 0

        def embed_prepared(self, images: list[PreparedImage]) -> np.ndarray:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("model failed")
            return np.ones((len(images), 4), np.float32)

    async def run() -> tuple[tuple[np.ndarray | BaseException, ...], np.ndarray]:
        batcher = MicroBatcher(2, 20, streams=2)
        await batcher.start()
        try:
            model = _as_embedder(Flaky())
            item = PreparedImage(None, None)
            first = await asyncio.gather(
                batcher.embed(item, model),
                batcher.embed(item, model),
                return_exceptions=True,
            )
            return first, await batcher.embed(item, model)
        finally:
            await batcher.stop()

    first, after = asyncio.run(run())
    assert all(isinstance(e, RuntimeError) for e in first)
    assert after.tolist() == [1, 1, 1, 1]


def test_api_settings_share_the_cores_between_streams() -> None:
    s = Settings(_env_file=None)
    api = s.for_api()
    assert api.api_streams >= 1 and api.threads >= 1
    assert api.threads * api.api_streams <= max(s.onnx_threads, api.api_streams)
    pinned = Settings(threads=3, _env_file=None)
    assert pinned.for_api().threads == 3  # an explicit setting wins
