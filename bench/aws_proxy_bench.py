"""AWS fault proxy benchmark: per-call latency direct to moto vs through the proxy (no rules).

    .venv/bin/python -m bench.aws_proxy_bench [--calls 300] [--size 1024] [--in-process]

Starts a moto server the way the harness does (its own process, `harness.services.moto_main`;
`--in-process` runs moto's ThreadedMotoServer in this process instead) and times SQS
SendMessage and S3 PutObject (`--size` bytes) calls one at a time on warm keep-alive clients.
Direct and proxied calls alternate, so background load hits both alike. Prints median and p95
per call, the proxy/direct ratio of the medians and the added median latency. Asserts
nothing: performance is reported, not tested.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config

from harness.chaos.aws_proxy import AwsFaultProxy
from harness.services.ports import free_port
from harness.services.readiness import http_ok, wait_until

REGION = "us-east-1"
WARMUP = 10


@contextlib.contextmanager
def moto(in_process: bool) -> Iterator[str]:
    """A running moto server's URL."""
    if in_process:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
        return
    port = free_port()
    argv = [sys.executable, "-m", "harness.services.moto_main", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            http_ok(f"{url}/moto-api/"), component="moto", timeout=30, alive=lambda: process.poll() is None
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def alternate(
    direct: Callable[[int], object], proxied: Callable[[int], object], n: int
) -> tuple[list[float], list[float]]:
    """Per-call seconds of n direct and n proxied calls, interleaved, after a warm-up."""
    for i in range(WARMUP):
        direct(i)
        proxied(i)
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        for call, out in ((direct, times[0]), (proxied, times[1])):
            started = time.perf_counter()
            call(i)
            out.append(time.perf_counter() - started)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024, help="S3 object size in bytes")
    parser.add_argument("--in-process", action="store_true", help="run moto in this process")
    args = parser.parse_args()
    body = b"x" * args.size
    results: dict[str, tuple[list[float], list[float]]] = {}
    with moto(args.in_process) as upstream, AwsFaultProxy(upstream) as proxy:
        sqs = {label: client("sqs", url) for label, url in (("direct", upstream), ("proxy", proxy.url))}
        s3 = {label: client("s3", url) for label, url in (("direct", upstream), ("proxy", proxy.url))}
        queue = sqs["direct"].create_queue(QueueName="bench")["QueueUrl"]
        s3["direct"].create_bucket(Bucket="bench")

        def send(label: str) -> Callable[[int], object]:
            return lambda i: sqs[label].send_message(QueueUrl=queue, MessageBody=f"m{i}")

        def put(label: str) -> Callable[[int], object]:
            return lambda i: s3[label].put_object(Bucket="bench", Key=f"{label}/{i}", Body=body)

        results["SendMessage"] = alternate(send("direct"), send("proxy"), args.calls)
        results[f"PutObject {args.size} B"] = alternate(put("direct"), put("proxy"), args.calls)
        assert proxy.injected == 0 and all(e["status"] == 200 for e in proxy.request_log)
    where = "in this process" if args.in_process else "in its own process"
    print(f"\n== AWS fault proxy benchmark: {args.calls} calls each way, moto {where}, no rules ==")
    print(
        f"{'':20} {'direct median':>14} {'p95':>9} {'proxy median':>13} {'p95':>9} {'ratio':>6} {'added':>9}"
    )
    for name, (direct, proxied) in results.items():
        d, p = statistics.median(direct), statistics.median(proxied)
        print(
            f"{name:20} {d * 1000:>11.2f} ms {p95(direct) * 1000:>6.2f} ms {p * 1000:>10.2f} ms"
            f" {p95(proxied) * 1000:>6.2f} ms {p / d:>5.2f}x {(p - d) * 1000:>+6.2f} ms"
        )


if __name__ == "__main__":
    main()
