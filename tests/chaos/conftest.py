"""Random chaos: fault plans per flow, drawn by hypothesis, checked against the flow's invariants.

These tests share the scenario session of their pytest process (`make test` runs them with
the moto scenarios), so they cost no Terraform apply of their own. The budget is each
flow's `ChaosProfile.budget` times HARNESS_CHAOS_SCALE (`make chaos` raises it). In CI
(`CI` set) the draws are derandomized, so a pull request is gated on the same plans every
time; `make chaos` draws fresh ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.pytest_plugin import shared_session
from harness.session import HarnessSession

#: flow -> [plans run, failing, seconds], gathered from the reports (xdist workers included)
STATS: dict[str, list[float]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "chaos_stats":
            totals = STATS.setdefault(str(value["flow"]), [0, 0, 0.0])
            totals[0] += value["plans"]
            totals[1] += value["failing"]
            totals[2] += value["seconds"]


@pytest.fixture
def session(request: pytest.FixtureRequest) -> Iterator[HarnessSession]:
    yield shared_session(request.config)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not STATS:
        return
    terminalreporter.write_sep("-", "chaos plans")
    for flow, (count, failed, seconds) in sorted(STATS.items()):
        per_plan = seconds / count if count else 0.0
        terminalreporter.write_line(
            f"{flow:8s} {int(count):4d} plans  {int(failed):3d} failing  "
            f"{seconds:7.1f}s  ({per_plan:.2f}s per plan)"
        )
