"""pipeline.ingest.parsing: each format, the per-line rejects, and every whole-file ParseError."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.ingest import parsing
from pipeline.ingest.parsing import ParseError, RawRecord, parse


def test_csv_rows_with_line_numbers() -> None:
    body = b'\xef\xbb\xbfid,Value,Note\n1,12.5, a \n\n2,x,"multi\nline"\n3,4\n4,5,6,7\n'
    parsed = parse("incoming/s/a.csv", body)
    assert parsed.format == "csv"
    assert parsed.records == [
        RawRecord(
            2, {"id": "1", "Value": "12.5", "Note": " a "}, {"id": "1", "Value": "12.5", "Note": " a "}
        ),
        RawRecord(
            5,
            {"id": "2", "Value": "x", "Note": "multi\nline"},
            {"id": "2", "Value": "x", "Note": "multi\nline"},
        ),
        RawRecord(6, None, ["3", "4"], "row has 2 columns, the header has 3"),
        RawRecord(7, None, ["4", "5", "6", "7"], "row has 4 columns, the header has 3"),
    ]


def test_csv_columns_without_a_name_are_ignored() -> None:
    parsed = parse("a.CSV", b"id,value,\r\n1,2,\r\n")
    assert parsed.records == [RawRecord(2, {"id": "1", "value": "2"}, {"id": "1", "value": "2"})]


def test_csv_with_only_a_header_has_no_records() -> None:
    assert parse("a.csv", b"id,value\n").records == []


def test_json_list_and_data_object() -> None:
    first: dict[str, Any] = {"id": 1, "value": 2}
    items: list[Any] = [first, "nope", [1]]
    for body in (json.dumps(items), json.dumps({"data": items, "meta": 1})):
        parsed = parse("x.json", body.encode())
        assert parsed.format == "json"
        assert parsed.records == [
            RawRecord(1, first, first),
            RawRecord(2, None, "nope", "record is not a JSON object but a string"),
            RawRecord(3, None, [1], "record is not a JSON object but a list"),
        ]


def test_json_named_file_holding_json_lines_is_read_as_json_lines() -> None:
    parsed = parse("x.json", b'{"id": 1, "value": 2}\n{"id": 2, "value": 3}\n')
    assert parsed.format == "jsonl"
    assert [r.data for r in parsed.records] == [{"id": 1, "value": 2}, {"id": 2, "value": 3}]


@pytest.mark.parametrize("key", ["x.jsonl", "x.ndjson", "dir/X.JSONL"])
def test_json_lines(key: str) -> None:
    body = b'{"id": 1, "value": 2}\n\n  \n{"id": 2,\n[1, 2]\r\n{"id": 3, "value": "\xe2\x80\xa8"}\n'
    parsed = parse(key, body)
    assert parsed.format == "jsonl"
    lines = [(r.line, r.error) for r in parsed.records]
    assert lines == [
        (1, None),
        (4, "invalid JSON at column 10: Expecting property name enclosed in double quotes"),
        (5, "record is not a JSON object but a list"),
        (6, None),
    ]
    assert parsed.records[1].raw == '{"id": 2,'
    assert parsed.records[3].data == {"id": 3, "value": "\u2028"}


@pytest.mark.parametrize(
    ("key", "body", "message"),
    [
        ("x.txt", b"id,value\n1,2\n", "unsupported file type '.txt'"),
        ("noext", b"id,value\n1,2\n", "unsupported file type '(no extension)'"),
        ("x.csv", b"", "file is empty"),
        ("x.json", b"  \n\t", "file is empty"),
        ("x.jsonl", b"\xef\xbb\xbf\n\n", "file is empty"),
        ("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text (invalid byte at offset 0)"),
        ("x.json", b'{"a": "\x00"}', "contains NUL bytes"),
        ("x.json", b'{"id": 1, "value": ', "invalid JSON at line 1 column 20"),
        ("x.json", b"[1, 2", "invalid JSON"),
        (
            "x.json",
            b'{"id": 1}',
            'JSON must be a list of records or {"data": [...]}, not an object with keys [id]',
        ),
        ("x.json", b'{"data": {"id": 1}}', "not an object with keys [data]"),
        ("x.json", b"42", "not a number"),
        ("x.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("x.csv", b"1,12.5\n2,13\n", "CSV header must name the columns id and value; found '1', '12.5'"),
        ("x.csv", b"id,value,ID\n1,2,3\n", "CSV header names a column more than once: id"),
        (
            "x.csv",
            b"id,value\n1," + b"x" * 200_000 + b"\n",
            "CSV error on line 2: field larger than field limit",
        ),
    ],
)
def test_parse_errors(key: str, body: bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(key, body)
    assert message in str(info.value)


def test_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ParseError, match=r"file is 60\.0 MiB; the limit is 50 MiB"):
        parsing.check_size(60 * 1_048_576)
    parsing.check_size(50 * 1_048_576)
    monkeypatch.setattr(parsing, "MAX_BYTES", 10)
    with pytest.raises(ParseError, match=r"file is 0\.0 MiB"):
        parse("x.csv", b"id,value\n1,2\n")


def test_records_from_items_numbers_from_first() -> None:
    records = parsing.records_from_items([{"id": 1}, None], first=0)
    assert records == [
        RawRecord(0, {"id": 1}, {"id": 1}),
        RawRecord(1, None, None, "record is not a JSON object but null"),
    ]
