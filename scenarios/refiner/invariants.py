"""Invariants of the refiner flow (seed 003), checked after every chaos run.

An input is an object under `RefinerInput/` of `data-repository`. Its terminal places:
- refined: the manifest `RefinerComplete/<name>.json` exists;
- dead-lettered: its EventBridge event sits in `RefinerInput-dlq`, and it was not refined
  anyway (a dead-lettered copy of a refined input's event is a harmless duplicate).

"Written twice" here: a manifest with more than one version (each manifest write emits a
RefinerComplete event, so a second one is a duplicate completion downstream), a copy no
manifest lists (an orphan from an attempt whose copy names differed), a manifest that does
not list exactly two copies, or a copy whose bytes differ from its input. Copies themselves
may be rewritten with the same bytes by a retry: their names are stable per input version.
"""

from __future__ import annotations

import posixpath
from typing import Any

from harness.chaos.invariants import World

BUCKET = "data-repository"
INPUT, OUTPUT, COMPLETE = "RefinerInput/", "RefinerOutput/", "RefinerComplete/"
DLQ = "RefinerInput-dlq"


def _manifest(key: str) -> str:
    return f"{COMPLETE}{posixpath.basename(key)}.json"


def _dead_lettered(world: World) -> list[str]:
    keys = []
    for message in world.messages(DLQ):
        event: Any = message.get("json") or {}
        key = ((event.get("detail") or {}).get("object") or {}).get("key")
        keys.append(str(key))
    return keys


def _crashed_copies(world: World) -> set[str]:
    """Copies a dead-lettered input's attempts may have written before their process died.

    With no transaction over several S3 writes, a process killed between a copy and the
    manifest leaves the copy; if the input then ends in the DLQ nothing takes it back. Copy
    names are stable per input version, so such garbage is recognisable (found by the
    chaos tests: a crash mid-batch plus delayed deliveries used up the receives).
    """
    from pipeline.common.events import MalformedEvent, s3_object_from_eventbridge
    from pipeline.refiner.handler import output_keys

    garbage: set[str] = set()
    for message in world.messages(DLQ):
        try:
            ref = s3_object_from_eventbridge(message.get("json") or {})
        except MalformedEvent:
            continue
        garbage.update(output_keys(ref, OUTPUT))
    return garbage


def inputs(world: World) -> list[str]:
    return [k for k in world.keys(BUCKET, INPUT) if not k.endswith("/")]


def places(world: World, key: str) -> list[str]:
    if world.read(BUCKET, _manifest(key)) is not None:
        # A dead-lettered copy of its event is no second place: the work is done (a delete
        # was lost, or the process died after the manifest, and the redeliveries failed), and
        # a redrive finds the identical manifest and writes nothing. Found by the chaos tests.
        return [f"refined: manifest {_manifest(key)}"]
    found = []
    dead = _dead_lettered(world).count(key)
    found.extend([f"dead-lettered: event in {DLQ}"] * dead)
    return found


def checks(world: World) -> list[str]:
    problems = []
    listed: dict[str, str] = {}
    for manifest, writes in world.versions(BUCKET, COMPLETE).items():
        if writes > 1:
            problems.append(f"manifest {manifest} written {writes} times")
        copies = world.read_json(BUCKET, manifest)
        if copies is None:
            continue  # a deleted manifest (only delete markers left)
        if not isinstance(copies, list) or len(copies) != 2:
            problems.append(f"manifest {manifest} lists {copies!r}, not two copies")
            continue
        source = f"{INPUT}{posixpath.basename(manifest)[: -len('.json')]}"
        original = world.read(BUCKET, source)
        for copy in copies:
            key = str(copy).lstrip("/")
            listed[key] = manifest
            body = world.read(BUCKET, key)
            if body is None:
                problems.append(f"manifest {manifest} lists {key}, which does not exist")
            elif original is not None and body != original:
                problems.append(f"copy {key} differs from its input {source}")
    crashed = _crashed_copies(world)
    for key in world.keys(BUCKET, OUTPUT):
        if key not in listed and key not in crashed:
            problems.append(f"copy {key} is listed by no manifest (an output written twice)")
    return problems
