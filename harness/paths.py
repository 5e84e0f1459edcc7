"""Where the harness keeps its files: the repository root and per-run directories."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_root() -> Path:
    """Root of everything the harness generates (`.harness/` in the repo unless overridden)."""
    root = Path(os.environ.get("HARNESS_HOME", REPO_ROOT / ".harness"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_root() -> Path:
    path = state_root() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
