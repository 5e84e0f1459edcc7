"""Fixtures for end-to-end tests: real emulator, real Terraform, real services."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.session import HarnessSession

PITFALLS_STACK = Path(__file__).parent / "pitfalls_stack"


def backends() -> list[str]:
    """moto always; LocalStack in CI and wherever `make setup-localstack` has run.

    HARNESS_E2E_LOCALSTACK=0 or 1 overrides.
    """
    from harness.services.localstack_setup import installed

    default = "1" if os.environ.get("CI") or installed() is not None else "0"
    chosen = ["moto"]
    if os.environ.get("HARNESS_E2E_LOCALSTACK", default) == "1":
        chosen.append("localstack")
    return chosen


@pytest.fixture(scope="session", params=backends())
def pitfall_session(request: pytest.FixtureRequest) -> Iterator[HarnessSession]:
    session = HarnessSession(
        request.param, label=f"pitfalls-{request.param}", support_services=False, config_dir=PITFALLS_STACK
    )
    with session:
        yield session
