"""The root's input variables, and the values the harness passes for them.

Terraform refuses `-var` for a variable the root does not declare, and (with input off)
fails late and verbosely on a required variable nobody set. Both are checked here first,
with one message naming the variable, where it is declared and how to pass it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import hcl2
from hcl2 import SerializationOptions

from harness.errors import DeployError

#: names and strings without their quotes (python-hcl2 keeps them by default)
HCL = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


@dataclass(frozen=True)
class Variable:
    name: str
    required: bool
    file: str


def declared(root: Path) -> dict[str, Variable]:
    found: dict[str, Variable] = {}
    for path in sorted(root.glob("*.tf")):
        try:
            document = hcl2.loads(path.read_text(), serialization_options=HCL)
        except Exception:  # noqa: BLE001,S112 - Terraform reports syntax errors itself, with the line
            continue
        for block in document.get("variable", []):
            for name, body in block.items():
                found[name] = Variable(name, "default" not in (body or {}), path.name)
    return found


def _from_files(var_files: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in var_files:
        if not path.is_file():
            raise DeployError(f"var file {path} does not exist")
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else hcl2.loads(text, serialization_options=HCL)
        names.update(document)
    return names


def _render(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def arguments(
    root: Path, values: Mapping[str, str | int | float | bool], var_files: list[Path], source: str
) -> list[str]:
    """`-var`/`-var-file` arguments, after checking them against the root's declarations."""
    variables = declared(root)
    unknown = sorted(set(values) - set(variables))
    if unknown:
        listed = ", ".join(sorted(variables)) or "none"
        raise DeployError(
            f"{source} sets {', '.join(unknown)}, which {root} does not declare (its variables: {listed})"
        )
    supplied = set(values) | _from_files(var_files)
    supplied |= {k.removeprefix("TF_VAR_") for k in os.environ if k.startswith("TF_VAR_")}
    missing = sorted(v.name for v in variables.values() if v.required and v.name not in supplied)
    if missing:
        where = ", ".join(f"{name} ({variables[name].file})" for name in missing)
        raise DeployError(
            f"{root} needs a value for {where}, and nothing supplies it",
            hint=f"set it under [terraform.vars] in {source}, in a var file listed in "
            f"[terraform] var_files, or as TF_VAR_{missing[0]} in the environment",
        )
    return [*(f"-var-file={f}" for f in var_files), *(f"-var={k}={_render(v)}" for k, v in values.items())]
