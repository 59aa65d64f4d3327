"""Helpers shared by the benchmark scripts, and by the tests that start real processes:
the API server (:func:`running_server`) and a local Ray cluster (:class:`LocalRayCluster`)."""

from __future__ import annotations

import csv
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parents[1]
DATASET = (
    Path(os.environ.get("LOOKALIKE_DATASETS", REPO.parent / "shared" / "datasets"))
    / "fashion-products-dev"
)


def dev_rows() -> list[dict[str, str]]:
    """The dev set's label rows (exits with a message when the data set is absent)."""
    return label_rows(DATASET)


def label_rows(folder: Path) -> list[dict[str, str]]:
    """A data set's ``labels.csv`` rows (exits with a message when it is absent)."""
    labels = folder / "labels.csv"
    if not labels.exists():
        raise SystemExit(f"data set not found at {folder}; set LOOKALIKE_DATASETS")
    with labels.open(newline="") as f:
        return list(csv.DictReader(f))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# Local processes for the benchmarks and the tests (which import them from here): the
# real API server and a local Ray cluster, each on free loopback ports.


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (from /proc; 0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process this run started (by its own pid) and reap it."""
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@dataclass
class Server:
    """A running ``python app.py`` (uvicorn) on a loopback port."""

    proc: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT
    log_file: Path | None = None  # where its output goes (None: this process's own)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def rss(self) -> float:
        return rss_mib(self.proc.pid)

    def stop(self, timeout: float = 30) -> int:
        """Stop the server gracefully (SIGTERM); its exit code (-9: it had to be killed
        after ``timeout`` seconds)."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill9(self.proc)
            return -9


def start_server(
    env: Mapping[str, str], log_file: Path | None = None, timeout: float = 120
) -> Server:
    """Start the real server (``python app.py`` in the repository) on a free loopback port
    and wait until /readyz answers 200.

    ``env`` is laid over this process's environment (LOOKALIKE_HOST and LOOKALIKE_PORT are
    set here); the server's output is appended to ``log_file`` (``os.devnull`` to drop
    it), or shares this process's stdout and stderr when None. Raises RuntimeError when
    the server exits or is not ready within ``timeout`` seconds (it is killed then)."""
    port = free_port()
    full_env = {
        **os.environ,
        **env,
        "LOOKALIKE_HOST": "127.0.0.1",
        "LOOKALIKE_PORT": str(port),
    }
    command = [sys.executable, str(REPO / "app.py")]
    if log_file is None:
        proc = subprocess.Popen(command, env=full_env, cwd=REPO)
    else:
        with log_file.open("ab") as out:
            proc = subprocess.Popen(command, env=full_env, cwd=REPO, stdout=out, stderr=out)
    where = f"; see {log_file}" if log_file not in (None, Path(os.devnull)) else ""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}{where}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return Server(proc, base, log_file)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            kill9(proc)
            raise RuntimeError(f"server not ready after {timeout:g} s{where}")
        time.sleep(0.2)


@contextmanager
def running_server(
    env: Mapping[str, str], log_file: Path | None = None, timeout: float = 120
) -> Iterator[Server]:
    """:func:`start_server` for the duration of a block; stopped (SIGTERM) afterwards."""
    server = start_server(env, log_file, timeout)
    try:
        yield server
    finally:
        server.stop()


class LocalRayCluster:
    """A Ray cluster on this machine, as separate processes: a head node (no CPUs of its
    own, so work goes to the workers) and ``worker_nodes`` worker nodes of ``cpus`` CPUs
    each, started with ``ray start --block`` and stopped by signalling those processes
    (never ``ray stop``, which would stop every Ray of this user). For tests, benchmarks
    and trying ``--ray`` out (``lookalike ingest CATALOG --ray ADDRESS``); ``address`` is
    what ``--ray`` takes."""

    def __init__(self, cpus: int = 1, worker_nodes: int = 1, temp_dir: Path | None = None) -> None:
        self.cpus = cpus
        self.worker_nodes = worker_nodes
        self.temp_dir = temp_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _ray(self, *args: str) -> subprocess.Popen[bytes]:
        ray_cli = Path(sys.executable).with_name("ray")
        # No log monitor: it polls every log file (about 1-2% of a core per node here) to
        # forward worker logs, which RayEmbedding does not ask for (log_to_driver=False).
        common = [
            "--block",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            "--include-log-monitor=false",
        ]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        process = subprocess.Popen(
            [str(ray_cli), "start", *common, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl+C in a test run does not reach it twice
        )
        self._processes.append(process)
        return process

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the head, then the worker nodes; returns when their CPUs are registered
        (about 10 s on 2 loaded cores). Raises RuntimeError when Ray cannot start."""
        head_args = [
            "--head",
            f"--port={self.port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}",
        ]
        if self.temp_dir is not None:
            head_args.append(f"--temp-dir={self.temp_dir}")
        head = self._ray(*head_args)
        deadline = time.monotonic() + timeout_s
        while True:
            if head.poll() is not None:
                raise RuntimeError(f"ray start --head exited with {head.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the Ray head node did not start") from None
                time.sleep(0.2)
        for _ in range(self.worker_nodes):
            self._ray(f"--address={self.address}", f"--num-cpus={self.cpus}")
        want = self.cpus * self.worker_nodes
        while _cluster_cpus(self.address) < want:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                self.stop()
                raise RuntimeError("the Ray worker nodes did not join")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the nodes: SIGTERM to each ``ray start`` process (it stops its own
        processes, 2-3 s), SIGKILL to its process group if it hangs."""
        for process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._processes.clear()


def _cluster_cpus(address: str) -> int:
    """CPUs registered with the cluster, asked from a short-lived process (``ray
    status``) so that this process stays free to ``ray.init`` later."""
    ray_cli = Path(sys.executable).with_name("ray")
    done = subprocess.run(
        [str(ray_cli), "status", f"--address={address}"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        # " 0.0/2.0 CPU"
        parts = line.split()
        if len(parts) == 2 and parts[1] == "CPU" and "/" in parts[0]:
            return int(float(parts[0].split("/")[1]))
    return 0
