"""Raw files to raw records: the format comes from the key's extension, validity from the content.

- `.csv`: the first non-blank row is the header and must name the columns `id` and `value`
  (after key normalisation), otherwise the header is taken to be missing. Columns with a
  blank header are ignored. A row with the wrong number of cells is a rejected record, not a
  parse failure; blank rows are skipped. `line` is the line a row ends on.
- `.json`: a list of records, or an object `{"data": [...]}`. `line` is the record's 1-based
  position in the list. A `.json` file that holds one JSON object per line (a valid object
  followed by more data) is read as JSON lines, since that is a common misnaming.
- `.jsonl` / `.ndjson`: one object per line; blank lines are skipped, and a line that is not
  valid JSON or not an object is a rejected record with its line number.

Anything that cannot be read at all raises `ParseError` with a message for the operator:
unknown extension, empty file, not UTF-8 / binary, invalid JSON document, JSON of the wrong
shape, CSV without a usable header, or more than `MAX_BYTES`.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.ingest.names import snake_case

MAX_BYTES = 50 * 1024 * 1024
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class ParseError(ValueError):
    """A file that cannot be parsed at all; retrying will not help."""


@dataclass(frozen=True)
class RawRecord:
    """One record as read: `data` to validate, or `error` when the line itself is unusable."""

    line: int
    data: dict[str, Any] | None
    raw: Any  # what a reject shows: the parsed object, the line's text, or the CSV cells
    error: str | None = None


@dataclass(frozen=True)
class ParsedFile:
    format: str  # "csv", "json" or "jsonl"
    records: list[RawRecord]


def file_format(key: str) -> str:
    extension = posixpath.splitext(key)[1].lower()
    try:
        return FORMATS[extension]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ParseError(
            f"unsupported file type {extension or '(no extension)'!r}; expected {known}"
        ) from None


def check_size(size: int) -> None:
    if size > MAX_BYTES:
        raise ParseError(f"file is {size / 1_048_576:.1f} MiB; the limit is {MAX_BYTES // 1_048_576} MiB")


def parse(key: str, body: bytes) -> ParsedFile:
    """The records of one object; raises ParseError if the file is unusable as a whole."""
    fmt = file_format(key)
    check_size(len(body))
    text = decode(body)
    if fmt == "csv":
        return ParsedFile("csv", parse_csv(text))
    if fmt == "json":
        return parse_json(text)
    return ParsedFile("jsonl", parse_json_lines(text))


def decode(body: bytes) -> str:
    try:
        text = body.decode("utf-8-sig")  # tolerate the BOM that spreadsheet exports add
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"not UTF-8 text (invalid byte at offset {exc.start}); is it a binary file?"
        ) from None
    if "\x00" in text:
        raise ParseError("file contains NUL bytes; is it a binary file?")
    if not text.strip():
        raise ParseError("file is empty")
    return text


def parse_csv(text: str) -> list[RawRecord]:
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[RawRecord] = []
    try:
        header = _csv_header(reader)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                error = f"row has {len(row)} columns, the header has {len(header)}"
                records.append(RawRecord(reader.line_num, None, row, error))
                continue
            data = {name: cell for name, cell in zip(header, row, strict=True) if name.strip()}
            records.append(RawRecord(reader.line_num, data, data))
    except csv.Error as exc:
        raise ParseError(f"CSV error on line {reader.line_num}: {exc}") from None
    return records


def _csv_header(reader: Any) -> list[str]:
    for row in reader:
        if any(cell.strip() for cell in row):
            header: list[str] = row
            break
    else:
        raise ParseError("CSV has no header row")
    names = [snake_case(cell) for cell in header if cell.strip()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ParseError(f"CSV header names a column more than once: {', '.join(duplicates)}")
    if "id" not in names or "value" not in names:
        shown = ", ".join(repr(c) for c in header[:10])
        raise ParseError(f"CSV header must name the columns id and value; found {shown} (no header row?)")
    return header


def parse_json(text: str) -> ParsedFile:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and _starts_with_object(text):
            return ParsedFile("jsonl", parse_json_lines(text))
        raise ParseError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        items = document["data"]
    elif isinstance(document, list):
        items = document
    else:
        raise ParseError(f'JSON must be a list of records or {{"data": [...]}}, not {_describe(document)}')
    return ParsedFile("json", records_from_items(items, first=1))


def _starts_with_object(text: str) -> bool:
    try:
        first, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(first, dict)


def parse_json_lines(text: str) -> list[RawRecord]:
    records: list[RawRecord] = []
    # Split on "\n" only: str.splitlines would also split on U+2028, which JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append(RawRecord(number, None, line, f"invalid JSON at column {exc.colno}: {exc.msg}"))
            continue
        except RecursionError:
            records.append(RawRecord(number, None, line, "invalid JSON: nested too deeply"))
            continue
        records.append(_record(number, item))
    return records


def records_from_items(items: Sequence[Any], first: int) -> list[RawRecord]:
    """Records of an already parsed list, numbered from `first` (1 for files, 0 for direct calls)."""
    return [_record(first + offset, item) for offset, item in enumerate(items)]


def _record(line: int, item: Any) -> RawRecord:
    if isinstance(item, dict):
        return RawRecord(line, item, item)
    return RawRecord(line, None, item, f"record is not a JSON object but {_describe(item)}")


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value)[:5])
        return f"an object with keys [{keys}]" if keys else "an empty object"
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)
