"""Poll RefinerComplete/ for new manifests and print the copies they list (seed 003's poller).

    python -m pipeline.refiner.poller [--bucket data-repository] [--interval 5] [--once] [--timeout S]

Each new `RefinerComplete/*.json` is downloaded and parsed; every output file it lists is
fetched and its content written to stdout. `--once` checks a single time and exits;
`--timeout` stops after that many seconds (exit 1 if nothing new was seen).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from pipeline.common import aws


def new_manifests(bucket: str, prefix: str, seen: set[str]) -> Iterator[str]:
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith(".json") and key not in seen:
                seen.add(key)
                yield key


def show_manifest(bucket: str, key: str, out: TextIO) -> None:
    s3 = aws.client("s3")
    paths = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    out.write(f"manifest {key}: {len(paths)} outputs\n")
    for path in paths:
        body = s3.get_object(Bucket=bucket, Key=str(path).lstrip("/"))["Body"].read()
        out.write(f"--- {path}\n{body.decode(errors='replace')}\n")
    out.flush()


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="refiner-poller", description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", default="data-repository")
    parser.add_argument("--prefix", default="RefinerComplete/")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args(argv)

    seen: set[str] = set()
    found = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while True:
        for key in new_manifests(args.bucket, args.prefix, seen):
            show_manifest(args.bucket, key, out)
            found += 1
        if args.once or (deadline is not None and time.monotonic() >= deadline):
            return 0 if found else 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
