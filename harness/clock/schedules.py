"""AWS schedule expressions evaluated on virtual time: pure computation, no I/O, no AWS.

The harness scheduler asks one question of this module: "which firings of this schedule fall in
the virtual-time window (start, end]?" It answers for the three AWS expression types:

* ``rate(N unit)``: EventBridge rules and EventBridge Scheduler. A fixed duration, independent of
  any time zone (Scheduler: "days represents a 24-hour duration", even on a 23 h or 25 h DST day).
* ``cron(m h dom mon dow year)``: AWS's six-field cron (``?``, ``L``, ``W``, ``#``, names,
  day-of-week 1 = Sunday). Rules evaluate it in UTC; Scheduler in ``schedule_expression_timezone``.
* ``at(yyyy-mm-ddThh:mm:ss)``: Scheduler one-time schedules, in the schedule's time zone.

Cron semantics come from pyawscron (measured correct for AWS cron; croniter maps AWS weekdays
wrongly): the per-month day rules (``L``, ``W``, ``#``, weekday lists) are pyawscron's own
functions. Its ``occurrence().next()`` walks one firing at a time and rebuilds the month's day
list on every step (33 ms for the 1,440 firings of ``* * * * ? *`` in a day, 150 ms with a
weekday list), so enumeration here goes month -> day -> hour -> minute over the parsed fields and
is checked against ``occurrence().next()`` by a hypothesis property test
(tests/unit/test_schedules.py). Parsing and validation are our own: pyawscron accepts invalid
expressions (``* *`` day pair, wrong field count) and breaks on some valid ones (a bare ``L``
day-of-week).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyawscron.commons import Commons

__all__ = [
    "AtExpression",
    "CronExpression",
    "RateExpression",
    "ScheduleError",
    "ScheduleExpression",
    "firings",
    "flexible_offset",
    "parse_expression",
]


class ScheduleError(ValueError):
    """An invalid schedule expression or argument; the message names the expression."""


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class RateExpression:
    text: str
    value: int
    unit: Literal["minute", "hour", "day"]

    @property
    def period(self) -> timedelta:
        return timedelta(**{f"{self.unit}s": self.value})


# A day-of-month or day-of-week field after parsing; None stands for "?".
#   ("list", values)   explicit values (names, ranges, steps and * already expanded)
#   ("L", (n,))        day-of-month: last day of the month minus n days (L, L-n)
#                      day-of-week:  the last weekday n of the month (nL, e.g. 6L = last Friday)
#   ("W", (n,))        day-of-month: the weekday nearest to day n, inside the month (nW)
#   ("#", (d, k))      day-of-week:  the k-th weekday d of the month (d#k, e.g. 6#3)
DaySpec = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: DaySpec | None
    months: tuple[int, ...]
    day_of_week: DaySpec | None
    years: tuple[int, ...]

    def days(self, year: int, month: int) -> tuple[int, ...]:
        """Days of ``month`` that match, ascending (AWS: exactly one of dom/dow is ``?``)."""
        return _days_in_month(self.day_of_month, self.day_of_week, year, month)


@dataclass(frozen=True)
class AtExpression:
    text: str
    moment: datetime  # naive wall-clock time in the schedule's time zone


ScheduleExpression = RateExpression | CronExpression | AtExpression


# --------------------------------------------------------------------------- parsing

_RATE = re.compile(r"rate\((?P<body>.*)\)", re.DOTALL)
_CRON = re.compile(r"cron\((?P<body>.*)\)", re.DOTALL)
_AT = re.compile(r"at\((?P<body>.*)\)", re.DOTALL)
_AT_BODY = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")
_Unit = Literal["minute", "hour", "day"]
_RATE_UNITS: dict[str, _Unit] = {"minute": "minute", "minutes": "minute", "hour": "hour", "hours": "hour"}
_RATE_UNITS |= {"day": "day", "days": "day"}

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_MINUTE = _Field("minutes", 0, 59)
_HOUR = _Field("hours", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day-of-week", 1, 7, _WEEKDAYS)
_YEAR = _Field("year", 1970, 2199)


@functools.lru_cache(maxsize=1024)
def parse_expression(expr: str) -> ScheduleExpression:
    """Parse an AWS ``rate(...)``, ``cron(...)`` or ``at(...)`` expression, or raise ScheduleError."""
    if not isinstance(expr, str):
        raise ScheduleError(f"schedule expression must be a string, got {type(expr).__name__}")
    text = expr.strip()
    if match := _RATE.fullmatch(text):
        return _parse_rate(text, match["body"])
    if match := _CRON.fullmatch(text):
        return _parse_cron(text, match["body"])
    if match := _AT.fullmatch(text):
        return _parse_at(text, match["body"])
    raise ScheduleError(f"{expr!r}: a schedule expression is rate(...), cron(...) or at(...)")


def _parse_rate(text: str, body: str) -> RateExpression:
    parts = body.split(" ")
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise ScheduleError(f"{text!r}: a rate expression is rate(<positive integer> <unit>)")
    value, unit = int(parts[0]), parts[1]
    if value < 1:
        raise ScheduleError(f"{text!r}: the rate value must be a positive integer, got {value}")
    if unit not in _RATE_UNITS:
        raise ScheduleError(f"{text!r}: unknown rate unit {unit!r}; use minute(s), hour(s) or day(s)")
    # AWS: "If the value is equal to 1, then the unit must be singular. If the value is greater
    # than 1, the unit must be plural." rate(1 minutes) and rate(5 minute) are rejected.
    singular = _RATE_UNITS[unit]
    if value == 1 and unit != singular:
        raise ScheduleError(f"{text!r}: a value of 1 takes the singular unit, rate(1 {singular})")
    if value > 1 and unit == singular:
        raise ScheduleError(f"{text!r}: a value above 1 takes the plural unit, rate({value} {singular}s)")
    return RateExpression(text, value, singular)


def _parse_at(text: str, body: str) -> AtExpression:
    match = _AT_BODY.fullmatch(body)
    if not match:
        raise ScheduleError(f"{text!r}: a one-time expression is at(yyyy-mm-ddThh:mm:ss)")
    try:
        year, month, day, hour, minute, second = (int(group) for group in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ScheduleError(f"{text!r}: {exc}") from None
    return AtExpression(text, moment)


def _parse_cron(text: str, body: str) -> CronExpression:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(
            f"{text!r}: an AWS cron expression has exactly 6 fields "
            f"(minutes hours day-of-month month day-of-week year), got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(
            f"{text!r}: use '?' in exactly one of day-of-month ({dom!r}) and day-of-week ({dow!r}); "
            "AWS cron cannot constrain (or leave open) both"
        )
    return CronExpression(
        text=text,
        minutes=_values(text, _MINUTE, minute),
        hours=_values(text, _HOUR, hour),
        day_of_month=_day_of_month(text, dom),
        months=_values(text, _MONTH, month),
        day_of_week=_day_of_week(text, dow),
        years=_values(text, _YEAR, year),
    )


def _number(text: str, field: _Field, token: str) -> int:
    upper = token.upper()
    if field.names and upper in field.names:
        return field.names[upper]
    if not token.isdigit() or not token.isascii():
        named = f" or a name ({', '.join(field.names)})" if field.names else ""
        raise ScheduleError(f"{text!r}: {field.name} value {token!r} is not a number{named}")
    value = int(token)
    if not field.low <= value <= field.high:
        raise ScheduleError(f"{text!r}: {field.name} value {value} is outside {field.low}-{field.high}")
    return value


def _range(text: str, field: _Field, part: str) -> tuple[int, int]:
    """``*``, ``a`` or ``a-b`` as an inclusive (start, end)."""
    if part == "*":
        return field.low, field.high
    if "-" in part:
        first, _, last = part.partition("-")
        start, end = _number(text, field, first), _number(text, field, last)
        if start > end:
            raise ScheduleError(f"{text!r}: {field.name} range {part!r} runs backwards")
        return start, end
    value = _number(text, field, part)
    return value, value


def _values(text: str, field: _Field, spec: str) -> tuple[int, ...]:
    """Expand a list of ``*``, ``a``, ``a-b``, ``*/s``, ``a/s``, ``a-b/s`` into sorted values."""
    if spec == "?":
        raise ScheduleError(f"{text!r}: '?' is only allowed in day-of-month or day-of-week, not {field.name}")
    values: set[int] = set()
    for part in spec.split(","):
        if not part:
            raise ScheduleError(f"{text!r}: empty element in {field.name} list {spec!r}")
        if "/" in part:
            base, _, step_text = part.partition("/")
            if not step_text.isdigit() or not step_text.isascii() or int(step_text) < 1:
                raise ScheduleError(f"{text!r}: {field.name} step {part!r} needs a positive integer")
            start, end = _range(text, field, base)
            if "-" not in base and base != "*":
                end = field.high  # a/s: from a to the end of the field
            values.update(range(start, end + 1, int(step_text)))
        else:
            start, end = _range(text, field, part)
            values.update(range(start, end + 1))
    return tuple(sorted(values))


def _day_of_month(text: str, spec: str) -> DaySpec | None:
    if spec == "?":
        return None
    if spec == "L":
        return ("L", (0,))
    if match := re.fullmatch(r"L-(\d+)", spec):
        offset = int(match[1])
        if offset > 30:
            raise ScheduleError(f"{text!r}: day-of-month {spec!r}: the offset from L must be 0-30")
        return ("L", (offset,))
    if spec.endswith("W") and "," not in spec and "-" not in spec and "/" not in spec:
        return ("W", (_number(text, _DOM, spec[:-1]),))
    if "L" in spec.upper() or "W" in spec.upper():
        raise ScheduleError(
            f"{text!r}: day-of-month {spec!r}: L and W stand alone (L, L-n, nW), not in lists or ranges"
        )
    return ("list", _values(text, _DOM, spec))


def _day_of_week(text: str, spec: str) -> DaySpec | None:
    if spec == "?":
        return None
    upper = spec.upper()
    if upper == "L":
        return ("list", (7,))  # L alone: the last day of the week, Saturday
    if upper.endswith("L") and not any(c in upper for c in ",-/#"):
        return ("L", (_number(text, _DOW, spec[:-1]),))
    if "#" in spec:
        weekday, _, nth = spec.partition("#")
        if any(c in weekday for c in ",-/*") or not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ScheduleError(f"{text!r}: day-of-week {spec!r}: '#' takes one weekday and 1-5, e.g. 6#3")
        return ("#", (_number(text, _DOW, weekday), int(nth)))
    if "/" in spec:
        # AWS's table of day-of-week wildcards is ", - * ? L #": no step.
        raise ScheduleError(f"{text!r}: day-of-week {spec!r}: AWS cron allows no '/' in day-of-week")
    if "L" in upper:  # no weekday name contains an L
        raise ScheduleError(f"{text!r}: day-of-week {spec!r}: L stands alone (L or nL), not in lists")
    return ("list", _values(text, _DOW, spec))


@functools.lru_cache(maxsize=4096)
def _days_in_month(dom: DaySpec | None, dow: DaySpec | None, year: int, month: int) -> tuple[int, ...]:
    # The day rules are pyawscron's (measured correct for AWS cron), called once per month.
    days: list[int]
    if dom is not None:
        kind, values = dom
        if kind == "list":
            last = _month_length(year, month)
            days = [d for d in values if d <= last]
        elif kind == "L":
            days = Commons.get_days_of_month_for_L(year, month, values[0])
        elif Commons.is_day_in_month(year, month, values[0]):  # "W"
            days = Commons.get_days_of_month_for_W(year, month, values[0])
        else:
            days = []  # nW on a day this month does not have
    else:
        assert dow is not None  # the parser guarantees exactly one "?"
        kind, values = dow
        rule: list[object] = list(values) if kind == "list" else [kind, *values]
        days = Commons.get_days_of_month_from_days_of_week(year, month, rule)
    return tuple(d for d in days if d >= 1)


def _month_length(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


# --------------------------------------------------------------------------- firings


def firings(
    expr: str | ScheduleExpression,
    *,
    start_exclusive: datetime,
    end_inclusive: datetime,
    timezone: str = "UTC",
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    anchor: datetime | None = None,
) -> list[datetime]:
    """Every firing of ``expr`` in (start_exclusive, end_inclusive], as ascending aware UTC datetimes.

    * rate: fires at ``anchor + k * period`` for k >= 1 (EventBridge rules fire first one period
      after the rule is created or enabled); ``anchor`` defaults to ``start_exclusive``. With a
      Scheduler ``start_date`` the series is ``start_date + k * period`` for k >= 0 (AWS: "use
      the StartDate property to set the first occurrence"). A Scheduler rate schedule without a
      start date "starts invoking immediately": pass its creation time as ``start_date``.
      Periods are plain durations in every time zone.
    * cron: evaluated on the wall clock of ``timezone`` (IANA name; EventBridge rules use UTC).
      A local time skipped by spring-forward does not fire; a local time repeated by fall-back
      fires once, at its first instance (see ``_to_utc``).
    * at: one firing at the wall-clock moment in ``timezone``; ``start_date``/``end_date`` are
      ignored, as EventBridge Scheduler ignores them for one-time schedules.

    ``start_date`` and ``end_date`` (Scheduler) are inclusive bounds in UTC.
    """
    expression = parse_expression(expr) if isinstance(expr, str) else expr
    low = _aware("start_exclusive", start_exclusive, expression)
    high = _aware("end_inclusive", end_inclusive, expression)
    zone = _zone(timezone, expression)
    if isinstance(expression, AtExpression):
        moment = _to_utc(expression.moment, zone, skip_gap=False)
        return [moment] if moment is not None and low < moment <= high else []
    if end_date is not None:
        high = min(high, _aware("end_date", end_date, expression))
    first: datetime | None = None
    if start_date is not None:
        first = _aware("start_date", start_date, expression)
        low = max(low, first - timedelta(microseconds=1))  # start_date is inclusive
    if high <= low:
        return []
    if isinstance(expression, RateExpression):
        base = first if first is not None else _aware("anchor", anchor or start_exclusive, expression)
        return _rate_firings(expression.period, base, 0 if first is not None else 1, low, high)
    return _cron_firings(expression, low, high, zone)


def _rate_firings(
    period: timedelta, base: datetime, k_min: int, low: datetime, high: datetime
) -> list[datetime]:
    k_first = max(k_min, (low - base) // period + 1)  # smallest k with base + k * period > low
    k_last = (high - base) // period  # largest k with base + k * period <= high
    return [base + k * period for k in range(k_first, k_last + 1)]


def _cron_firings(expr: CronExpression, low: datetime, high: datetime, zone: tzinfo) -> list[datetime]:
    naive_low = low.astimezone(UTC).replace(tzinfo=None)
    naive_high = high.astimezone(UTC).replace(tzinfo=None)
    if zone is UTC:
        out = [
            moment.replace(tzinfo=UTC)
            for moment in _candidates(expr, naive_low, naive_high)
            if naive_low < moment  # the upper bound is exact already
        ]
        return out
    # Wall-clock times that can map into the window: [low + min offset, high + max offset].
    least, most = _offset_bounds(low, high, zone)
    out = []
    for local in _candidates(expr, naive_low + least, naive_high + most):
        moment = _to_utc(local, zone, skip_gap=True)
        if moment is not None and low < moment <= high:
            out.append(moment)
    out.sort()
    return out


def _candidates(expr: CronExpression, low: datetime, high: datetime) -> Iterator[datetime]:
    """Naive wall-clock minutes matching ``expr`` in [low, high], ascending."""
    low_day, high_day = low.date(), high.date()
    # first and last minute of the day admitted on the boundary days
    low_minute = low.hour * 60 + low.minute + (1 if (low.second or low.microsecond) else 0)
    high_minute = high.hour * 60 + high.minute
    hours, minutes = expr.hours, expr.minutes
    for year in expr.years:
        if year < low_day.year or year > high_day.year:
            continue
        for month in expr.months:
            if (year, month) < (low_day.year, low_day.month) or (year, month) > (
                high_day.year,
                high_day.month,
            ):
                continue
            for day in expr.days(year, month):
                today = date(year, month, day)
                if today < low_day or today > high_day:
                    continue
                first = low_minute if today == low_day else 0
                last = high_minute if today == high_day else 1439
                if first == 0 and last == 1439:
                    for hour in hours:
                        for minute in minutes:
                            yield datetime(year, month, day, hour, minute)
                    continue
                for hour in hours:
                    if hour * 60 + 59 < first or hour * 60 > last:
                        continue
                    for minute in minutes:
                        if first <= hour * 60 + minute <= last:
                            yield datetime(year, month, day, hour, minute)


def _to_utc(local: datetime, zone: tzinfo, *, skip_gap: bool) -> datetime | None:
    """The UTC instant of a wall-clock time, with EventBridge Scheduler's DST behaviour.

    AWS documents it in "Schedule types on EventBridge Scheduler" (EventBridge Scheduler User
    Guide, section "Daylight savings time on EventBridge Scheduler") and in the AWS re:Post
    Knowledge Center article "How can I adjust my Amazon EventBridge schedule for daylight
    saving?": when the time shifts forward in spring, the invocation is skipped if the cron
    expression falls on a non-existent date and time; when the time shifts back in the fall, the
    schedule runs only once and does not repeat its invocation. AWS does not say which of the two
    instances runs; we fire at the first (fold=0), and the repeat is what is not invoked.

    For ``at()`` in a skipped hour (undocumented) we do not drop the one-time invocation: the
    wall time is read with the offset before the jump, i.e. moved forward by the gap.
    """
    first = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: offset before a transition
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)  # fold=1: offset after it
    if first <= second:  # equal: an ordinary time; earlier: the first of a repeated time
        return first
    return None if skip_gap else first  # first > second: the time does not exist


def _offset_bounds(low: datetime, high: datetime, zone: tzinfo) -> tuple[timedelta, timedelta]:
    """Smallest and largest UTC offset of ``zone`` in [low, high] (hourly samples on short windows)."""
    if high - low > timedelta(days=2):
        return timedelta(hours=-26), timedelta(hours=26)  # covers every offset and every jump
    samples = [low + timedelta(hours=k) for k in range(int((high - low) // timedelta(hours=1)) + 1)]
    samples.append(high)
    offsets = [moment.astimezone(zone).utcoffset() or timedelta(0) for moment in samples]
    return min(offsets), max(offsets)


def _aware(name: str, moment: datetime, expr: ScheduleExpression) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ScheduleError(f"{expr.text!r}: {name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


@functools.lru_cache(maxsize=256)
def _zone_by_name(name: str) -> tzinfo:
    if name in ("UTC", "Etc/UTC", "Z"):
        return UTC
    return ZoneInfo(name)


def _zone(name: str, expr: ScheduleExpression) -> tzinfo:
    try:
        return _zone_by_name(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"{expr.text!r}: unknown time zone {name!r} ({exc})") from None


# --------------------------------------------------------------------------- flexible windows


def flexible_offset(schedule_name: str, firing: datetime, window_minutes: int, seed: int) -> timedelta:
    """Deterministic delay in [0, window_minutes) for a Scheduler ``FLEXIBLE`` time window.

    AWS invokes the target at some moment inside the window; the harness picks that moment from
    a SHA-256 of (seed, schedule name, firing instant) in whole seconds, so the same run seed
    replays the same timeline and different schedules (or firings) spread out.
    """
    if isinstance(window_minutes, bool) or not 1 <= window_minutes <= 1440:
        raise ScheduleError(
            f"schedule {schedule_name!r}: maximum_window_in_minutes must be 1-1440, got {window_minutes}"
        )
    if firing.tzinfo is None or firing.utcoffset() is None:
        raise ScheduleError(f"schedule {schedule_name!r}: firing must be timezone-aware")
    key = f"{seed}\x00{schedule_name}\x00{firing.astimezone(UTC).isoformat()}".encode()
    number = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    return timedelta(seconds=number % (window_minutes * 60))
