"""The published JSON Schema is current and accepts every scenario in the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _first_case(document: dict[str, Any]) -> dict[str, Any]:
    """What the loader validates: for a matrix, the document with its first case filled in."""
    matrix = document.pop("matrix", None)
    if not matrix:
        return document
    case = matrix[0] if isinstance(matrix, list) else {k: v[0] for k, v in matrix.items()}
    text = json.dumps(document)
    for name, value in case.items():
        text = text.replace(f'"${{matrix.{name}}}"', json.dumps(value)).replace(
            f"${{matrix.{name}}}", str(value)
        )
    return dict(json.loads(text))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenarios_match_the_schema(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    # YAML gives datetimes; the schema sees the ISO strings an editor sees.
    plain = json.loads(json.dumps(document, default=lambda d: d.isoformat()))
    jsonschema.validate(_first_case(plain), json.loads(SCHEMA_PATH.read_text()))


def test_schema_rejects_an_unknown_step() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    bad = {"name": "x", "flow": "refiner", "steps": [{"put_objekt": {"bucket": "b"}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_every_scenario_has_the_schema_header() -> None:
    for path in SCENARIOS:
        assert path.read_text().startswith("# yaml-language-server: $schema="), path
