"""The scenario document and its loader: YAML in, a validated `Scenario` or a located error out."""

from __future__ import annotations

import difflib
import itertools
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ScenarioError
from harness.scenario import expectations as _expectations  # noqa: F401 - registers expectations
from harness.scenario import faults as _faults  # noqa: F401 - registers faults
from harness.scenario import steps as _steps  # noqa: F401 - registers steps
from harness.scenario.vocabulary import EXPECTATIONS, FAULTS, STEPS, Expectation, Fault, Spec, Step
from harness.scenario.yaml_source import Path_, SourceMap, load_yaml_file

FLOWS = ("refiner", "ingest", "batch", "broker", "tracker")


class Header(BaseModel):
    """Everything in a scenario except its steps and expectations."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    flow: str
    clock: datetime | None = None
    seed: int = 0
    #: which schedules fire as the clock moves: this flow's (and those of no flow), or all
    schedules: Literal["flow", "all"] = "flow"
    steps: list[Any] = Field(default_factory=list)
    expect: list[Any] = Field(default_factory=list)
    faults: list[Any] = Field(default_factory=list)
    finally_: list[Any] = Field(default_factory=list, alias="finally")
    matrix: list[dict[str, Any]] | dict[str, list[Any]] | None = None


class Scenario(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    file: Path
    header: Header
    steps: list[Step]
    expect: list[Expectation]
    finally_steps: list[Step]
    faults: list[Fault] = Field(default_factory=list)
    case: str | None = None

    @property
    def name(self) -> str:
        return self.header.name


def _suggest(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _expected_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _raise_validation(error: ValidationError, model: type[BaseModel], base: Path_, source: SourceMap) -> None:
    errors = error.errors()
    # An unknown key usually explains a "missing" one (a typo), so report it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc: Path_ = (*base, *first["loc"])
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][-1])
        options = _expected_keys(model)
        raise source.error(
            loc,
            f"unknown key `{key}`; expected one of: {', '.join(options)}",
            hint=_suggest(key, options),
            prefer_key=True,
        )
    if first["type"] == "missing":
        raise source.error(loc[:-1], f"missing required key `{first['loc'][-1]}`", prefer_key=True)
    where = ".".join(str(p) for p in first["loc"]) or "value"
    raise source.error(loc, f"{where}: {first['msg']} (got {first.get('input')!r})")


def _parse_entries(
    entries: list[Any], table: dict[str, type[Spec]], section: str, source: SourceMap
) -> list[Any]:
    parsed: list[Any] = []
    for index, entry in enumerate(entries):
        path: Path_ = (section, index)
        if not isinstance(entry, dict) or len(entry) != 1:
            raise source.error(
                path,
                f"each entry of `{section}` is a mapping with one key, like `- {next(iter(table))}: ...`",
            )
        keyword, value = next(iter(entry.items()))
        spec = table.get(str(keyword))
        if spec is None:
            options = sorted(table)
            raise source.error(
                (*path, str(keyword)),
                f"unknown {section} entry `{keyword}`; expected one of: {', '.join(options)}",
                hint=_suggest(str(keyword), options),
                prefer_key=True,
            )
        try:
            parsed.append(spec.model_validate(value))
        except ValidationError as exc:
            _raise_validation(exc, spec, (*path, str(keyword)), source)
    return parsed


_PLACEHOLDER = re.compile(r"\$\{matrix\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _cases(matrix: list[dict[str, Any]] | dict[str, list[Any]], source: SourceMap) -> list[dict[str, Any]]:
    if isinstance(matrix, list):
        if not matrix or any(not isinstance(c, dict) or not c for c in matrix):
            raise source.error(("matrix",), "a matrix list holds one or more mappings of parameter values")
        return matrix
    if not matrix or any(not isinstance(v, list) or not v for v in matrix.values()):
        raise source.error(("matrix",), "a matrix mapping gives each parameter a non-empty list of values")
    names = list(matrix)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*matrix.values())]


def _case_id(case: dict[str, Any]) -> str:
    if "case" in case:
        return str(case["case"])
    return "-".join(f"{k}={v}" for k, v in case.items())


def _substitute(value: Any, case: dict[str, Any], path: Path_, source: SourceMap) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, case, (*path, k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, case, (*path, i), source) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${matrix." not in value:
        return value
    for name in _PLACEHOLDER.findall(value):
        if name not in case:
            raise source.error(
                path,
                f"unknown matrix parameter `{name}`; parameters: {', '.join(case)}",
                hint=_suggest(name, list(case)),
            )
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        return case[whole.group(1)]  # a lone placeholder keeps the parameter's type
    return _PLACEHOLDER.sub(lambda m: str(case[m.group(1)]), value)


def load_scenarios(path: Path) -> list[Scenario]:
    """Every scenario a file defines: one, or one per `matrix` case."""
    data, source = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ScenarioError(
            "a scenario is a mapping with name, flow, steps and expect", file=str(path), line=1
        )
    if data.get("matrix") is None:
        return [_build(path, data, source, None)]
    try:
        header = Header.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, Header, (), source)
        raise
    assert header.matrix is not None
    scenarios = []
    for case in _cases(header.matrix, source):
        body = {k: v for k, v in data.items() if k != "matrix"}
        expanded = _substitute(body, case, (), source)
        scenarios.append(_build(path, expanded, source, _case_id(case)))
    ids = [s.case for s in scenarios]
    if len(set(ids)) != len(ids):
        raise source.error(("matrix",), f"matrix cases need distinct ids (a `case` key): {ids}")
    return scenarios


def load_scenario(path: Path) -> Scenario:
    """The scenario a file defines (the first case of a matrix)."""
    return load_scenarios(path)[0]


def _build(path: Path, data: dict[str, Any], source: SourceMap, case: str | None) -> Scenario:
    try:
        header = Header.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, Header, (), source)
        raise  # unreachable: _raise_validation always raises
    if header.flow not in FLOWS:
        raise source.error(
            ("flow",),
            f"unknown flow `{header.flow}`; expected one of: {', '.join(FLOWS)}",
            hint=_suggest(header.flow, list(FLOWS)),
        )
    steps = _parse_entries(header.steps, STEPS, "steps", source)  # type: ignore[arg-type]
    expect = _parse_entries(header.expect, EXPECTATIONS, "expect", source)  # type: ignore[arg-type]
    final = _parse_entries(header.finally_, STEPS, "finally", source)  # type: ignore[arg-type]
    faults = _parse_entries(header.faults, FAULTS, "faults", source)  # type: ignore[arg-type]
    return Scenario(
        file=path, header=header, steps=steps, expect=expect, finally_steps=final, faults=faults, case=case
    )
