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
    embeds them in one call on a dedicated inference thread, off the event loop."""

    def __init__(
        self,
        max_batch: int,
        max_wait_ms: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._on_batch = on_batch or (lambda n: None)
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False)

    async def embed(self, image: PreparedImage, embedder: Embedder) -> np.ndarray:
        """The embedding of one prepared image by ``embedder`` (batched with concurrent
        callers of the same embedder)."""
        assert self._queue is not None, "batcher not started"
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put((image, embedder, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch: list[_Item] = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    # Take whatever is already waiting, without waiting longer.
                    while len(batch) < self.max_batch and not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            groups: dict[int, list[_Item]] = {}
            for item in batch:  # one model call per embedder (two only during a switch)
                if not item[2].cancelled():
                    groups.setdefault(id(item[1]), []).append(item)
            for live in groups.values():
                await self._embed_group(live)

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
