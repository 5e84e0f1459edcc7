"""harness.scenario.durations.parse_duration: accepted forms, rejected forms, a round-trip property."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.scenario.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("20s", timedelta(seconds=20)),
        ("2m", timedelta(minutes=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
        ("1d", timedelta(days=1)),
        ("0s", timedelta(0)),
        ("1h1m1s1ms", timedelta(hours=1, minutes=1, seconds=1, milliseconds=1)),
        ("0.25h", timedelta(minutes=15)),
        (" 2m ", timedelta(minutes=2)),
        (5, timedelta(seconds=5)),
        (0, timedelta(0)),
        (2.5, timedelta(seconds=2.5)),
    ],
)
def test_valid_durations(text: str | int | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "10x", "10", "s", "m5", "-5s", "5s-", "1.s", ".5s", "1h30", "ms5", "1,5s", "5ms!"],
)
def test_invalid_strings(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_spaces_inside_units_are_rejected() -> None:
    with pytest.raises(ValueError):
        parse_duration("5 m s")


@pytest.mark.parametrize("value", [-1, -0.001, -3600])
def test_negative_numbers_are_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected(value: bool) -> None:
    with pytest.raises(ValueError, match="a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [float("inf"), "99999999999999d"])
def test_out_of_range_durations_raise_value_error(value: str | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_nan_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_duration(float("nan"))


def _render(days: int, hours: int, minutes: int, seconds: int, millis: int) -> str:
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


small = st.integers(min_value=0, max_value=10_000)


@settings(database=None, derandomize=True, deadline=None)
@given(st.integers(0, 300), small, small, small, st.integers(0, 999))
def test_round_trip(days: int, hours: int, minutes: int, seconds: int, millis: int) -> None:
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis)
    assert parse_duration(_render(days, hours, minutes, seconds, millis)) == expected


@settings(database=None, derandomize=True, deadline=None)
@given(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)).map(
        lambda d: d - d % timedelta(milliseconds=1)
    )
)
def test_round_trip_from_timedelta(value: timedelta) -> None:
    whole_seconds = int(value.total_seconds())
    millis = value.microseconds // 1000
    days, rest = divmod(whole_seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    assert parse_duration(_render(days, hours, minutes, seconds, millis)) == value


@settings(database=None, derandomize=True, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_numbers_are_seconds(value: float) -> None:
    assert parse_duration(value) == timedelta(seconds=value)
