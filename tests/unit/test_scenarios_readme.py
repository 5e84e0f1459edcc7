"""scenarios/README.md teaches the language by example: every example entry must be valid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scenario.steps.wait_until import parse_expectation
from harness.scenario.vocabulary import FAULTS, STEPS, Spec

README = Path(__file__).resolve().parents[2] / "scenarios" / "README.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


def entries(section: str) -> list[Any]:
    found: list[Any] = []
    for block in BLOCKS:
        if "!include" in block or "${matrix" in block:
            continue  # shown for their structure, not as standalone entries
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and isinstance(doc.get(section), list):
            found.extend(doc[section])
    return found


def validate(entry: dict[str, Any], table: dict[str, type[Spec]]) -> None:
    [(keyword, value)] = entry.items()
    table[keyword].model_validate(value)


@pytest.mark.parametrize("entry", entries("steps"), ids=lambda e: next(iter(e)))
def test_step_examples_are_valid(entry: dict[str, Any]) -> None:
    validate(entry, STEPS)


@pytest.mark.parametrize("entry", entries("expect"), ids=lambda e: next(iter(e)))
def test_expectation_examples_are_valid(entry: dict[str, Any]) -> None:
    parse_expectation(entry)


@pytest.mark.parametrize("entry", entries("faults"), ids=lambda e: next(iter(e)))
def test_fault_examples_are_valid(entry: dict[str, Any]) -> None:
    validate(entry, FAULTS)


def test_every_keyword_is_taught() -> None:
    from harness.scenario.vocabulary import EXPECTATIONS

    taught = {next(iter(e)) for section in ("steps", "expect", "faults") for e in entries(section)}
    missing = sorted((set(STEPS) | set(EXPECTATIONS) | set(FAULTS)) - taught)
    assert missing == [], f"scenarios/README.md has no example of {missing}"
