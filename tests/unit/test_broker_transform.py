"""The broker worker's transform: parsing, normalisation, statistics, poison inputs."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.broker import transform
from pipeline.broker.transform import PoisonJob


def document(key: str, data: bytes, processed_at: str = "2026-01-15T08:00:00.000Z") -> dict[str, Any]:
    return transform.build_document(
        job_id="job-1", bucket="in", key=key, etag="e1", data=data, processed_at=processed_at
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Unit Price ", "unit_price"),
        ("Order-ID", "order_id"),
        ("a\tb", "a_b"),
        ("already_fine", "already_fine"),
        (7, "7"),
    ],
)
def test_keys_are_normalised(raw: object, expected: str) -> None:
    assert transform.normalise_key(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  hello ", "hello"),
        ("", None),
        ("   ", None),
        ("42", 42),
        ("-3", -3),
        ("+5", 5),
        ("2.50", 2.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("0", 0),
        ("0.25", 0.25),
        ("007", "007"),  # leading zero: an identifier, kept as text
        ("1e999", "1e999"),  # would be infinity
        ("12abc", "12abc"),
        ("nan", "nan"),
        (3, 3),
        (True, True),
        (None, None),
        ([1, " x "], [1, " x "]),  # nested values are kept as they are
    ],
)
def test_values_are_normalised(raw: Any, expected: Any) -> None:
    assert transform.normalise_value(raw) == expected
    assert type(transform.normalise_value(raw)) is type(expected)


def test_csv_is_parsed_normalised_and_counted() -> None:
    data = b"Name, Unit Price ,Qty,Zip\n alice ,2.50,3,01234\nbob,,4,\n"
    doc = document("incoming/orders.csv", data)
    assert doc["records"] == [
        {"name": "alice", "unit_price": 2.5, "qty": 3, "zip": "01234"},
        {"name": "bob", "unit_price": None, "qty": 4, "zip": None},
    ]
    assert doc["stats"] == {
        "record_count": 2,
        "fields": ["name", "qty", "unit_price", "zip"],
        "numeric": {
            "qty": {"count": 2, "min": 3, "max": 4, "mean": 3.5, "sum": 7},
            "unit_price": {"count": 1, "min": 2.5, "max": 2.5, "mean": 2.5, "sum": 2.5},
        },
        "null_counts": {"name": 0, "qty": 0, "unit_price": 1, "zip": 1},
    }
    assert doc["source"] == {"bucket": "in", "key": "incoming/orders.csv", "etag": "e1"}
    assert doc["job_id"] == "job-1"


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("a.json", b'[{"Id": "1", "Tag": " x "}, {"Id": 2}]'),
        ("a.JSON", b'{"records": [{"Id": "1", "Tag": " x "}, {"Id": 2}]}'),
        ("a.jsonl", b'{"Id": "1", "Tag": " x "}\n\n{"Id": 2}\n'),
        ("a.csv", b"\xef\xbb\xbfId,Tag\n1, x \n2,\n"),  # with a byte-order mark
    ],
)
def test_every_format_gives_the_same_records(key: str, data: bytes) -> None:
    records = document(key, data)["records"]
    assert [record["id"] for record in records] == [1, 2]
    assert records[0]["tag"] == "x"
    # A JSON record without the field and a CSV record with an empty cell both count as null.
    assert document(key, data)["stats"]["null_counts"]["tag"] == 1


def test_short_csv_rows_are_padded_and_blank_header_cells_named() -> None:
    doc = document("a.csv", b"a,,c\n1\n")
    assert doc["records"] == [{"a": 1, "column_2": None, "c": None}]


def test_header_only_csv_has_no_records() -> None:
    assert document("a.csv", b"a,b\n")["stats"] == {
        "record_count": 0,
        "fields": [],
        "numeric": {},
        "null_counts": {},
    }


@pytest.mark.parametrize(
    ("key", "data", "reason"),
    [
        ("a.csv", b"", "empty"),
        ("a.json", b"  \n", "empty"),
        ("a.csv", b"\xff\xfe\x00bad", "not UTF-8"),
        ("a.json", b"{not json", "invalid JSON"),
        ("a.json", b'{"rows": []}', "neither a list"),
        ("a.json", b"[1, 2]", "record 1 is a int"),
        ("a.json", b'[{"v": NaN}]', "NaN"),
        ("a.jsonl", b'{"a": 1}\n{oops\n', "line 2"),
        ("a.jsonl", b'{"a": 1}\n[1]\n', "line 2 is a list"),
        ("a.csv", b"1,2,3\n4,5,6\n", "no header"),
        ("a.csv", b"a,b\n1,2,3\n", "line 2 has 3 fields"),
        ("a.txt", b"hello", "unsupported input type '.txt'"),
        ("noextension", b"hello", "unsupported input type '(none)'"),
    ],
)
def test_unreadable_input_is_poison(key: str, data: bytes, reason: str) -> None:
    with pytest.raises(PoisonJob, match=reason.replace("(", r"\(").replace(")", r"\)")):
        document(key, data)


def test_output_is_deterministic_apart_from_processed_at() -> None:
    data = b"b,a\n2,1\n3,x\n"
    first = transform.render(document("a.csv", data, "2026-01-15T08:00:00.000Z"))
    second = transform.render(document("a.csv", data, "2026-01-15T09:00:00.000Z"))
    assert first.replace(b"08:00", b"09:00") == second
    assert json.loads(first)["processed_at"] == "2026-01-15T08:00:00.000Z"


# --- properties -------------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    _text,
    st.sampled_from(["", " 1 ", "007", "-2.5", "1e3", " x ", "0", "+4"]),
)
_records = st.lists(
    st.dictionaries(st.one_of(_text, st.sampled_from(["A b", "a-B", " ab "])), _scalars), max_size=6
)


@settings(max_examples=100, deadline=None)
@given(_records)
def test_normalisation_is_idempotent(records: list[dict[str, Any]]) -> None:
    once = [transform.normalise_record(record) for record in records]
    assert [transform.normalise_record(record) for record in once] == once


@settings(max_examples=100, deadline=None)
@given(_records)
def test_stats_match_the_records(records: list[dict[str, Any]]) -> None:
    normalised = [transform.normalise_record(record) for record in records]
    stats = transform.compute_stats(normalised)
    assert stats["record_count"] == len(normalised)
    assert stats["fields"] == sorted({name for record in normalised for name in record})
    for name in stats["fields"]:
        values = [
            r[name]
            for r in normalised
            if isinstance(r.get(name), int | float) and not isinstance(r.get(name), bool)
        ]
        nulls = sum(1 for r in normalised if r.get(name) is None)
        assert stats["null_counts"][name] == nulls
        if not values:
            assert name not in stats["numeric"]
            continue
        numeric = stats["numeric"][name]
        assert numeric["count"] == len(values)
        assert (numeric["min"], numeric["max"]) == (min(values), max(values))
        assert math.isclose(numeric["sum"], math.fsum(values), rel_tol=1e-9, abs_tol=1e-6)
        assert numeric["min"] <= numeric["mean"] + 1e-9 and numeric["mean"] <= numeric["max"] + 1e-9
