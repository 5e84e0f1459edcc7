"""`${saved.NAME}` placeholders: values a `save` step stored, used by later steps and expectations.

    ${saved.manifest}                the whole value
    ${saved.manifest.copies.0}       dotted into mappings and list indexes
    $${saved.x}                      a literal `${saved.x}` (`$${` always gives `${`)

A string that is exactly one placeholder becomes the saved value itself, with its type
(a mapping stays a mapping, a number a number). A placeholder inside a longer string is
replaced by the value's text: strings as they are, anything else as JSON.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from harness.errors import HarnessError

_TOKEN = re.compile(r"\$\$\{|\$\{saved(?:\.(?P<path>[^}]*))?\}")
_WHOLE = re.compile(r"\$\{saved(?:\.(?P<path>[^}]*))?\}")


def interpolate(value: Any, saved: Mapping[str, Any]) -> Any:
    """`value` with every placeholder in every string (nested in dicts and lists) replaced."""
    if isinstance(value, str):
        return _string(value, saved)
    if isinstance(value, Mapping):
        return {
            (_text(_string(k, saved)) if isinstance(k, str) else k): interpolate(v, saved)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, saved) for v in value]
    if isinstance(value, tuple):
        return tuple(interpolate(v, saved) for v in value)
    return value


def _string(text: str, saved: Mapping[str, Any]) -> Any:
    if "${" not in text:
        return text
    whole = _WHOLE.fullmatch(text)
    if whole is not None:
        return copy.deepcopy(lookup(whole.group("path"), saved))

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        return _text(lookup(match.group("path"), saved))

    return _TOKEN.sub(replace, text)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def lookup(path: str | None, saved: Mapping[str, Any]) -> Any:
    """The value at `NAME.field.0...` among the saved values; HarnessError naming what exists."""
    if not path:
        raise HarnessError("`${saved}` needs a name: write `${saved.NAME}`")
    name, *parts = path.split(".")
    if name not in saved:
        known = ", ".join(sorted(saved)) or "nothing has been saved yet"
        raise HarnessError(
            f"`${{saved.{path}}}`: no saved value named {name!r} (saved: {known})",
            hint="a `save` step earlier in the scenario stores a value under `name`",
        )
    current = saved[name]
    walked = name
    for part in parts:
        if isinstance(current, Mapping):
            if part not in current:
                keys = ", ".join(map(str, current)) or "none"
                raise HarnessError(f"`${{saved.{path}}}`: {walked} has no key {part!r} (keys: {keys})")
            current = current[part]
        elif isinstance(current, list | tuple):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                raise HarnessError(
                    f"`${{saved.{path}}}`: {walked} is a list of {len(current)}, "
                    f"and {part!r} is not an index in it"
                ) from None
        else:
            raise HarnessError(
                f"`${{saved.{path}}}`: {walked} is {type(current).__name__} {current!r}, "
                f"so it has no field {part!r}"
            )
        walked += f".{part}"
    return current
