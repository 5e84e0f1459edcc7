"""Invariants of the batch flow (seed 001), checked after a scenario or a chaos run.

The flow has no per-file outcome: a scheduled (or RUN_DATE) ECS task aggregates every object
under `raw-data/YYYY-MM-DD/` of `pipeline-batch-data` into `reports/YYYY-MM-DD.json`, and
malformed files or records are counted in that report, never stopped at. So an input is a
day with data, `raw-data/YYYY-MM-DD/` (a real calendar date with at least one object under
it, folder markers excepted); keys elsewhere under `raw-data/` are never read by any run and
are not inputs. A day without data is not an input either, though its scheduled run still
writes an empty report (that report is checked, not required).

The terminal place of a day is its report. There is no failure place: a run that fails
(exit 1) leaves no report, and the day has reached no terminal place. Neither has a day whose
run is not due yet: the invariant holds once every day with data has been scheduled or
reprocessed, so end a scenario with it only then.

"Written twice" here: a run writes the report only when its content (everything but
`generated_at`) changed, and it changes only when the day's data changed. So a report has at
most max(1, writes of the day's raw objects + raw objects deleted since) versions; more means
a run rewrote an unchanged report.

"Status agrees with the objects": a report's `date` and `source_prefix` name its day, its file
counts (processed + skipped + malformed) equal the objects now under the day's prefix (a file
that arrived after the run makes the report stale: the day needs reprocessing), and its
record total is valid + malformed. Orphans: an object under `reports/` that is not
`reports/YYYY-MM-DD.json` for a real date.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Any

from harness.chaos.invariants import World

BUCKET = "pipeline-batch-data"
RAW, REPORTS = "raw-data/", "reports/"
_DAY = re.compile(r"^raw-data/(\d{4}-\d{2}-\d{2})/(.+)$")
_REPORT = re.compile(r"^reports/(\d{4}-\d{2}-\d{2})\.json$")


def _read_json(world: World, bucket: str, key: str) -> Any:
    """The object's JSON; None when it does not exist, the text "not JSON" when it does not parse."""
    try:
        return world.read_json(bucket, key)
    except ValueError:
        return "not JSON"


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _day_of(key: str) -> str | None:
    match = _DAY.match(key)
    if match is None or key.endswith("/") or not _real_date(match.group(1)):
        return None
    return match.group(1)


def _files_per_day(keys: list[str]) -> Counter[str]:
    return Counter(day for day in map(_day_of, keys) if day is not None)


def _prefix(day: str) -> str:
    return f"{RAW}{day}/"


def _report_key(day: str) -> str:
    return f"{REPORTS}{day}.json"


def inputs(world: World) -> list[str]:
    return [_prefix(day) for day in sorted(_files_per_day(world.keys(BUCKET, RAW)))]


def places(world: World, day_prefix: str) -> list[str]:
    day = day_prefix[len(RAW) :].rstrip("/")
    report = _read_json(world, BUCKET, _report_key(day))
    if report is None:
        return []
    files = report.get("files") if isinstance(report, dict) else None
    records = report.get("records") if isinstance(report, dict) else None
    return [f"report s3://{BUCKET}/{_report_key(day)} (files {files}, records {records})"]


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _check_report(day: str, report: Any, files_now: int) -> list[str]:
    key = _report_key(day)
    if not isinstance(report, dict):
        return [f"{key} is not a JSON object"]
    problems = []
    if report.get("date") != day:
        problems.append(f"{key} says date {report.get('date')!r}")
    if report.get("source_prefix") != _prefix(day):
        problems.append(f"{key} says source_prefix {report.get('source_prefix')!r}, not {_prefix(day)}")
    files = _mapping(report.get("files"))
    counted = [_number(files.get(name)) for name in ("processed", "skipped", "malformed")]
    if None in counted:
        problems.append(f"{key} has no file counts: {report.get('files')!r}")
    elif sum(c for c in counted if c is not None) != files_now:
        problems.append(
            f"{key} counts {sum(c for c in counted if c is not None)} file(s), {_prefix(day)} holds "
            f"{files_now} now (a stale report: the day's data changed after the run)"
        )
    records = _mapping(report.get("records"))
    total, valid, malformed = (_number(records.get(n)) for n in ("total", "valid", "malformed"))
    if total is None or valid is None or malformed is None or total != valid + malformed:
        problems.append(f"{key} record counts do not add up: {report.get('records')!r}")
    return problems


def checks(world: World) -> list[str]:
    problems: list[str] = []
    files_now = _files_per_day(world.keys(BUCKET, RAW))
    raw_versions = world.versions(BUCKET, RAW)
    raw_writes: Counter[str] = Counter()
    deleted: Counter[str] = Counter()
    current = set(world.keys(BUCKET, RAW))
    for key, count in raw_versions.items():
        day = _day_of(key)
        if day is not None:
            raw_writes[day] += count
            deleted[day] += key not in current
    for key, writes in sorted(world.versions(BUCKET, REPORTS).items()):
        match = _REPORT.match(key)
        if match is None or not _real_date(match.group(1)):
            problems.append(f"s3://{BUCKET}/{key} is not a report any run writes (orphan)")
            continue
        day = match.group(1)
        allowed = max(1, raw_writes[day] + deleted[day])
        if writes > allowed:
            problems.append(
                f"{key} written {writes} times, but {_prefix(day)} changed at most {allowed} time(s) "
                "(an unchanged report was rewritten)"
            )
        report = _read_json(world, BUCKET, key)
        if report is None:
            continue  # deleted since: only its older versions remain
        problems += _check_report(day, report, files_now[day])
    return problems
