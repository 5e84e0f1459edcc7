"""The worker's business logic, pure: parse one input file, normalise its records, add statistics.

Input by extension (case-insensitive): `.csv` (UTF-8, a header row), `.json` (a list of
objects or `{"records": [...]}`) and `.jsonl` (one object per non-blank line).

Normalisation, idempotent (normalising twice changes nothing):
- keys: stripped, lower-cased, whitespace and dashes to underscores (`" Unit Price"` ->
  `unit_price`); a blank CSV header cell becomes `column_<n>`; a later duplicate key wins;
- string values: stripped; empty -> null; numeric-looking (`-3`, `2.50`, `1e3`) -> int or
  float, except strings with a leading zero such as `007` (identifiers, zip codes), which
  stay strings; other values (numbers, booleans, nulls, nested) are kept as they are.

Statistics: record_count, fields (sorted union of keys), numeric (per field with at least one
int/float value, booleans excluded: count, min, max, mean, sum) and null_counts (per field:
records where the value is null or the field is absent).

A file that cannot be read as a whole raises PoisonJob with a reason; retrying cannot fix it.
The output is the same for the same input apart from `processed_at`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import posixpath
import re
from typing import Any

FORMATS = (".csv", ".json", ".jsonl")
_SEPARATORS = re.compile(r"[\s\-]")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LEADING_ZERO = re.compile(r"[+-]?0\d")

Record = dict[str, Any]


class PoisonJob(Exception):
    """A job that can never succeed (bad job message, missing or unreadable input)."""


# --- normalise --------------------------------------------------------------------------------


def normalise_key(key: object) -> str:
    return _SEPARATORS.sub("_", str(key).strip().lower())


def normalise_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    return _number(text)


def _number(text: str) -> Any:
    """An int or float for numeric-looking text, else the text itself."""
    if not _DECIMAL.fullmatch(text) or _LEADING_ZERO.match(text):
        return text
    try:
        number: int | float = int(text) if _INTEGER.fullmatch(text) else float(text)
    except ValueError:  # more digits than int() accepts
        return text
    if isinstance(number, float) and not math.isfinite(number):
        return text  # "1e999" would become infinity, which JSON cannot carry
    return number


def normalise_record(record: Record) -> Record:
    return {normalise_key(key): normalise_value(value) for key, value in record.items()}


# --- parse ------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PoisonJob(f"input is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        raise PoisonJob("input file is empty")
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise PoisonJob(f"invalid JSON{where}: nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise PoisonJob(f"invalid JSON{where}: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:
        raise PoisonJob(f"invalid JSON{where}: {exc}") from exc


def _objects(items: list[Any], what: str) -> list[Record]:
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise PoisonJob(f"{what} {number} is a {type(item).__name__}, not an object")
    return items


def parse_csv(text: str) -> list[Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or all(not cell.strip() for cell in header):
            raise PoisonJob("CSV has no header row")
        if all(isinstance(_number(cell.strip()), int | float) for cell in header):
            raise PoisonJob("CSV has no header row (the first row is all numbers)")
        names = [cell if cell.strip() else f"column_{n}" for n, cell in enumerate(header, start=1)]
        records: list[Record] = []
        for row in reader:
            if not row:
                continue  # blank line
            if len(row) > len(names):
                raise PoisonJob(f"CSV line {reader.line_num} has {len(row)} fields, the header {len(names)}")
            padded = row + [""] * (len(names) - len(row))  # short rows: missing cells are null
            records.append(dict(zip(names, padded, strict=True)))
    except csv.Error as exc:
        raise PoisonJob(f"broken CSV at line {reader.line_num}: {exc}") from exc
    return records


def parse_json(text: str) -> list[Record]:
    document = _json(text, "")
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        return _objects(document["records"], "record")
    if isinstance(document, list):
        return _objects(document, "record")
    raise PoisonJob('JSON input is neither a list of objects nor {"records": [...]}')


def parse_jsonl(text: str) -> list[Record]:
    records: list[Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        item = _json(line, f" on line {number}")
        if not isinstance(item, dict):
            raise PoisonJob(f"line {number} is a {type(item).__name__}, not an object")
        records.append(item)
    return records


def parse_records(key: str, data: bytes) -> list[Record]:
    """The raw records of one input file; PoisonJob when the file cannot be read."""
    extension = posixpath.splitext(key)[1].lower()
    if extension not in FORMATS:
        raise PoisonJob(f"unsupported input type {extension or '(none)'!r}; expected .csv, .json or .jsonl")
    text = _decode(data)
    if extension == ".csv":
        return parse_csv(text)
    if extension == ".jsonl":
        return parse_jsonl(text)
    return parse_json(text)


# --- statistics and document ------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compute_stats(records: list[Record]) -> dict[str, Any]:
    fields = sorted({name for record in records for name in record})
    numeric: dict[str, dict[str, Any]] = {}
    for name in fields:
        values = [record[name] for record in records if _is_number(record.get(name))]
        if values:
            total = sum(values)
            numeric[name] = {
                "count": len(values),
                "min": min(values),
                "max": max(values),
                "mean": total / len(values),
                "sum": total,
            }
    null_counts = {name: sum(1 for record in records if record.get(name) is None) for name in fields}
    return {"record_count": len(records), "fields": fields, "numeric": numeric, "null_counts": null_counts}


def build_document(
    *, job_id: str, bucket: str, key: str, etag: str, data: bytes, processed_at: str
) -> dict[str, Any]:
    records = [normalise_record(record) for record in parse_records(key, data)]
    return {
        "job_id": job_id,
        "source": {"bucket": bucket, "key": key, "etag": etag},
        "processed_at": processed_at,
        "stats": compute_stats(records),
        "records": records,
    }


def render(document: dict[str, Any]) -> bytes:
    """The output body: compact, sorted keys, so equal documents are equal bytes."""
    try:
        return json.dumps(document, sort_keys=True, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as exc:  # e.g. a float sum that overflowed to infinity
        raise PoisonJob(f"result cannot be written as JSON: {exc}") from exc
