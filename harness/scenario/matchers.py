"""Matchers for expected values in scenarios.

A plain value matches by equality (mappings and lists element by element, so matchers can
nest anywhere). A mapping whose keys all start with `$` is a matcher:

    $regex: 'RefinerOutput/[0-9a-f-]{36}\\.txt'   full match of a string
    $contains: "hello"                         substring, or a list element that matches
    $type: string                              string number integer boolean object array null any
    $subset: {status: FINISHED}                a mapping with at least these keys (values match);
                                               a list containing a match for every element given
    $jsonpath: {"$.records[*].id": {$type: integer}}
                                               every value the path selects matches (and there is one)
    $gt / $gte / $lt / $lte: 5                 numeric bounds; several combine into a range
    $len: 2                                    length of a string, list or mapping (value may be a matcher)
    $any_of: [a, {$regex: b.*}]                one of the alternatives matches
    $not: {$type: null}                        the inner matcher does not match

`mismatches(expected, actual)` returns human-readable problems (empty when it matches);
`render_failure` shows expected and actual side by side with a unified diff for JSON.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import Any

from jsonpath_ng.ext import parse as parse_jsonpath

OPERATORS = {
    "$regex",
    "$contains",
    "$type",
    "$subset",
    "$jsonpath",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$len",
    "$any_of",
    "$not",
}
TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    "any": lambda v: True,
}


class MatcherError(ValueError):
    """An expected value is not a valid matcher (a scenario mistake, reported with its location)."""


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(str(k).startswith("$") for k in value)


def validate(expected: Any, path: str = "") -> None:
    """Raise MatcherError for an unknown operator or a malformed operand, anywhere inside."""
    if is_matcher(expected):
        for op, operand in expected.items():
            where = f"{path}.{op}" if path else op
            if op not in OPERATORS:
                close = difflib.get_close_matches(op, sorted(OPERATORS), n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                raise MatcherError(f"unknown matcher `{op}` at {where or 'top'}{hint}")
            if op == "$regex":
                try:
                    re.compile(str(operand))
                except re.error as exc:
                    raise MatcherError(f"invalid regular expression at {where}: {exc}") from None
            elif op == "$type" and operand not in TYPES:
                raise MatcherError(f"unknown type `{operand}` at {where}; use one of {', '.join(TYPES)}")
            elif op in ("$gt", "$gte", "$lt", "$lte") and (
                not isinstance(operand, int | float) or isinstance(operand, bool)
            ):
                raise MatcherError(f"{op} needs a number at {where}, got {operand!r}")
            elif op == "$jsonpath":
                if not isinstance(operand, dict) or not operand:
                    raise MatcherError(f"$jsonpath needs a mapping of path to expected value at {where}")
                for jp, inner in operand.items():
                    try:
                        parse_jsonpath(str(jp))
                    except Exception as exc:  # noqa: BLE001 - jsonpath-ng raises several types
                        raise MatcherError(f"invalid JSONPath {jp!r} at {where}: {exc}") from None
                    validate(inner, f"{where}[{jp}]")
            elif op == "$any_of":
                if not isinstance(operand, list) or not operand:
                    raise MatcherError(f"$any_of needs a non-empty list at {where}")
                for i, inner in enumerate(operand):
                    validate(inner, f"{where}[{i}]")
            elif op in ("$subset", "$not", "$len", "$contains"):
                validate(operand, where)
    elif isinstance(expected, dict):
        for key, inner in expected.items():
            validate(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(expected, list):
        for i, inner in enumerate(expected):
            validate(inner, f"{path}[{i}]")


def _show(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)[:300]


def mismatches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    if is_matcher(expected):
        problems: list[str] = []
        for op, operand in expected.items():
            problems.extend(_apply(op, operand, actual, path))
        return problems
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {_show(actual)}"]
        problems = [f"{path}: missing key {k!r}" for k in expected if k not in actual]
        problems += [f"{path}: unexpected key {k!r}" for k in actual if k not in expected]
        for key in expected:
            if key in actual:
                problems.extend(mismatches(expected[key], actual[key], f"{path}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {_show(actual)}"]
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}: {_show(actual)}"]
        problems = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problems.extend(mismatches(e, a, f"{path}[{i}]"))
        return problems
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = type(expected) is type(actual) and expected == actual
    else:
        same = expected == actual
    return [] if same else [f"{path}: expected {_show(expected)}, got {_show(actual)}"]


def _apply(op: str, operand: Any, actual: Any, path: str) -> list[str]:
    if op == "$regex":
        ok = isinstance(actual, str) and re.fullmatch(str(operand), actual) is not None
        return [] if ok else [f"{path}: {_show(actual)} does not match /{operand}/"]
    if op == "$contains":
        if isinstance(actual, str) and isinstance(operand, str):
            return [] if operand in actual else [f"{path}: {_show(actual)} does not contain {operand!r}"]
        if isinstance(actual, list):
            hit = any(not mismatches(operand, item) for item in actual)
            return [] if hit else [f"{path}: no element matches {_show(operand)}"]
        return [f"{path}: $contains needs a string or list, got {_show(actual)}"]
    if op == "$type":
        return [] if TYPES[operand](actual) else [f"{path}: expected type {operand}, got {_show(actual)}"]
    if op == "$subset":
        return _subset(operand, actual, path)
    if op == "$jsonpath":
        problems: list[str] = []
        for jp, inner in operand.items():
            found = [m.value for m in parse_jsonpath(str(jp)).find(actual)]
            if not found:
                problems.append(f"{path}: JSONPath {jp} selects nothing")
            for value in found:
                problems.extend(mismatches(inner, value, f"{path}{str(jp).removeprefix('$')}"))
        return problems
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return [f"{path}: expected a number {op[1:]} {operand}, got {_show(actual)}"]
        ok = {
            "$gt": actual > operand,
            "$gte": actual >= operand,
            "$lt": actual < operand,
            "$lte": actual <= operand,
        }[op]
        return [] if ok else [f"{path}: {actual} is not {op[1:]} {operand}"]
    if op == "$len":
        if not isinstance(actual, str | list | dict):
            return [f"{path}: $len needs a string, list or mapping, got {_show(actual)}"]
        return mismatches(operand, len(actual), f"{path}.length")
    if op == "$any_of":
        if any(not mismatches(alt, actual, path) for alt in operand):
            return []
        return [f"{path}: {_show(actual)} matches none of {_show(operand)}"]
    if op == "$not":
        return (
            [f"{path}: {_show(actual)} should not match {_show(operand)}"]
            if not mismatches(operand, actual)
            else []
        )
    raise MatcherError(f"unknown matcher `{op}`")


def _subset(expected: Any, actual: Any, path: str) -> list[str]:
    if isinstance(expected, dict) and not is_matcher(expected):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {_show(actual)}"]
        problems = []
        for key, inner in expected.items():
            if key not in actual:
                problems.append(f"{path}: missing key {key!r}")
            elif isinstance(inner, dict | list) and not is_matcher(inner):
                problems.extend(_subset(inner, actual[key], f"{path}.{key}"))
            else:
                problems.extend(mismatches(inner, actual[key], f"{path}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {_show(actual)}"]
        return [
            f"{path}: no element matches {_show(e)}"
            for e in expected
            if not any(not _subset(e, a, path) for a in actual)
        ]
    return mismatches(expected, actual, path)


def render_failure(what: str, expected: Any, actual: Any, problems: list[str] | None = None) -> str:
    """Expected and actual side by side, the mismatches, and a unified diff for structured values."""

    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, indent=2, default=str, sort_keys=True)

    lines = [what, f"  expected: {show(expected)}", f"  actual:   {show(actual)}"]
    if problems:
        lines.append("  mismatches:")
        lines.extend(f"    - {p}" for p in problems[:20])
    if isinstance(actual, dict | list) and isinstance(expected, dict | list) and not is_matcher(expected):
        diff = difflib.unified_diff(
            show(expected).splitlines(), show(actual).splitlines(), "expected", "actual", lineterm="", n=2
        )
        text = "\n".join(f"    {line}" for line in diff)
        if text:
            lines += ["  diff:", text]
    return "\n".join(lines)
