"""How many threads the libraries underneath may start, for a process that searches.

A search is many small matrix products (a photo's 600-1,000 descriptors against a
candidate's 400 in verification, stored vectors against each other when grouping), run
side by side for concurrent requests. NumPy's OpenBLAS splits each one over every core
and its threads spin-wait between calls: on two cores, verifying one candidate cost 5.2
core-ms against 0.74 on one thread, and a whole photo search (dev catalog, one at a
time, another job busy on the machine) 74-78 core-ms against 49-55. Parallelism comes
from the requests, not from inside one product.

OpenCV's thread pool splits every SIFT pass, resize, warp and colour conversion, most of
them on pictures of a few hundred pixels. It gets the model's share of the cores
(``Settings.onnx_threads``): one in the API server, whose requests run side by side (the
appearance check cost 1.9 core-ms against 2.4, a dev photo's SIFT 11.3 against 11.8, a
phone-photo search 148-157 core-ms against 178), all of them for one search at a time
(CLI, benchmarks), where a phone photo's SIFT on two threads finishes sooner (SMVS through
the API, one client: p50 121 against 136 ms with one thread).

FAISS's own BLAS is left alone: it follows FAISS's OpenMP threads, which
index/vector_index.py keeps at one for queries and at every core for builds.
"""

from __future__ import annotations

from pathlib import Path

import cv2
from threadpoolctl import ThreadpoolController


def limit_threads(opencv: int) -> None:
    """From now on, process-wide: NumPy's BLAS on one thread, OpenCV's functions on
    ``opencv`` threads each (FAISS keeps its own)."""
    cv2.setNumThreads(opencv)
    controller = ThreadpoolController()
    others = [
        lib.filepath
        for lib in controller.lib_controllers
        if lib.user_api == "blas" and not Path(lib.filepath).parent.name.startswith("faiss")
    ]
    if others:
        controller.select(filepath=others).limit(limits=1)
