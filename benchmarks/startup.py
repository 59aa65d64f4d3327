"""Start-up: how long a CLI call and the API server take before they can answer, their
peak memory, and whether torch was imported on the way.

    python -m benchmarks.startup --home HOME --image IMG [--runs 5]

HOME is an ingested catalog whose ONNX model is already exported (the state of every
call after the first), so the figures are start-up alone. Each case runs in a fresh
interpreter ``--runs`` times; the median and best wall time, the median CPU time and the
peak RSS are reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine

_API_READY = (
    "from fastapi.testclient import TestClient\n"
    "from lookalike.api.app import create_app\n"
    "with TestClient(create_app()):\n"  # runs the lifespan: model and indexes loaded
    "    pass\n"
)
_TORCH_CHECK = (
    "import sys, lookalike.engine, lookalike.api.app, lookalike.cli\n"
    "print('torch' in sys.modules)\n"
)


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one run of
    ``command``. CPU time is the steadier figure on a shared machine."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=output)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            output.seek(0)
            raise SystemExit(f"failed: {' '.join(command)}\n{output.read().decode()}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="an ingested LOOKALIKE_HOME")
    parser.add_argument("--image", type=Path, required=True, help="a query photo")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, LOOKALIKE_HOME=str(args.home))
    python = sys.executable
    cli = shutil.which("lookalike", path=str(Path(python).parent)) or "lookalike"
    cases = {
        "import lookalike.engine": [python, "-c", "import lookalike.engine"],
        "import lookalike.cli": [python, "-c", "import lookalike.cli"],
        "API ready (create_app + lifespan)": [python, "-c", _API_READY],
        f"lookalike search {args.image.name} -k 5 --json": [
            cli,
            "search",
            str(args.image),
            "-k",
            "5",
            "--json",
        ],
    }
    torch = subprocess.run(
        [python, "-c", _TORCH_CHECK], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"{machine()}; {args.runs} runs each; load average {os.getloadavg()[0]:.1f}")
    print(f"torch imported by lookalike.engine, .api.app, .cli: {torch}")
    print("| case | wall s, median | wall s, best | CPU s, median | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for name, command in cases.items():
        walls, cpus, rss = zip(*(run(command, env) for _ in range(args.runs)), strict=True)
        print(
            f"| {name} | {statistics.median(walls):.2f} | {min(walls):.2f} "
            f"| {statistics.median(cpus):.2f} | {max(rss)} |"
        )


if __name__ == "__main__":
    main()
