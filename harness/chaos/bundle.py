"""Replay bundles: everything needed to look at, re-run and keep a failing run.

A bundle is a directory under the run directory (`<run>/bundles/<name>/`):

    scenario.yaml    the plan as an ordinary scenario file (seed and faults included)
    failure.txt      what failed: the expectation message, invariant violations
    timeline.jsonl   the harness's event timeline of the run
    requests.jsonl   the AWS requests of the compute, as the fault proxy saw them
    state.json       final state: objects per bucket, messages per queue, items per table
    meta.json        backend, flow, seed, when, and the outcome signature replay compares

`harness replay <bundle>` runs scenario.yaml again (N times) on a fresh session and says
whether the same failure recurs and whether the timeline is the same; `--save PATH` writes
scenario.yaml out as a regression scenario.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from harness.session import HarnessSession

STATE_LIMIT = 200  # per bucket / queue / table: a snapshot, not a dump
_VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # request and message ids
    r"|\b\d+(\.\d+)?\s*(ms|s)\b"  # durations
    r"|:\d{4,5}\b"  # ports
)


def write_bundle(
    session: HarnessSession,
    root: Path,
    name: str,
    scenario: dict[str, Any] | Path,
    failure: str,
    flow: str,
) -> Path:
    """Write a bundle for a failed run; returns its directory."""
    bundle = root / _slug(name)
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    if isinstance(scenario, Path):
        shutil.copyfile(scenario, bundle / "scenario.yaml")
    else:
        (bundle / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False, width=100))
    (bundle / "failure.txt").write_text(failure + "\n")
    with (bundle / "timeline.jsonl").open("w") as out:
        for event in timeline_events(session):
            out.write(json.dumps(event, default=str) + "\n")
    if session.aws_proxy is not None:
        session.aws_proxy.dump_log(bundle / "requests.jsonl")
    (bundle / "state.json").write_text(json.dumps(snapshot(session), indent=1, default=str))
    meta = {
        "backend": session.backend,
        "flow": flow,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "signature": failure_signature(failure),
        "timeline_signature": timeline_signature(timeline_events(session)),
    }
    (bundle / "meta.json").write_text(json.dumps(meta, indent=1))
    return bundle


def timeline_events(session: HarnessSession) -> list[dict[str, Any]]:
    with session.timeline._lock:
        return [
            {
                "seq": e.seq,
                "virtual_time": e.virtual_time,
                "wall": round(e.wall_offset, 3),
                "kind": e.kind,
                **e.detail,
            }
            for e in session.timeline.events
        ]


def failure_signature(failure: str) -> str:
    """The failure with what differs between identical runs (ids, durations, ports) masked."""
    return _VOLATILE.sub("*", failure).strip()


def timeline_signature(events: list[dict[str, Any]]) -> list[str]:
    """The timeline reduced to what a deterministic replay must repeat: kinds and outcomes in
    virtual time, without wall offsets, durations and ids."""
    keep = ("kind", "virtual_time", "function", "outcome", "fault", "subjects", "action", "name", "queue")
    lines = []
    for event in events:
        shown = {k: event[k] for k in keep if k in event}
        lines.append(_VOLATILE.sub("*", json.dumps(shown, sort_keys=True, default=str)))
    return lines


def same_events(one: list[str], other: list[str]) -> bool:
    """The same events, in whatever order concurrent pollers and steps interleaved them."""
    return sorted(one) == sorted(other)


def snapshot(session: HarnessSession) -> dict[str, Any]:
    state: dict[str, Any] = {"buckets": {}, "queues": {}, "tables": {}}
    s3 = session.client("s3")
    for bucket in session.stack.buckets:
        try:
            listing = s3.list_objects_v2(Bucket=bucket, MaxKeys=STATE_LIMIT)
        except Exception as exc:  # noqa: BLE001 - a snapshot reports, it does not fail
            state["buckets"][bucket] = f"unreadable: {exc}"
            continue
        state["buckets"][bucket] = {o["Key"]: o["Size"] for o in listing.get("Contents", [])}
    for queue in session.stack.queues.values():
        try:
            messages = session.peek_messages(queue.url)[:STATE_LIMIT]
        except Exception as exc:  # noqa: BLE001
            state["queues"][queue.name] = f"unreadable: {exc}"
            continue
        state["queues"][queue.name] = [m.get("Body") for m in messages]
    dynamodb = session.client("dynamodb")
    for table in session.stack.tables.values():
        try:
            items = dynamodb.scan(TableName=table.name, Limit=STATE_LIMIT).get("Items", [])
        except Exception as exc:  # noqa: BLE001
            state["tables"][table.name] = f"unreadable: {exc}"
            continue
        state["tables"][table.name] = items
    return state


@dataclass
class ReplayOutcome:
    run: int
    passed: bool
    signature: str
    timeline: list[str]
    seconds: float


def load_bundle(path: Path) -> tuple[Path, dict[str, Any]]:
    """The bundle's scenario file and its meta; a clear error for anything else."""
    scenario = path / "scenario.yaml"
    meta_path = path / "meta.json"
    if not path.is_dir() or not scenario.is_file():
        raise FileNotFoundError(f"{path} is not a replay bundle (no scenario.yaml in it)")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return scenario, meta


def save_as_scenario(bundle: Path, target: Path, name: str | None = None) -> Path:
    """The bundle's plan as a regression scenario file, named and described after its failure."""
    scenario, meta = load_bundle(bundle)
    document = yaml.safe_load(scenario.read_text())
    failure = (bundle / "failure.txt").read_text().strip() if (bundle / "failure.txt").is_file() else ""
    if name:
        document["name"] = name
    first_line = failure.splitlines()[0] if failure else "a failing chaos plan"
    document["description"] = (
        f"Saved from replay bundle {bundle.name} (backend {meta.get('backend', '?')}). "
        f"It failed with: {first_line}"
    )
    tags = [t for t in document.get("tags", []) if t != "chaos"]
    document["tags"] = [*tags, "regression"]
    header = "# yaml-language-server: $schema=../../harness/scenario/schema.json\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header + yaml.safe_dump(document, sort_keys=False, width=100))
    return target


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "bundle"


def replay(session: HarnessSession, scenario: Path, times: int) -> list[ReplayOutcome]:
    """Run the bundle's scenario `times` times on the session; what each run did."""
    from harness.errors import ExpectationFailed, HarnessError
    from harness.scenario.model import load_scenario
    from harness.scenario.runner import run_scenario

    plan = load_scenario(scenario)
    outcomes = []
    for run in range(1, times + 1):
        started = time.monotonic()
        try:
            run_scenario(plan, session)
            passed, message = True, ""
        except (ExpectationFailed, HarnessError, TimeoutError) as exc:
            passed, message = False, str(exc)
        outcomes.append(
            ReplayOutcome(
                run=run,
                passed=passed,
                signature=failure_signature(message),
                timeline=timeline_signature(timeline_events(session)),
                seconds=time.monotonic() - started,
            )
        )
    return outcomes
