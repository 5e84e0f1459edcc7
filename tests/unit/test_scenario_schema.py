"""The published JSON Schema is current and accepts every scenario in the repository."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.paths import REPO_ROOT
from harness.scenario.schema import SCHEMA_PATH, render

SCENARIOS = sorted((REPO_ROOT / "scenarios").rglob("*.yaml"))


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == render(), (
        "run `python -m harness.scenario.schema` and commit schema.json"
    )


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenarios_match_the_schema(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    # YAML gives datetimes; the schema sees the ISO strings an editor sees.
    jsonschema.validate(
        json.loads(json.dumps(document, default=lambda d: d.isoformat())), json.loads(SCHEMA_PATH.read_text())
    )


def test_schema_rejects_an_unknown_step() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    bad = {"name": "x", "flow": "refiner", "steps": [{"put_objekt": {"bucket": "b"}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_every_scenario_has_the_schema_header() -> None:
    for path in SCENARIOS:
        assert path.read_text().startswith("# yaml-language-server: $schema="), path
