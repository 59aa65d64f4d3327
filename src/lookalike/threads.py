"""How many threads the libraries underneath may start, for a process that searches.

A search is many small matrix products (a photo's 600-1,000 descriptors against a
candidate's 400 in verification, stored vectors against each other when grouping), run
side by side for concurrent requests. NumPy's OpenBLAS splits each one over every core
and its threads spin-wait between calls: on two cores, verifying one candidate cost 5.2
core-ms against 0.74 on one thread, and a whole photo search (dev catalog, one at a
time, another job busy on the machine) 74-78 core-ms against 49-55. Parallelism comes
from the requests, not from inside one product.

FAISS's own BLAS is left alone: it follows FAISS's OpenMP threads, which
index/vector_index.py keeps at one for queries and at every core for builds.
"""

from __future__ import annotations

from pathlib import Path

from threadpoolctl import ThreadpoolController


def one_blas_thread() -> None:
    """Run NumPy's (and OpenCV's) BLAS on one thread, process-wide, from now on."""
    controller = ThreadpoolController()
    others = [
        lib.filepath
        for lib in controller.lib_controllers
        if lib.user_api == "blas" and not Path(lib.filepath).parent.name.startswith("faiss")
    ]
    if others:
        controller.select(filepath=others).limit(limits=1)
