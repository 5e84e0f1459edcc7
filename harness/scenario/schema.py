"""JSON Schema of scenario files, generated from the step and expectation models.

Editors use it through the `# yaml-language-server: $schema=...` header to complete and
check scenarios. `python -m harness.scenario.schema` rewrites `schema.json`; a test fails
when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.scenario.model import FLOWS, Header
from harness.scenario.vocabulary import EXPECTATIONS, FAULTS, STEPS, Spec

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def _entry_schema(table: dict[str, type[Spec]], defs: dict[str, Any]) -> dict[str, Any]:
    options = []
    for keyword, spec in sorted(table.items()):
        schema = spec.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[spec.__name__] = schema
        value: dict[str, Any] = {"$ref": f"#/$defs/{spec.__name__}"}
        if spec.shorthand:
            short = schema["properties"][spec.shorthand]
            value = {"anyOf": [value, {k: v for k, v in short.items() if k != "default"}]}
        options.append(
            {
                "type": "object",
                "description": (spec.__doc__ or "").strip().splitlines()[0] if spec.__doc__ else keyword,
                "properties": {keyword: value},
                "required": [keyword],
                "additionalProperties": False,
            }
        )
    return {"oneOf": options}


def build_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    header = Header.model_json_schema(by_alias=True)
    properties = header["properties"]
    properties["flow"] = {"enum": list(FLOWS), "description": "which pipeline flow the scenario exercises"}
    steps = _entry_schema(STEPS, defs)  # type: ignore[arg-type]
    properties["steps"] = {"type": "array", "items": steps}
    properties["finally"] = {"type": "array", "items": steps}
    properties["expect"] = {"type": "array", "items": _entry_schema(EXPECTATIONS, defs)}  # type: ignore[arg-type]
    faults = _entry_schema(FAULTS, defs)  # type: ignore[arg-type]
    properties["faults"] = {"type": "array", "items": faults}
    defs["Inject"] = {**faults, "description": "a fault of the `faults:` vocabulary, installed at this step"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pipeline-harness scenario",
        "type": "object",
        "properties": properties,
        "required": header.get("required", []),
        "additionalProperties": False,
        "$defs": defs,
    }


def render() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
