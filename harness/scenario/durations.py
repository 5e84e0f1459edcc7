"""Durations as scenario files write them: `500ms`, `20s`, `2m`, `1h30m`, or a number of seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 3650 * 86400  # ten years of virtual time is more than any scenario needs


def parse_duration(value: str | int | float) -> timedelta:
    if isinstance(value, bool):
        raise ValueError("a duration, like 20s, 2m or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return _seconds(float(value))
    text = value.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 20s, 2m, 1h30m)")
    return _seconds(total)


def _seconds(total: float) -> timedelta:
    if not math.isfinite(total) or total > MAX_SECONDS:
        raise ValueError(f"a duration must be finite and at most {MAX_SECONDS // 86400} days")
    return timedelta(seconds=total)
