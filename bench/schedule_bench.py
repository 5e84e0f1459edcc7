"""Scheduler benchmark: 24 h of a 1-minute schedule (1,440 firings of a no-op Lambda).

    .venv/bin/python -m bench.schedule_bench [--backend moto] [--repeat 3]

Prints the wall time of each `advance 24h`, the median, firings per second, and the ratio of
virtual to wall time. Asserts nothing: performance is reported, not tested.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.session import HarnessSession

STACK = Path(__file__).parent / "schedule_stack"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="moto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with HarnessSession(
        args.backend, label="bench-schedule", support_services=False, config_dir=STACK
    ) as session:
        assert session.runtime is not None
        walls = []
        for _ in range(args.repeat):
            start = datetime(2026, 1, 15, tzinfo=UTC)
            session.reset_data(clock_start=start)
            started = time.perf_counter()
            fired = session.advance_to(start + timedelta(hours=24))
            walls.append(time.perf_counter() - started)
            calls = [i for i in session.runtime.invocations if i.function == "bench-tick"]
            assert fired == 1440 and len(calls) == 1440 and all(c.ok for c in calls), (fired, len(calls))
        median = statistics.median(walls)
        print(f"\n== scheduler benchmark on {args.backend}: advance 24h of rate(1 minute) ==")
        print("runs: " + ", ".join(f"{w:.2f}s" for w in walls))
        rate = 1440 / median
        print(f"median wall time {median:.2f} s for 1,440 firings (target < 10 s): {rate:.0f} firings/s")
        print(f"virtual/wall ratio: {86400 / median:,.0f}x")


if __name__ == "__main__":
    main()
