"""Validation and normalisation of one record (a pydantic model for the four known fields).

A record is an object with:

- `id` (required): a string or an integer, stored as a stripped string of 1-128 characters.
- `value` (required): a finite number in [-1e9, 1e9] or a non-empty string of at most 1024
  characters. Booleans, lists, objects and null are type errors. In CSV files a numeric
  string becomes a number (`"12.5"` -> 12.5, `"7"` -> 7); elsewhere strings stay strings.
- `timestamp` (optional): an ISO-8601 date or date-time string; naive means UTC. Missing,
  null or blank means the default: the S3 event time of the object (now for direct calls).
- `source` (optional): 1-64 characters of `[A-Za-z0-9_.-]`. Missing, null or blank means
  the default: `"direct"` for direct calls (or the call's own `source`); for a file, the
  segment after `incoming/` when the key is `incoming/<source>/...`, else the first segment
  of a key that has a `/`, else `"unknown"` (see `default_source_for_key`).

Every other field is kept. Normalisation: top-level keys become snake_case (`"Sensor Name"`
-> `sensor_name`) and top-level strings are stripped. The stored `payload` is the whole
normalised record, with `id`, `value`, `timestamp` (ISO-8601 UTC) and `source` as resolved,
so validating a payload again gives the same payload.

A record is rejected, with every reason found (`"value: must be <= 1000000000"`,
`"id: field required"`), when a field is invalid, two keys normalise to the same name,
a key normalises to nothing, a string holds NUL or an unpaired surrogate, or a number
anywhere is NaN/infinite (PostgreSQL jsonb and Parquet cannot hold those). A repeated `id`
within one file or call is rejected too ("id: duplicate of line 3"), so the Parquet file and
the database always hold the same rows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from pipeline.ingest.names import snake_case
from pipeline.ingest.parsing import RawRecord

VALUE_LIMIT = 1_000_000_000
MAX_ID = 128
MAX_TEXT = 1024
MAX_SOURCE = 64
_SOURCE = re.compile(r"[A-Za-z0-9_.-]+")
_NOT_SOURCE = re.compile(r"[^A-Za-z0-9_.-]+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_OPTIONAL = ("timestamp", "source")


@dataclass(frozen=True)
class Defaults:
    """What a record gets when it has no timestamp or source of its own."""

    event_time: datetime
    source: str


@dataclass(frozen=True)
class ValidRecord:
    line: int
    record_id: str
    source: str
    event_time: datetime  # UTC
    value_numeric: float | None
    value_text: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    line: int
    reasons: list[str]
    record: Any  # the raw record (JSON-safe), or None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", list: "list", dict: "object", float: "float"}.get(
        type(value), type(value).__name__
    )


def _check_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a string or an integer, not {_type_name(value)}")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_ID:
        raise ValueError(f"must be at most {MAX_ID} characters")
    return text


def _check_value(value: Any) -> int | float | str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number or a non-empty string, not {_type_name(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("must not be empty")
        if len(text) > MAX_TEXT:
            raise ValueError(f"must be at most {MAX_TEXT} characters")
        return text
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value > VALUE_LIMIT:
        raise ValueError(f"must be <= {VALUE_LIMIT}")
    if value < -VALUE_LIMIT:
        raise ValueError(f"must be >= {-VALUE_LIMIT}")
    return value


def _check_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"must be an ISO-8601 date-time, not {value.strip()[:40]!r}") from None
    else:
        raise ValueError(f"must be an ISO-8601 date-time string, not {_type_name(value)}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def check_source(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_type_name(value)}")
    text = value.strip()
    if len(text) > MAX_SOURCE:
        raise ValueError(f"must be at most {MAX_SOURCE} characters")
    if not _SOURCE.fullmatch(text):
        raise ValueError("must contain only letters, digits, '_', '.' and '-'")
    return text


class Record(BaseModel):
    """The four fields every record has; the rest of the record travels in the payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, BeforeValidator(_check_id)]
    value: Annotated[int | float | str, BeforeValidator(_check_value)]
    timestamp: Annotated[datetime, BeforeValidator(_check_timestamp)]
    source: Annotated[str, BeforeValidator(check_source)]


def default_source_for_key(key: str) -> str:
    """`incoming/sensors/a.csv` -> sensors, `raw/x.json` -> raw, `x.json` -> unknown."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "incoming":
        segment = parts[1]
    elif len(parts) >= 2:
        segment = parts[0]
    else:
        segment = ""
    # The default must itself be a valid source, or every record of the file would fail.
    cleaned = _NOT_SOURCE.sub("_", segment)[:MAX_SOURCE]
    return cleaned or "unknown"


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, as S3 and EventBridge write times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def validate_record(
    raw: RawRecord, defaults: Defaults, *, numeric_strings: bool = False
) -> ValidRecord | Rejected:
    if raw.data is None:
        return Rejected(raw.line, [raw.error or "record is unreadable"], json_safe(raw.raw))
    fields, reasons = _normalise(raw.data, numeric_strings=numeric_strings)
    for name in _OPTIONAL:
        if fields.get(name) is None or (isinstance(fields[name], str) and not fields[name].strip()):
            fields.pop(name, None)
    candidate = {"timestamp": defaults.event_time, "source": defaults.source, **fields}
    try:
        record = Record.model_validate(candidate)
    except ValidationError as exc:
        reasons = [*_reasons(exc), *reasons]
        record = None
    if record is None or reasons:
        return Rejected(raw.line, reasons, json_safe(raw.raw))
    payload = {
        **fields,
        "id": record.id,
        "value": record.value,
        "timestamp": iso(record.timestamp),
        "source": record.source,
    }
    numeric = isinstance(record.value, int | float)
    return ValidRecord(
        line=raw.line,
        record_id=record.id,
        source=record.source,
        event_time=record.timestamp,
        value_numeric=float(record.value) if numeric else None,
        value_text=None if numeric else str(record.value),
        payload=payload,
    )


def validate_records(
    records: Iterable[RawRecord], defaults: Defaults, *, numeric_strings: bool = False, position: str = "line"
) -> tuple[list[ValidRecord], list[Rejected]]:
    """Valid and rejected records, in input order; a repeated id is rejected after its first use."""
    valid: list[ValidRecord] = []
    rejected: list[Rejected] = []
    first_line: dict[str, int] = {}
    for raw in records:
        result = validate_record(raw, defaults, numeric_strings=numeric_strings)
        if isinstance(result, ValidRecord) and result.record_id in first_line:
            reason = f"id: duplicate of {position} {first_line[result.record_id]}"
            result = Rejected(raw.line, [reason], json_safe(raw.raw))
        if isinstance(result, ValidRecord):
            first_line[result.record_id] = result.line
            valid.append(result)
        else:
            rejected.append(result)
    return valid, rejected


def _normalise(data: dict[str, Any], *, numeric_strings: bool) -> tuple[dict[str, Any], list[str]]:
    fields: dict[str, Any] = {}
    original: dict[str, str] = {}
    reasons: list[str] = []
    for key, value in data.items():
        name = snake_case(str(key))
        if not name:
            reasons.append(f"{str(key)[:40]!r}: field name has no letters or digits")
            continue
        if name in fields:
            reasons.append(f"{name}: given more than once (as {original[name]!r} and {key!r})")
            continue
        if isinstance(value, str):
            value = value.strip()
            if numeric_strings and name == "value":
                value = _number_or_text(value)
        # The model checks the numbers of the known fields; here only what it does not cover.
        problem = None if name in Record.model_fields and not isinstance(value, str) else _unstorable(value)
        if problem:
            reasons.append(f"{name}: {problem}")
        fields[name] = value
        original[name] = str(key)
    return fields, reasons


def _number_or_text(text: str) -> int | float | str:
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)  # "1e999" becomes inf and is then rejected as not finite
    return text


def _unstorable(value: Any) -> str | None:
    """Why PostgreSQL jsonb or Parquet could not hold `value` (nested anywhere), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain unpaired surrogates"
        return None
    if isinstance(value, dict):
        items: Iterable[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        problem = _unstorable(item)
        if problem:
            return problem
    return None


def _reasons(exc: ValidationError) -> list[str]:
    reasons = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "record"
        if error["type"] == "missing":
            message = "field required"
        elif error["type"] == "value_error" and "error" in error.get("ctx", {}):
            message = str(error["ctx"]["error"])
        else:
            message = error["msg"]
        reasons.append(f"{field}: {message}")
    return reasons


def payload_json(payload: dict[str, Any]) -> str:
    """The payload as stored in Parquet and jsonb (validation has ruled out NaN and infinity)."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, allow_nan=False)


def json_safe(value: Any) -> Any:
    """`value` with whatever JSON, jsonb or UTF-8 cannot hold made printable, for reject records."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json_safe(str(value))
