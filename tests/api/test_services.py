"""Periodic jobs of the API server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from lookalike.api.services import every


def test_a_failing_periodic_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    def job() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise OSError("disk gone")

    async def main() -> None:
        task = asyncio.create_task(every(0.01, job))
        while len(runs) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 10))
    assert len(runs) >= 3
    assert "periodic job job failed" in caplog.text and "disk gone" in caplog.text
