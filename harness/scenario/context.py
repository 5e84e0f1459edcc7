"""What steps and expectations run against: the session, the scenario's file, saved values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.paths import REPO_ROOT
from harness.session import HarnessSession

FIXTURES = REPO_ROOT / "fixtures"


@dataclass
class ScenarioContext:
    session: HarnessSession
    file: Path
    saved: dict[str, Any] = field(default_factory=dict)
    #: what the `invariants` expectation found (harness.chaos.invariants.Violation)
    violations: list[Any] = field(default_factory=list)

    def fixture(self, name: str) -> Path:
        """A file from fixtures/ (or relative to the scenario file)."""
        for base in (FIXTURES, self.file.parent):
            path = (base / name).resolve()
            if path.is_file():
                return path
        raise HarnessError(f"{self.file}: fixture {name!r} not found in fixtures/ or next to the scenario")
