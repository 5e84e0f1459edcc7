"""Invariants of the tracker flow (seed 004), checked after a scenario or a chaos run.

An input is an item of the table `tracker-files` that the pipe forwarded: one whose status is
PENDING, FINISHED or FAILED (the worker sets FINISHED and FAILED only on PENDING items, and the
pipe forwards every PENDING image, with or without an `s3_path`: the worker fails those that
have none). Items with any other status (DONE, RETRY, ...) are filtered out by the pipe and
are not inputs.

Terminal places of one input (exactly one must hold):
- finished: status FINISHED (the copy at its `output_path` is checked below);
- failed: status FAILED with its `error` (missing input object, malformed s3_path);
- dead-lettered: its stream record sits in `tracker-work-dlq`, once per message (the item
  then stays PENDING: the worker never answered it).
A PENDING item whose record is not in the DLQ has reached no terminal place: the record was
lost, or no worker has taken it yet.

"Written twice" here: each PENDING -> FINISHED transition copies its input once (a duplicate
stream record finds the item no longer PENDING and copies nothing), so an output key
`data/output/...` with more versions than FINISHED items mapping to it was written twice.

"Status agrees with the objects": a FINISHED item's `output_path` is its `s3_path` with the
first `input` folder replaced by `output`, and that object exists with the input's bytes; an
output that exists for an item that is PENDING or FAILED (and no FINISHED item explains it)
disagrees. Orphans: an object under `data/output/` of `tracker-data` that no input maps to, a
DLQ message that names no input.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from harness.chaos.invariants import World

TABLE = "tracker-files"
BUCKET = "tracker-data"
OUTPUT_PREFIX = "data/output/"
DLQ = "tracker-work-dlq"
PENDING, FINISHED, FAILED = "PENDING", "FINISHED", "FAILED"
FORWARDED = (PENDING, FINISHED, FAILED)


def _items(world: World) -> dict[str, dict[str, Any]]:
    return {
        str(item["id"]): item
        for item in world.items(TABLE)
        if "id" in item and item.get("status") in FORWARDED
    }


def _split(path: object) -> tuple[str, str] | None:
    if not isinstance(path, str) or not path.startswith("s3://"):
        return None
    bucket, sep, key = path[len("s3://") :].partition("/")
    return (bucket, key) if bucket and sep and key else None


def _output(s3_path: object) -> tuple[str, str] | None:
    """(bucket, output key) the worker copies `s3_path` to; None when it cannot map it."""
    location = _split(s3_path)
    if location is None or location[1].endswith("/"):
        return None
    bucket, key = location
    parts = key.split("/")
    for index, part in enumerate(parts[:-1]):
        if part == "input":
            parts[index] = "output"
            return bucket, "/".join(parts)
    return None


def _dead_letters(world: World) -> list[tuple[str | None, str]]:
    """(item id or None, message id) per DLQ message."""
    found: list[tuple[str | None, str]] = []
    for message in world.messages(DLQ):
        record = message.get("json")
        if isinstance(record, str):  # a pipe may wrap the record as a JSON string
            try:
                record = json.loads(record)
            except ValueError:
                record = None
        keys = (record.get("dynamodb") or {}).get("Keys") if isinstance(record, dict) else None
        value = (keys.get("id") or {}) if isinstance(keys, dict) else {}
        item_id = value.get("S", value.get("N")) if isinstance(value, dict) else None
        found.append((None if item_id is None else str(item_id), str(message.get("MessageId", "?"))))
    return found


def inputs(world: World) -> list[str]:
    return sorted(_items(world))


def places(world: World, item_id: str) -> list[str]:
    item = _items(world).get(item_id)
    status = None if item is None else item.get("status")
    found = []
    if item is not None and status == FINISHED:
        found.append(f"finished: status FINISHED + copy {item.get('output_path')}")
    if item is not None and status == FAILED:
        found.append(f"failed: status FAILED ({item.get('error')})")
    for dead, message_id in _dead_letters(world):
        if dead == item_id:
            found.append(f"DLQ {DLQ} message {message_id} (status {status})")
    return found


def _exists(world: World, bucket: str, key: str) -> bool:
    return key in world.keys(bucket, key)


def checks(world: World) -> list[str]:
    problems: list[str] = []
    items = _items(world)
    finished_targets: Counter[tuple[str, str]] = Counter()
    mapped: dict[tuple[str, str], list[str]] = {}
    for item_id, item in sorted(items.items()):
        target = _output(item.get("s3_path"))
        if target is not None:
            mapped.setdefault(target, []).append(item_id)
        if item.get("status") == FINISHED:
            if target is None:
                problems.append(
                    f"{item_id}: FINISHED, but its s3_path {item.get('s3_path')!r} maps to no output"
                )
                continue
            finished_targets[target] += 1
            expected = f"s3://{target[0]}/{target[1]}"
            if item.get("output_path") != expected:
                problems.append(
                    f"{item_id}: FINISHED with output_path {item.get('output_path')!r}, not {expected}"
                )
            copy = world.read(*target)
            if copy is None:
                problems.append(f"{item_id}: FINISHED, but {expected} does not exist")
                continue
            source = _split(item.get("s3_path"))
            original = world.read(*source) if source is not None else None
            if original is not None and original != copy:
                problems.append(f"{item_id}: {expected} differs from its input {item.get('s3_path')}")
    for target, ids in sorted(mapped.items()):
        if target[0] == BUCKET and finished_targets[target] == 0 and _exists(world, *target):
            states = ", ".join(f"{i} {items[i].get('status')}" for i in ids)
            problems.append(
                f"s3://{target[0]}/{target[1]} exists but no item that maps to it is FINISHED ({states})"
            )

    writes = world.versions(BUCKET, OUTPUT_PREFIX)
    for key, count in sorted(writes.items()):
        if (BUCKET, key) not in mapped:
            problems.append(f"s3://{BUCKET}/{key} is explained by no tracked item (orphan)")
        elif count > max(1, finished_targets[(BUCKET, key)]):
            problems.append(
                f"s3://{BUCKET}/{key} written {count} times for {finished_targets[(BUCKET, key)]} "
                "finished item(s) (written twice)"
            )
    for target, count in sorted(finished_targets.items()):
        if target[0] != BUCKET:  # outputs in other buckets: count their writes too
            others = world.versions(target[0], target[1]).get(target[1], 0)
            if others > count:
                problems.append(
                    f"s3://{target[0]}/{target[1]} written {others} times for {count} finished item(s)"
                )

    for dead, message_id in _dead_letters(world):
        if dead is None:
            problems.append(f"DLQ {DLQ} message {message_id} is not a stream record of a tracked item")
        elif dead not in items:
            problems.append(f"DLQ {DLQ} message {message_id} names item {dead}, which is not an input")
    return problems
