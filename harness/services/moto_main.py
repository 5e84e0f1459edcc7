"""Entry point of the moto server process: apply the harness's moto corrections, then serve."""

from __future__ import annotations

import sys

from harness.services import moto_fixes


def main(argv: list[str] | None = None) -> None:
    moto_fixes.apply()
    from moto.server import main as moto_server_main

    moto_server_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
