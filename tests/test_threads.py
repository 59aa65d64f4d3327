"""An engine runs NumPy's BLAS on one thread, OpenCV on the model's share of the cores, and
leaves FAISS's threads to FAISS."""

from __future__ import annotations

from pathlib import Path

import cv2
import faiss  # noqa: F401  (its BLAS loaded, to be left alone)
import numpy as np
from threadpoolctl import ThreadpoolController

from lookalike.config import Settings
from lookalike.engine import Engine


def _blas_threads() -> dict[str, int]:
    """Threads of each loaded BLAS, by the folder its library lies in."""
    return {
        Path(lib["filepath"]).parent.name: lib["num_threads"]
        for lib in ThreadpoolController().info()
        if lib["user_api"] == "blas"
    }


def test_engine_runs_numpy_blas_on_one_thread(settings: Settings) -> None:
    np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)  # NumPy's BLAS is loaded
    blas = ThreadpoolController().select(user_api="blas")
    with blas.limit(limits=2):  # as a fresh process on two cores has it
        faiss_before = {k: v for k, v in _blas_threads().items() if k.startswith("faiss")}
        engine = Engine(settings)
        try:
            threads = _blas_threads()
        finally:
            engine.close()
    numpy_libs = [k for k in threads if k.startswith("numpy")]
    assert numpy_libs, f"NumPy's BLAS not found among {threads}"
    assert all(threads[k] == 1 for k in numpy_libs)
    # FAISS's BLAS follows its OpenMP threads (every core for builds): untouched.
    assert {k: v for k, v in threads.items() if k.startswith("faiss")} == faiss_before


def test_engine_gives_opencv_the_model_s_share_of_the_cores(settings: Settings) -> None:
    # The API server's share (Settings.for_api: one core an inference stream on two)...
    cv2.setNumThreads(2)  # as a fresh process on two cores has it
    Engine(settings.model_copy(update={"threads": 1})).close()
    assert cv2.getNumThreads() == 1
    # ...and one search at a time gets them all.
    Engine(settings.model_copy(update={"threads": 2})).close()
    assert cv2.getNumThreads() == 2
