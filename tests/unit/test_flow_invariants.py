"""The flow invariants of scenarios/<flow>/invariants.py, fed a fake World.

Each flow gets a healthy state (every input in exactly one terminal place, no problem) and
broken ones (an input in no place, one in two, an output written twice, a status that
disagrees with the objects, an orphan), so every invariant is shown to be able to fail.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import pytest

from harness.chaos.invariants import FlowInvariants, World, load_invariants


class FakeWorld(World):
    """The World's read helpers over canned state: versioned buckets, queues, tables, rows."""

    def __init__(self) -> None:  # no session: nothing here talks to a service
        self.buckets: dict[str, dict[str, list[bytes | None]]] = {}
        self.queues: dict[str, list[Any]] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.rabbit: dict[str, int] = {}
        self.rows: dict[str, list[tuple[str, Any]]] = {}  # PostgreSQL table -> (origin, id)

    # -- building the state --------------------------------------------------------------

    def put(self, bucket: str, key: str, body: bytes | str | dict[str, Any] | list[Any] = b"x") -> FakeWorld:
        if isinstance(body, dict | list):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.buckets.setdefault(bucket, {}).setdefault(key, []).append(data)
        return self

    def delete(self, bucket: str, key: str) -> FakeWorld:
        self.buckets[bucket][key].append(None)  # a delete marker
        return self

    def item(self, table: str, **item: Any) -> FakeWorld:
        self.tables.setdefault(table, []).append(item)
        return self

    def message(self, queue: str, body: Any) -> FakeWorld:
        self.queues.setdefault(queue, []).append(body)
        return self

    def row(self, table: str, origin: str, ident: Any) -> FakeWorld:
        self.rows.setdefault(table, []).append((origin, ident))
        return self

    # -- World -----------------------------------------------------------------------------

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        objects = self.buckets.get(bucket, {})
        return sorted(k for k, v in objects.items() if k.startswith(prefix) and v[-1] is not None)

    def versions(self, bucket: str, prefix: str = "") -> dict[str, int]:
        objects = self.buckets.get(bucket, {})
        counts = {k: sum(b is not None for b in v) for k, v in objects.items() if k.startswith(prefix)}
        return {k: n for k, n in counts.items() if n}

    def read(self, bucket: str, key: str) -> bytes | None:
        found = self.buckets.get(bucket, {}).get(key)
        return None if not found else found[-1]

    def read_json(self, bucket: str, key: str) -> Any:
        body = self.read(bucket, key)
        return None if body is None else json.loads(body)

    def messages(self, queue: str) -> list[dict[str, Any]]:
        out = []
        for n, body in enumerate(self.queues.get(queue, [])):
            text = body if isinstance(body, str) else json.dumps(body)
            message: dict[str, Any] = {"MessageId": f"m-{n}", "Body": text}
            try:
                message["json"] = json.loads(text)
            except ValueError:
                pass
            out.append(message)
        return out

    def queue_depth(self, queue: str) -> int:
        return len(self.queues.get(queue, []))

    def items(self, table: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.tables.get(table, []))

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Just the queries the ingest invariants make."""
        if "information_schema.tables" in query:
            return [{"table_name": name} for name in sorted(self.rows)]
        match = re.search(r"from (\w+)", query)
        assert match is not None, query
        rows = self.rows.get(match.group(1), [])
        if "having" in query:
            doubled: dict[tuple[str, Any], int] = {}
            for row in rows:
                doubled[row] = doubled.get(row, 0) + 1
            return [{"origin": o, "id": i, "n": n} for (o, i), n in doubled.items() if n > 1]
        per_origin: dict[str, int] = {}
        for origin, _ in rows:
            per_origin[origin] = per_origin.get(origin, 0) + 1
        return [{"origin": o, "n": n} for o, n in per_origin.items()]

    def rabbit_queue(self, name: str) -> int:
        return self.rabbit.get(name, 0)


def evaluate(flow: str, world: World) -> tuple[dict[str, list[str]], list[str]]:
    """Every input's places, and the flow's checks (what check_invariants asks, minus the session)."""
    declared: FlowInvariants = load_invariants(flow)
    inputs = declared.inputs(world)
    assert len(inputs) == len(set(inputs)), f"{flow} lists an input twice: {inputs}"
    return {item: declared.places(world, item) for item in inputs}, declared.checks(world)


def place_violations(found: dict[str, list[str]]) -> dict[str, int]:
    return {item: len(places) for item, places in found.items() if len(places) != 1}


def assert_problems(problems: list[str], expected: Iterable[str]) -> None:
    """Each expected pattern matches one problem, and no problem is left unexplained."""
    left = list(problems)
    for pattern in expected:
        hit = next((p for p in left if re.search(pattern, p)), None)
        assert hit is not None, f"no problem matches {pattern!r} in {left}"
        left.remove(hit)
    assert not left, f"unexpected problems: {left}"


# -- batch --------------------------------------------------------------------------------

BATCH = "pipeline-batch-data"


def batch_report(
    day: str, processed: int = 1, skipped: int = 0, malformed: int = 0, valid: int = 3
) -> dict[str, Any]:
    return {
        "date": day,
        "generated_at": f"{day}T07:30:00Z",
        "source_prefix": f"raw-data/{day}/",
        "files": {"processed": processed, "skipped": skipped, "malformed": malformed},
        "records": {"total": valid + 1, "valid": valid, "malformed": 1},
        "keys": {},
        "total_sum": 0,
    }


def test_batch_healthy_days_each_have_their_report() -> None:
    world = (
        FakeWorld()
        .put(BATCH, "raw-data/2026-01-15/a.csv")
        .put(BATCH, "raw-data/2026-01-15/b.json")
        .put(BATCH, "raw-data/2026-01-15/notes.txt")  # skipped by the run, still counted
        .put(BATCH, "raw-data/2026-01-15/")  # a folder marker: not a file
        .put(BATCH, "raw-data/README.md")  # no run reads it: not an input
        .put(BATCH, "raw-data/2026-02-30/x.csv")  # no such day: never read
        .put(BATCH, "reports/2026-01-15.json", batch_report("2026-01-15", processed=2, skipped=1))
        .put(BATCH, "reports/2026-01-16.json", batch_report("2026-01-16", processed=0, valid=0))
    )
    world.buckets[BATCH]["reports/2026-01-16.json"] = [
        json.dumps(
            {
                **batch_report("2026-01-16", processed=0, valid=0),
                "records": {"total": 0, "valid": 0, "malformed": 0},
            }
        ).encode()
    ]
    found, problems = evaluate("batch", world)
    assert list(found) == ["raw-data/2026-01-15/"]
    assert place_violations(found) == {}
    assert "reports/2026-01-15.json" in found["raw-data/2026-01-15/"][0]
    assert problems == []


def test_batch_a_reprocessed_day_may_have_one_report_version_per_change() -> None:
    world = FakeWorld().put(BATCH, "raw-data/2026-01-10/a.csv")
    world.put(BATCH, "reports/2026-01-10.json", batch_report("2026-01-10", processed=1))
    world.put(BATCH, "raw-data/2026-01-10/late.csv")
    world.put(BATCH, "reports/2026-01-10.json", batch_report("2026-01-10", processed=2))
    found, problems = evaluate("batch", world)
    assert place_violations(found) == {}
    assert problems == []


def test_batch_violations() -> None:
    world = (
        FakeWorld()
        # a day whose run failed or never came: no report
        .put(BATCH, "raw-data/2026-03-07/missed.csv")
        # an unchanged report rewritten
        .put(BATCH, "raw-data/2026-03-08/a.csv")
        .put(BATCH, "reports/2026-03-08.json", batch_report("2026-03-08"))
        .put(BATCH, "reports/2026-03-08.json", batch_report("2026-03-08"))
        # a file that arrived after the run
        .put(BATCH, "raw-data/2026-03-09/a.csv")
        .put(BATCH, "raw-data/2026-03-09/b.csv")
        .put(BATCH, "reports/2026-03-09.json", batch_report("2026-03-09", processed=1))
        # a report that is not for its day, and an object no run writes
        .put(BATCH, "reports/2026-03-10.json", {**batch_report("2026-03-11"), "files": {"processed": 0}})
        .put(BATCH, "reports/summary.txt", "hi")
    )
    found, problems = evaluate("batch", world)
    assert place_violations(found) == {"raw-data/2026-03-07/": 0}
    assert_problems(
        problems,
        [
            r"reports/2026-03-08\.json written 2 times, but raw-data/2026-03-08/ changed at most 1",
            r"reports/2026-03-09\.json counts 1 file\(s\), raw-data/2026-03-09/ holds 2 now \(a stale report",
            r"reports/2026-03-10\.json says date '2026-03-11'",
            r"reports/2026-03-10\.json says source_prefix 'raw-data/2026-03-11/'",
            r"reports/2026-03-10\.json has no file counts",
            r"reports/summary\.txt is not a report any run writes \(orphan\)",
        ],
    )


# -- tracker ------------------------------------------------------------------------------

TRACKER, FILES, WORK_DLQ = "tracker-data", "tracker-files", "tracker-work-dlq"


def stream_record(item_id: str) -> dict[str, Any]:
    return {"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": item_id}}, "NewImage": {}}}


def finished(world: FakeWorld, item_id: str, name: str, body: str = "data\n") -> FakeWorld:
    world.put(TRACKER, f"data/input/c/{name}", body).put(TRACKER, f"data/output/c/{name}", body)
    return world.item(
        FILES,
        id=item_id,
        status="FINISHED",
        s3_path=f"s3://{TRACKER}/data/input/c/{name}",
        output_path=f"s3://{TRACKER}/data/output/c/{name}",
    )


def test_tracker_healthy() -> None:
    world = finished(FakeWorld(), "t1", "a.txt")
    world.item(
        FILES, id="t2", status="FAILED", s3_path=f"s3://{TRACKER}/data/input/c/gone.txt", error="not found"
    )
    world.item(FILES, id="t3", status="PENDING", s3_path=f"s3://{TRACKER}/data/input/c/slow.txt")
    world.message(WORK_DLQ, stream_record("t3"))  # dead-lettered: its one place
    world.item(FILES, id="nopath", status="FAILED", error="malformed s3_path: not an s3:// path: None")
    world.item(FILES, id="done1", status="DONE", s3_path=f"s3://{TRACKER}/data/input/c/x.txt")  # filtered out
    world.put(TRACKER, "scripts/sqs_worker.py", "print()")
    found, problems = evaluate("tracker", world)
    assert sorted(found) == ["nopath", "t1", "t2", "t3"]
    assert place_violations(found) == {}
    assert found["t3"][0].startswith(f"DLQ {WORK_DLQ}")
    assert problems == []


def test_tracker_violations() -> None:
    world = FakeWorld()
    # no terminal place: PENDING, its record neither in the queue's DLQ nor answered
    world.item(FILES, id="lost", status="PENDING", s3_path=f"s3://{TRACKER}/data/input/c/lost.txt")
    # two terminal places: FINISHED and dead-lettered
    finished(world, "twice", "twice.txt").message(WORK_DLQ, stream_record("twice"))
    # written twice: one finished item, two versions of its copy
    finished(world, "dup", "dup.txt").put(TRACKER, "data/output/c/dup.txt", "data\n")
    # FINISHED but the copy is missing / differs / output_path wrong
    world.item(
        FILES,
        id="nocopy",
        status="FINISHED",
        s3_path=f"s3://{TRACKER}/data/input/c/nocopy.txt",
        output_path=f"s3://{TRACKER}/data/output/c/nocopy.txt",
    )
    finished(world, "changed", "changed.txt").put(TRACKER, "data/output/c/changed.txt", "other\n")
    finished(world, "where", "where.txt")
    world.tables[FILES][-1]["output_path"] = "s3://elsewhere/x.txt"
    # an output for an item that is still PENDING
    world.item(FILES, id="early", status="PENDING", s3_path=f"s3://{TRACKER}/data/input/c/early.txt")
    world.message(WORK_DLQ, stream_record("early")).put(TRACKER, "data/output/c/early.txt")
    # orphans
    world.put(TRACKER, "data/output/c/nobody.txt")
    world.message(WORK_DLQ, stream_record("ghost")).message(WORK_DLQ, "not json")
    found, problems = evaluate("tracker", world)
    assert place_violations(found) == {"lost": 0, "twice": 2}
    assert_problems(
        problems,
        [
            r"data/output/c/dup\.txt written 2 times for 1 finished item\(s\) \(written twice\)",
            r"data/output/c/changed\.txt written 2 times for 1 finished",
            r"nocopy: FINISHED, but s3://tracker-data/data/output/c/nocopy\.txt does not exist",
            r"changed: s3://tracker-data/data/output/c/changed\.txt differs from its input",
            r"where: FINISHED with output_path 's3://elsewhere/x\.txt'",
            r"data/output/c/early\.txt exists but no item that maps to it is FINISHED \(early PENDING\)",
            r"data/output/c/nobody\.txt is explained by no tracked item \(orphan\)",
            r"message m-\d names item ghost, which is not an input",
            r"message m-\d is not a stream record",
        ],
    )


# -- broker -------------------------------------------------------------------------------

BROKER_IN, BROKER_OUT, COMPLETIONS = "broker-input", "broker-output", "broker-completions"


def md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def processed(world: FakeWorld, key: str, body: str = "a,b\n1,2\n", *, notified: bool = True) -> FakeWorld:
    job_id = f"job-{key.rsplit('/', 1)[-1]}"
    world.put(BROKER_IN, key, body)
    world.put(
        BROKER_OUT,
        f"results/{key}.json",
        {
            "job_id": job_id,
            "source": {"bucket": BROKER_IN, "key": key, "etag": md5(body)},
            "stats": {"record_count": 1},
        },
    )
    completion = {
        "job_id": job_id,
        "input_key": key,
        "output_key": f"results/{key}.json",
        "status": "COMPLETED",
    }
    if notified:
        completion["notified_at"] = "2026-04-01T09:05:00.000Z"
    return world.item(COMPLETIONS, **completion)


def test_broker_healthy() -> None:
    world = processed(FakeWorld(), "incoming/orders.csv")
    processed(world, "incoming/sensors/readings.jsonl")
    world.put(BROKER_IN, "incoming/broken.json", '{"records": [1')
    world.rabbit["broker-jobs.dlq"] = 1  # the poison job
    world.put(BROKER_IN, "incoming/")  # a folder marker the producer skips
    world.put(BROKER_IN, "elsewhere/x.csv")  # outside the producer's prefix
    found, problems = evaluate("broker", world)
    assert sorted(found) == ["incoming/broken.json", "incoming/orders.csv", "incoming/sensors/readings.jsonl"]
    assert place_violations(found) == {}
    assert found["incoming/broken.json"][0].startswith("DLQ broker-jobs.dlq")
    assert problems == []


def test_broker_a_new_version_is_a_second_job_and_a_second_write() -> None:
    world = processed(FakeWorld(), "incoming/r.jsonl", "one\n")
    processed(world, "incoming/r.jsonl", "two\n")
    world.tables[COMPLETIONS][1]["job_id"] = "job-r.jsonl-2"
    world.buckets[BROKER_OUT]["results/incoming/r.jsonl.json"][-1] = json.dumps(
        {
            "job_id": "job-r.jsonl-2",
            "source": {"bucket": BROKER_IN, "key": "incoming/r.jsonl", "etag": md5("two\n")},
        }
    ).encode()
    found, problems = evaluate("broker", world)
    assert place_violations(found) == {}
    assert problems == []


def test_broker_violations() -> None:
    world = FakeWorld()
    # written twice: two versions of a result, one job
    processed(world, "incoming/twice.csv").put(
        BROKER_OUT,
        "results/incoming/twice.csv.json",
        world.read(BROKER_OUT, "results/incoming/twice.csv.json") or b"",
    )
    # no completion for a result; a completion never announced
    processed(world, "incoming/unrecorded.csv")
    world.tables[COMPLETIONS].pop()
    processed(world, "incoming/quiet.csv", notified=False)
    # the input changed, its result is for the old bytes: no place for the current version
    processed(world, "incoming/changed.csv").put(BROKER_IN, "incoming/changed.csv", "new\n")
    # never processed, nothing dead-lettered
    world.put(BROKER_IN, "incoming/lost.csv")
    # orphans: a result for an input that never existed, an object the worker never writes
    world.put(
        BROKER_OUT,
        "results/incoming/ghost.csv.json",
        {"job_id": "g", "source": {"bucket": BROKER_IN, "key": "incoming/ghost.csv"}},
    )
    world.put(BROKER_OUT, "results/notes.txt")
    world.message("broker-results-dlq", {"detail": {"object": {"key": "results/incoming/x.json"}}})
    found, problems = evaluate("broker", world)
    assert place_violations(found) == {"incoming/changed.csv": 0, "incoming/lost.csv": 0}
    assert_problems(
        problems,
        [
            r"results/incoming/twice\.csv\.json written 2 times for 1 completed job\(s\) \(written twice\)",
            r"results/incoming/unrecorded\.csv\.json: job job-unrecorded\.csv has no completion item",
            r"quiet\.csv\.json: completion of job job-quiet\.csv is COMPLETED and notified_at is None",
            r"results/incoming/changed\.csv\.json is stale: written for ETag \w+, the input's is now \w+",
            r"results/incoming/ghost\.csv\.json: its input incoming/ghost\.csv never existed \(orphan\)",
            r"results/incoming/ghost\.csv\.json: job g has no completion item",
            r"results/notes\.txt is not a result the worker writes \(orphan\)",
            r"broker-jobs\.dlq holds 0 job\(s\) but 2 input\(s\) have no result",
            r"post-process event for results/incoming/x\.json is dead-lettered in broker-results-dlq",
        ],
    )


class PeekingWorld(FakeWorld):
    """A world that can also peek RabbitMQ messages: the broker DLQ is then attributed exactly."""

    def rabbit_messages(self, queue: str) -> list[dict[str, Any]]:
        return [{"json": {"bucket": BROKER_IN, "key": key}} for key in self.queues.get(f"rabbit:{queue}", [])]


def test_broker_peeked_dead_letters_find_an_input_in_two_places() -> None:
    world = PeekingWorld()
    processed(world, "incoming/both.csv")
    world.put(BROKER_IN, "incoming/poison.json", "{")
    world.message("rabbit:broker-jobs.dlq", "incoming/both.csv").message(
        "rabbit:broker-jobs.dlq", "incoming/poison.json"
    )
    world.message("rabbit:broker-jobs.dlq", "incoming/unknown.csv")
    found, problems = evaluate("broker", world)
    assert place_violations(found) == {"incoming/both.csv": 2}
    assert_problems(
        problems, [r"broker-jobs\.dlq holds a job for incoming/unknown\.csv, which is not an input"]
    )


# -- ingest -------------------------------------------------------------------------------

RAW, PROCESSED_OUT, REPORTS = "data-pipeline-raw", "data-pipeline-processed", "data-pipeline-reports"
EVENTS, HISTORY, INGEST_DLQ = (
    "data-pipeline-event-metadata",
    "data-pipeline-report-history",
    "data-pipeline-processing-dlq",
)


def s3_event(key: str, bucket: str = RAW) -> dict[str, Any]:
    return {"source": "aws.s3", "detail": {"bucket": {"name": bucket}, "object": {"key": key, "etag": "e"}}}


def stem(key: str, short: str = "0123456789ab") -> str:
    return f"{key.rsplit('.', 1)[0].replace('/', '_')}-{short}"


def ingested(
    world: FakeWorld, key: str, valid: int, rejected: int = 0, *, rows: int | None = None
) -> FakeWorld:
    world.put(RAW, key, "id,value\n")
    parquet = [f"processed/date=2026-03-09/{stem(key)}.parquet"] if valid else []
    rejects = f"rejects/date=2026-03-09/{stem(key)}.jsonl" if rejected else None
    for out in [*parquet, *([rejects] if rejects else [])]:
        world.put(PROCESSED_OUT, out)
    for n in range(valid if rows is None else rows):
        world.row("processed_data", f"s3://{RAW}/{key}", f"r{n}")
    for n in range(rejected):
        world.row("rejected_data", f"s3://{RAW}/{key}", n + 1)
    item: dict[str, Any] = {
        "object_key": key,
        "bucket": RAW,
        "status": "PROCESSED_WITH_REJECTS" if rejected else "PROCESSED",
        "records_total": valid + rejected,
        "records_valid": valid,
        "records_rejected": rejected,
        "parquet_keys": parquet,
    }
    if rejects:
        item["rejects_key"] = rejects
    return world.item(EVENTS, **item)


def direct_call(world: FakeWorld, request: str, payload: str, valid: int) -> FakeWorld:
    parquet = f"processed/date=2026-03-09/direct-{payload}.parquet"
    world.put(PROCESSED_OUT, parquet)
    return world.item(
        EVENTS,
        object_key=f"direct/{request}",
        status="PROCESSED",
        records_total=valid,
        records_valid=valid,
        records_rejected=0,
        parquet_keys=[parquet],
    )


def daily_report(world: FakeWorld, day: str, total: int) -> FakeWorld:
    json_key, html_key = f"reports/{day}/daily_report.json", f"reports/{day}/daily_report.html"
    report = {
        "report_date": day,
        "generated_at": f"{day}T08:00:00Z",
        "total_records": total,
        "total_rejected": 0,
        "files": 1,
    }
    world.put(REPORTS, json_key, report).put(REPORTS, html_key, "<html>")
    return world.item(HISTORY, **{**report, "json_key": json_key, "html_key": html_key})


def healthy_ingest() -> FakeWorld:
    world = ingested(FakeWorld(), "incoming/sensors/clean.csv", 4)
    ingested(world, "incoming/lab/mixed.jsonl", 2, 5)
    ingested(world, "incoming/lab/allbad.jsonl", 0, 3)
    world.put(RAW, "incoming/shop/broken.json", "{")
    world.item(
        EVENTS, object_key="incoming/shop/broken.json", bucket=RAW, status="FAILED", error_message="bad JSON"
    )
    world.message(INGEST_DLQ, s3_event("incoming/shop/broken.json"))
    direct_call(world, "req-1", "aaaaaaaaaaaa", 2)
    direct_call(world, "req-2", "aaaaaaaaaaaa", 2)  # the same payload again: the same rows
    world.row("processed_data", "direct", "1").row("processed_data", "direct", "2")
    world.item(EVENTS, object_key="direct/req-3", status="FAILED", error_message="ValueError: boom")
    daily_report(world, "2026-03-09", 6)
    return world


def test_ingest_healthy() -> None:
    found, problems = evaluate("ingest", healthy_ingest())
    assert sorted(found) == [
        "direct/req-1",
        "direct/req-2",
        "direct/req-3",
        "incoming/lab/allbad.jsonl",
        "incoming/lab/mixed.jsonl",
        "incoming/sensors/clean.csv",
        "incoming/shop/broken.json",
    ]
    assert place_violations(found) == {}
    assert found["incoming/shop/broken.json"][0].startswith(f"DLQ {INGEST_DLQ}")
    assert found["direct/req-3"][0].startswith("direct call rejected")
    assert problems == []


def test_ingest_nothing_processed_yet_has_no_tables() -> None:
    world = FakeWorld().put(RAW, "incoming/a.csv")
    found, problems = evaluate("ingest", world)
    assert place_violations(found) == {"incoming/a.csv": 0}
    assert problems == []


def test_ingest_violations() -> None:
    world = healthy_ingest()
    # no place: never processed; still PROCESSING; FAILED but its event is not in the DLQ
    world.put(RAW, "incoming/never.csv")
    world.put(RAW, "incoming/stuck.csv").item(EVENTS, object_key="incoming/stuck.csv", status="PROCESSING")
    world.put(RAW, "incoming/lost.csv").item(EVENTS, object_key="incoming/lost.csv", status="FAILED")
    # processed, and a copy of its event dead-lettered: one place (the copy is a harmless duplicate)
    ingested(world, "incoming/twice.csv", 1).message(INGEST_DLQ, s3_event("incoming/twice.csv"))
    # status disagrees: a listed Parquet file is gone; rows do not match the counts
    ingested(world, "incoming/gone.csv", 1)
    world.delete(PROCESSED_OUT, f"processed/date=2026-03-09/{stem('incoming/gone.csv')}.parquet")
    ingested(world, "incoming/stale.csv", 2, rows=3)
    # FAILED, dead-lettered, but rows and a Parquet file of an earlier attempt are left
    world.put(RAW, "incoming/half.csv").item(
        EVENTS, object_key="incoming/half.csv", bucket=RAW, status="FAILED"
    )
    world.message(INGEST_DLQ, s3_event("incoming/half.csv"))
    world.row("processed_data", f"s3://{RAW}/incoming/half.csv", "r0")
    world.put(PROCESSED_OUT, f"processed/date=2026-03-09/{stem('incoming/half.csv')}.parquet")
    # a second result of a processed input: rejects under an earlier processing date
    world.put(PROCESSED_OUT, f"rejects/date=2026-03-08/{stem('incoming/lab/mixed.jsonl')}.jsonl")
    # orphans: an output, rows, a DLQ message no input explains
    world.put(PROCESSED_OUT, "processed/date=2026-03-09/nobody-ffffffffffff.parquet")
    world.row("processed_data", f"s3://{RAW}/incoming/nobody.csv", "r0")
    world.message(INGEST_DLQ, {"hello": "world"})
    # one direct call's rows overwritten by another's (they share the origin `direct`)
    direct_call(world, "req-4", "bbbbbbbbbbbb", 2)
    # written twice in PostgreSQL (only possible without the UNIQUE constraint)
    world.row("rejected_data", f"s3://{RAW}/incoming/lab/mixed.jsonl", 1)
    # a dead-lettered object whose item does not say FAILED (PROCESSING would be allowed:
    # the last attempt died before it could record anything)
    world.put(RAW, "incoming/odd.csv").item(EVENTS, object_key="incoming/odd.csv", status="RECEIVED")
    world.message(INGEST_DLQ, s3_event("incoming/odd.csv"))
    # a report without its HTML, and one without a history item
    world.delete(REPORTS, "reports/2026-03-09/daily_report.html")
    world.put(REPORTS, "reports/2026-03-10/daily_report.json", {})

    found, problems = evaluate("ingest", world)
    assert place_violations(found) == {
        "incoming/never.csv": 0,
        "incoming/stuck.csv": 0,
        "incoming/lost.csv": 0,
    }
    assert_problems(
        problems,
        [
            r"DLQ data-pipeline-processing-dlq message m-\d+ is not an event for an object",
            r"incoming/gone\.csv: metadata PROCESSED lists s3://.*/processed/.*, which is missing",
            r"incoming/stale\.csv: metadata PROCESSED records 2 valid records, processed_data holds 3 rows",
            r"incoming/half\.csv: metadata FAILED but PostgreSQL still holds 1 valid and 0 rejected rows",
            r"incoming/odd\.csv: its event is dead-lettered .* but its metadata says RECEIVED",
            r"processed_data holds 2 rows of origin direct; the direct calls' items record 4 valid records",
            r"processed_data holds 1 rows of origin s3://.*/incoming/nobody\.csv, which no metadata item",
            r"rejected_data holds 2 rows for \(s3://.*/incoming/lab/mixed\.jsonl, 1\) \(written twice\)",
            r"mixed\.jsonl: metadata PROCESSED_WITH_REJECTS records 5 rejects, rejected_data holds 6",
            r"incoming/half\.csv: s3://.*/processed/.* is not among the outputs its metadata lists",
            r"incoming/lab/mixed\.jsonl: s3://.*/rejects/date=2026-03-08/.* not among the outputs",
            r"s3://.*/processed/date=2026-03-09/nobody-ffffffffffff\.parquet is explained by no input",
            r"report-history 2026-03-09 names reports/2026-03-09/daily_report\.html, which is missing",
            r"reports/2026-03-10/daily_report\.json has no report-history item \(orphan\)",
        ],
    )


@pytest.mark.parametrize("flow", ["batch", "broker", "ingest", "tracker"])
def test_every_flow_declares_its_invariants_with_a_docstring(flow: str) -> None:
    declared = load_invariants(flow)
    assert declared.source is not None
    text = declared.source.read_text()
    assert text.startswith('"""') and "terminal place" in text.lower() and "written twice" in text.lower()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert all(
        line.startswith("from harness.chaos.invariants import World")
        or line.split()[1].split(".")[0]
        in {"__future__", "collections", "datetime", "hashlib", "json", "posixpath", "re", "typing", "urllib"}
        for line in imports
    ), imports
