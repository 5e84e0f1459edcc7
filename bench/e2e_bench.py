"""Benchmarks of the harness on this machine: prints medians and ratios, asserts nothing.

    make bench            (or: .venv/bin/python -m bench.e2e_bench [--backend moto] [--repeat 20])

Measures: service start-to-ready times, Terraform apply, data reset, cold vs warm Lambda
invocation, S3 drop -> manifest written through EventBridge, SQS and the refiner, a poison
message's five retries to the DLQ, and the peak memory (RSS) of all service processes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from harness.session import HarnessSession


def _rss_mib_of_groups(session: HarnessSession) -> float:
    """Resident memory of every process in the run's recorded process groups."""
    import json

    groups = {json.loads(p.read_text())["pgid"] for p in (session.run_dir.path / "pids").glob("*.json")}
    total_kib = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) not in groups:
                continue
            status = (stat.parent / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def _median_ms(samples: list[float]) -> str:
    low, high = min(samples) * 1000, max(samples) * 1000
    middle = statistics.median(samples) * 1000
    return f"median {middle:8.1f} ms  (min {low:.1f}, max {high:.1f}, n={len(samples)})"


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="moto")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    started = time.perf_counter()
    session = HarnessSession(args.backend, label="bench").start()
    startup = time.perf_counter() - started
    try:
        s3, sqs = session.client("s3"), session.client("sqs")
        runtime = session.runtime
        assert runtime is not None
        print(f"\n== pipeline-harness benchmark on {args.backend} ==")
        print(f"session start (services + terraform + takeover): {startup:7.1f} s")
        for name, seconds in sorted(session.timings.services.items()):
            print(f"  {name:10s} ready in {seconds:6.2f} s")
        timings = session.timings
        print(f"  terraform init {timings.terraform_init:6.1f} s, apply {timings.terraform_apply:6.1f} s")
        peak = _rss_mib_of_groups(session)

        print("reset_data (empty buckets and queues):  " + _median_ms(_time(session.reset_data, args.repeat)))

        function = session.stack.resolve_function("refiner").name
        runtime.workers.clear()
        cold = _time(lambda: runtime.invoke(function, {"Records": []}), 1)
        warm = _time(lambda: runtime.invoke(function, {"Records": []}), args.repeat * 3)
        print("lambda invoke, cold:                    " + _median_ms(cold))
        print("lambda invoke, warm:                    " + _median_ms(warm))
        print(f"  cold / warm ratio: {statistics.median(cold) / statistics.median(warm):.0f}x")

        def drop_and_wait(index: list[int] = [0]) -> None:  # noqa: B006 - a counter across calls
            index[0] += 1
            s3.put_object(Bucket="data-repository", Key=f"RefinerInput/bench-{index[0]}.txt", Body=b"bench")
            session.await_quiet(60)

        session.reset_data()
        e2e = _time(drop_and_wait, args.repeat)
        print("S3 drop -> 2 copies + manifest, quiet:  " + _median_ms(e2e))
        peak = max(peak, _rss_mib_of_groups(session))

        queue = session.stack.resolve_queue("RefinerInput")

        def poison() -> None:
            sqs.send_message(QueueUrl=queue.url, MessageBody="poison")
            session.await_quiet(60)

        print("poison message, 5 receives -> DLQ:     " + _median_ms(_time(poison, max(3, args.repeat // 3))))
        settle = 0.3 if args.backend == "moto" else 1.0
        print(f"  (await_quiet includes a {settle:.1f} s settle period by design)")
        peak = max(peak, _rss_mib_of_groups(session))
        print(f"peak RSS of all service processes: {peak:7.1f} MiB")
    finally:
        session.stop()


if __name__ == "__main__":
    main()
