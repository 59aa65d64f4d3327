"""Micro-batching: concurrent search requests share one model call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lookalike.embeddings.embedder import Embedder, PreparedImage

_Item = tuple[PreparedImage, Embedder, "asyncio.Future[np.ndarray]"]


class MicroBatcher:
    """Collects prepared images for up to ``max_wait_ms`` (or ``max_batch`` items) and
    embeds them in one call on an inference thread, off the event loop. With no wait, a
    batch holds the requests that queued while the model was busy: batches grow with
    the load, and a lone request never waits for company.

    Up to ``streams`` batches run at once, each on its own thread (ONNX Runtime runs
    one session from several threads). On a CPU, two streams with half the cores each
    keep the cores busy while the other stream's batch is being collected or answered:
    one stream with all cores leaves them idle between batches and at its barriers.
    """

    def __init__(
        self,
        max_batch: int,
        max_wait_ms: float,
        on_batch: Callable[[int], None] | None = None,
        streams: int = 1,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._on_batch = on_batch or (lambda n: None)
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._streams = streams
        self._free: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(streams, thread_name_prefix="inference")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._free = asyncio.Semaphore(self._streams)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._running):
            task.cancel()
        self._executor.shutdown(wait=False)

    async def embed(self, image: PreparedImage, embedder: Embedder) -> np.ndarray:
        """The embedding of one prepared image by ``embedder`` (batched with concurrent
        callers of the same embedder)."""
        assert self._queue is not None, "batcher not started"
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put((image, embedder, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None and self._free is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()  # collect the next batch once a stream is free
            batch: list[_Item] = [await self._queue.get()]
            if self.max_wait > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel
                # that arrives with the item, and stop() would then wait forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(loop.time() + self.max_wait):
                        while len(batch) < self.max_batch:
                            batch.append(await self._queue.get())
            # Take whatever is already waiting, without waiting longer.
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._embed_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _embed_batch(self, batch: list[_Item]) -> None:
        assert self._free is not None
        try:
            groups: dict[int, list[_Item]] = {}
            for item in batch:  # one model call per embedder (two only during a switch)
                if not item[2].cancelled():
                    groups.setdefault(id(item[1]), []).append(item)
            for live in groups.values():
                await self._embed_group(live)
        finally:
            self._free.release()

    async def _embed_group(self, live: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        self._on_batch(len(live))
        try:
            vectors = await loop.run_in_executor(
                self._executor, live[0][1].embed_prepared, [img for img, _, _ in live]
            )
        except Exception as exc:  # every waiter gets the error, the loop goes on
            for _, _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, _, fut), vec in zip(live, vectors, strict=True):
            if not fut.done():
                fut.set_result(vec)
