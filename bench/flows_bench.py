"""Throughput of the ingest and broker flows on this machine: prints medians, asserts nothing.

    make bench            (or: .venv/bin/python -m bench.flows_bench [--backend moto] [--repeat 3])

- data_processor records/s: a direct invocation with 5,000 records (validation, Parquet,
  PostgreSQL upsert, metadata), and a 20,000-record CSV dropped in the raw bucket, timed
  from the upload to quiescence (EventBridge, SQS, the Lambda, everything it writes);
- broker jobs/s: 200 small files, the producer invoked once, timed until every result is
  written and post-processed (two worker tasks, prefetch 4).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from datetime import UTC, datetime

from harness.session import HarnessSession


def _records(n: int, rng: random.Random) -> list[dict[str, object]]:
    return [
        {"id": f"r-{i}", "value": round(rng.uniform(-100, 100), 3), "timestamp": "2026-03-09T10:00:00Z"}
        for i in range(n)
    ]


def _csv(n: int, rng: random.Random) -> bytes:
    out = io.StringIO()
    out.write("id,value,timestamp,unit\n")
    for i in range(n):
        out.write(f"c-{i},{rng.uniform(-100, 100):.3f},2026-03-09T10:00:00Z,celsius\n")
    return out.getvalue().encode()


def _fresh(session: HarnessSession, flow: str) -> None:
    session.reset_data(datetime(2026, 3, 9, 12, tzinfo=UTC), 0, flow, frozenset({flow}))


def bench_ingest(session: HarnessSession, repeat: int) -> None:
    assert session.runtime is not None
    rng = random.Random(7)
    function = session.stack.resolve_function("data-processor").name
    direct, dropped = [], []
    for _ in range(repeat):
        _fresh(session, "ingest")
        payload = {"data": _records(5000, rng), "source": "bench"}
        started = time.perf_counter()
        invocation = session.runtime.invoke(function, payload)
        direct.append(5000 / (time.perf_counter() - started))
        assert invocation.ok, invocation.error_message
        _fresh(session, "ingest")
        body = _csv(20000, rng)
        started = time.perf_counter()
        session.client("s3").put_object(Bucket="data-pipeline-raw", Key="incoming/bench/big.csv", Body=body)
        session.await_quiet(timeout=300)
        dropped.append(20000 / (time.perf_counter() - started))
    print(f"  data_processor, direct, 5,000 records:      median {statistics.median(direct):9.0f} records/s")
    print(f"  data_processor, S3 drop, 20,000-record CSV: median {statistics.median(dropped):9.0f} records/s")
    print(f"  ratio direct / end-to-end: {statistics.median(direct) / statistics.median(dropped):.2f}")


def bench_broker(session: HarnessSession, repeat: int, jobs: int = 200) -> None:
    assert session.runtime is not None
    producer = session.stack.resolve_function("broker-producer").name
    s3 = session.client("s3")
    rates = []
    for _ in range(repeat):
        _fresh(session, "broker")
        for i in range(jobs):
            body = f'{{"sensor": "s-{i}", "celsius": {i % 40}}}\n'.encode()
            s3.put_object(Bucket="broker-input", Key=f"incoming/bench/{i:04d}.jsonl", Body=body)
        started = time.perf_counter()
        invocation = session.runtime.invoke(producer, {"source": "bench"})
        assert invocation.ok, invocation.error_message
        session.await_quiet(timeout=600)
        elapsed = time.perf_counter() - started
        written = s3.list_objects_v2(Bucket="broker-output", Prefix="results/incoming/bench/")["KeyCount"]
        assert written == jobs, f"{written} of {jobs} results"
        rates.append(jobs / elapsed)
    print(
        f"  broker, {jobs} jobs, 2 workers x prefetch 4:   median {statistics.median(rates):9.1f} jobs/s"
        f"  (min {min(rates):.1f}, max {max(rates):.1f}, n={len(rates)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="moto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with HarnessSession(args.backend, label="bench-flows") as session:
        print(f"flows on {args.backend} (Terraform apply {session.timings.terraform_apply:.1f} s):")
        bench_ingest(session, args.repeat)
        bench_broker(session, args.repeat)


if __name__ == "__main__":
    main()
