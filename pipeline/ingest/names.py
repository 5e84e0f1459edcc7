"""Field-name normalisation, shared by the CSV header check and record validation."""

from __future__ import annotations

import re

_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")  # sensorName -> sensor_Name
_UPPER_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")  # HTTPCode -> HTTP_Code
_NOT_WORD = re.compile(r"[\W_]+")


def snake_case(name: str) -> str:
    """`" Sensor Name"`, `"sensorName"`, `"sensor-name"` -> `"sensor_name"`; idempotent."""
    spaced = _LOWER_UPPER.sub(r"\1_\2", _UPPER_WORD.sub(r"\1_\2", name.strip()))
    # Lower-case before dropping non-word characters: lower() can itself produce some
    # (e.g. a combining dot), and the result must not change when normalised again.
    return _NOT_WORD.sub("_", spaced.lower()).strip("_")
