"""Push a test file to the refiner's input prefix (seed 003's push script).

    python -m pipeline.refiner.push [FILE] [--bucket data-repository] [--key RefinerInput/NAME]

Without FILE it uploads a generated `helloworld.txt`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.common import aws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refiner-push", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, help="file to upload (default: a hello-world text)")
    parser.add_argument("--bucket", default="data-repository")
    parser.add_argument("--key", help="object key (default: RefinerInput/<file name>)")
    args = parser.parse_args(argv)

    if args.file is None:
        name, body = "helloworld.txt", b"Hello, world!\n"
    else:
        if not args.file.is_file():
            print(f"refiner-push: {args.file}: no such file", file=sys.stderr)
            return 2
        name, body = args.file.name, args.file.read_bytes()
    key = args.key or f"RefinerInput/{name}"
    aws.client("s3").put_object(Bucket=args.bucket, Key=key, Body=body)
    print(f"uploaded s3://{args.bucket}/{key} ({len(body)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
