"""Invariants of the broker flow (seed 000), checked after a scenario or a chaos run.

An input is an object under `incoming/` of `broker-input` (folder markers, which the producer
skips, excepted), judged by its current content.

Terminal places of one input (exactly one must hold):
- result: `broker-output/results/<key>.json` exists and was written for the input's current
  content (its `source.etag` is the MD5 of the current bytes; multipart ETags are trusted);
  a result for an earlier version is no place (the new version was never processed) and is
  reported by the checks;
- dead-lettered: a job for it sits on the RabbitMQ queue `broker-jobs.dlq` (a poison job, or
  one past its delivery limit). `World` can count a RabbitMQ queue but not peek it, so unless
  the world offers `rabbit_messages(queue)` (bodies), each input without a result is placed on
  the DLQ while the DLQ holds any job, and the checks require the DLQ to hold exactly one job
  per input without a result.

"Written twice" here: the flow promises one result write per job (one job per input version,
de-duplicated in Redis by key + ETag; a redelivered job finds its output and writes nothing),
and one completion per job. So a result key with more versions than it has completions (at
least one), or an input with more completions than it has versions, was written twice.

"Status agrees with the objects": every result has a completion item for its `job_id` that is
COMPLETED and announced (`notified_at`); every completion names an existing result of its
input; no post-process event is dead-lettered in `broker-results-dlq`. Orphans: a result whose
input never existed, or an object under `results/` that is not `<input key>.json`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from harness.chaos.invariants import World

INPUT_BUCKET, INPUT_PREFIX = "broker-input", "incoming/"
OUTPUT_BUCKET, OUTPUT_PREFIX, SUFFIX = "broker-output", "results/", ".json"
COMPLETIONS = "broker-completions"
JOB_DLQ = "broker-jobs.dlq"
RESULTS_DLQ = "broker-results-dlq"


def _read_json(world: World, bucket: str, key: str) -> Any:
    """The object's JSON; None when it does not exist, the text "not JSON" when it does not parse."""
    try:
        return world.read_json(bucket, key)
    except ValueError:
        return "not JSON"


def _result_key(key: str) -> str:
    return f"{OUTPUT_PREFIX}{key}{SUFFIX}"


def _input_key(result_key: str) -> str | None:
    if not result_key.startswith(OUTPUT_PREFIX) or not result_key.endswith(SUFFIX):
        return None
    key = result_key[len(OUTPUT_PREFIX) : -len(SUFFIX)]
    return key if key.startswith(INPUT_PREFIX) and not key.endswith("/") else None


def _result(world: World, key: str) -> dict[str, Any] | None:
    document = _read_json(world, OUTPUT_BUCKET, _result_key(key))
    return document if isinstance(document, dict) else None


def _stale(world: World, key: str, result: dict[str, Any]) -> str | None:
    """Why `result` is not for the input's current bytes, or None when it is (or cannot be told)."""
    etag = str((result.get("source") or {}).get("etag") or "")
    if not etag or "-" in etag:
        return None  # a multipart ETag is not the MD5 of the bytes
    body = world.read(INPUT_BUCKET, key)
    if body is None:
        return None  # the input is gone; the orphan check judges the result
    current = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return None if current == etag else f"written for ETag {etag}, the input's is now {current}"


def _dead_jobs(world: World) -> list[str] | None:
    """The input keys of the jobs on the RabbitMQ DLQ, when the world can peek it; else None."""
    peek = getattr(world, "rabbit_messages", None)
    if peek is None:
        return None
    keys = []
    for body in peek(JOB_DLQ):
        job = body.get("json", body) if isinstance(body, dict) else body
        keys.append(str(job.get("key")) if isinstance(job, dict) else "?")
    return keys


def inputs(world: World) -> list[str]:
    return [k for k in world.keys(INPUT_BUCKET, INPUT_PREFIX) if not k.endswith("/")]


def _has_result(world: World, key: str) -> bool:
    result = _result(world, key)
    return result is not None and _stale(world, key, result) is None


def places(world: World, key: str) -> list[str]:
    found = []
    result = _result(world, key)
    if result is not None and _stale(world, key, result) is None:
        records = (result.get("stats") or {}).get("record_count")
        found.append(
            f"result s3://{OUTPUT_BUCKET}/{_result_key(key)} (job {result.get('job_id')}, {records} records)"
        )
    dead = _dead_jobs(world)
    if dead is not None:
        found.extend([f"DLQ {JOB_DLQ}: its job"] * dead.count(key))
    elif not found:
        depth = world.rabbit_queue(JOB_DLQ)
        if depth:
            found.append(f"DLQ {JOB_DLQ}: one of its {depth} job(s) (attributed by count)")
    return found


def checks(world: World) -> list[str]:
    problems: list[str] = []
    completions = world.items(COMPLETIONS)
    by_job = {str(c.get("job_id")): c for c in completions}
    per_output = Counter(str(c.get("output_key")) for c in completions)
    per_input = Counter(str(c.get("input_key")) for c in completions)
    input_versions = world.versions(INPUT_BUCKET, INPUT_PREFIX)
    results = world.versions(OUTPUT_BUCKET, OUTPUT_PREFIX)
    current = set(world.keys(OUTPUT_BUCKET, OUTPUT_PREFIX))

    for result_key in sorted(results):
        writes = results[result_key]
        key = _input_key(result_key)
        if key is None:
            problems.append(f"s3://{OUTPUT_BUCKET}/{result_key} is not a result the worker writes (orphan)")
            continue
        if key not in input_versions:
            problems.append(f"s3://{OUTPUT_BUCKET}/{result_key}: its input {key} never existed (orphan)")
        if writes > max(1, per_output[result_key]):
            problems.append(
                f"{result_key} written {writes} times for {per_output[result_key]} "
                "completed job(s) (written twice)"
            )
        if result_key not in current:
            continue  # deleted since (only older versions left)
        result = _result(world, key)
        if result is None:
            problems.append(f"{result_key} is not a JSON object: not a worker result")
            continue
        source = result.get("source") or {}
        if source.get("key") != key or source.get("bucket") != INPUT_BUCKET:
            problems.append(f"{result_key} names its source as {source!r}, not s3://{INPUT_BUCKET}/{key}")
        stale = _stale(world, key, result)
        if stale is not None:
            problems.append(f"{result_key} is stale: {stale} (the new version was never processed)")
        completion = by_job.get(str(result.get("job_id")))
        if completion is None:
            problems.append(f"{result_key}: job {result.get('job_id')} has no completion item")
        elif completion.get("status") != "COMPLETED" or not completion.get("notified_at"):
            problems.append(
                f"{result_key}: completion of job {result.get('job_id')} is {completion.get('status')} "
                f"and notified_at is {completion.get('notified_at')!r} (never announced)"
            )

    for completion in completions:
        output = str(completion.get("output_key"))
        if output not in current:
            problems.append(
                f"completion of job {completion.get('job_id')} names {output}, which does not exist"
            )
        if _input_key(output) != completion.get("input_key"):
            problems.append(
                f"completion of job {completion.get('job_id')} pairs input {completion.get('input_key')} "
                f"with {output}"
            )
    for key, count in sorted(per_input.items()):
        if count > input_versions.get(key, 0):
            problems.append(
                f"{key} has {count} completions but {input_versions.get(key, 0)} version(s) (written twice)"
            )

    dead = _dead_jobs(world)
    if dead is None:
        unresolved = [key for key in inputs(world) if not _has_result(world, key)]
        depth = world.rabbit_queue(JOB_DLQ)
        if depth != len(unresolved):
            problems.append(
                f"{JOB_DLQ} holds {depth} job(s) but {len(unresolved)} input(s) have no result "
                f"({', '.join(unresolved[:5]) or 'none'})"
            )
    else:
        known = set(inputs(world))
        problems += [
            f"{JOB_DLQ} holds a job for {key}, which is not an input" for key in dead if key not in known
        ]

    for message in world.messages(RESULTS_DLQ):
        event = message.get("json")
        detail = event.get("detail") if isinstance(event, dict) else None
        named = ((detail or {}).get("object") or {}).get("key") if isinstance(detail, dict) else None
        problems.append(
            f"post-process event for {named or 'an unknown object'} is dead-lettered in {RESULTS_DLQ}"
        )
    return problems
