"""Fuzz the served API with schemathesis: generated requests from /api/v1/openapi.json
against the real server; no answer may be a 5xx (or no answer at all).

    python -m benchmarks.reliability.fuzz [--requests 10000] [--catalog 60] [--seed 0]

Each operation of the schema gets generated cases (Hypothesis) in rounds, with a new seed
each round, until ``--requests`` requests were sent; writes carry the API key so the
authorised code paths run too. Requests go to a server started for the run (``python
app.py`` on loopback, over ``--catalog`` dev photos).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings

from benchmarks.common import REPO, machine
from benchmarks.reliability.common import AUTH, Home, dev_photos, ingest, log, running_server


@dataclass
class Tally:
    """What the server answered, over every generated request."""

    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())


def _round(
    operation: Any, base: str, session: requests.Session, tally: Tally, examples: int, seed: int
) -> None:
    """``examples`` generated cases of one operation, sent to ``base``."""
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis_seed(seed)
    def send(case: Any) -> None:
        # Writes carry the key, so the authorised code paths run too.
        headers = AUTH if case.method in ("POST", "PUT", "DELETE") else {}
        t0 = time.perf_counter()
        try:
            response = case.call(base_url=base, session=session, headers=headers, timeout=10)
            status = response.status_code
        except requests.RequestException as exc:  # no answer: a crash or a hang
            status, response = 0, None
            tally.failures.append(f"{label}: {exc!r}")
        tally.slowest = max(tally.slowest, time.perf_counter() - t0)
        tally.statuses[status] += 1
        tally.per_operation[label] += 1
        if status >= 500 and response is not None:
            tally.failures.append(
                f"{case.method} {case.formatted_path}: {status} {response.text[:300]}"
            )

    send()


def fuzz(base: str, total: int, seed: int = 0) -> dict[str, Any]:
    """Send at least ``total`` generated requests to the server at ``base``: rounds over
    every operation, each round with a new seed, until ``total`` were sent."""
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    # An operation the schema cannot describe fails here (Err has no .ok()): a bug to see.
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    tally = Tally()
    session = requests.Session()
    started = time.monotonic()
    per_round = max(5, total // (len(operations) * 4))
    round_ = 0
    while tally.sent < total:
        before = tally.sent
        for operation in operations:
            _round(operation, base, session, tally, per_round, seed * 1000 + round_)
        round_ += 1
        log(
            f"round {round_}: {tally.sent}/{total} requests, {len(tally.failures)} failures, "
            f"{time.monotonic() - started:.0f} s"
        )
        if tally.sent == before:
            break  # nothing new can be generated
    statuses = tally.statuses
    return {
        "requests": tally.sent,
        "operations": len(operations),
        "rounds": round_,
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500 or s == 0),
        "slowest_s": round(tally.slowest, 2),
        "seconds": round(time.monotonic() - started, 1),
        "per_operation": dict(tally.per_operation),
        "failures": tally.failures[:50],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--catalog", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "reliability")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-fuzz-") as tmp:
        home = Home(Path(tmp) / "home")
        ingest(home, dev_photos(args.catalog))
        with running_server(home, Path(tmp) / "server.log") as server:
            report = fuzz(server.base, args.requests, args.seed)
            report["server_alive"] = server.proc.poll() is None
            report["server_rss_mib"] = round(server.rss())
    report["machine"] = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    if report["server_errors"] or not report["server_alive"]:
        raise SystemExit(f"{report['server_errors']} requests without a non-5xx answer")


if __name__ == "__main__":
    main()
