"""Flow invariants: what must hold after any run, whatever failed on the way.

Each flow declares its invariants next to its scenarios, in `scenarios/<flow>/invariants.py`,
as three functions over a `World` (read-only views of the emulator and the support
services):

- `inputs(world) -> list[str]`: the inputs that entered the flow (object keys, item ids);
- `places(world, input) -> list[str]`: every terminal place the input is found in
  (its output, a DLQ, a recorded rejection), described in words;
- `checks(world) -> list[str]`: flow-wide problems (an output written twice, a status
  that disagrees with the objects), empty when all is well.

A flow that also has `scenarios/<flow>/chaos.py` (a `CHAOS = ChaosProfile(...)`) is covered by
the random chaos tests, by construction: nothing else needs to know about it.

The checker adds what holds for every flow: each input in exactly one terminal place, and
nothing left in flight. A violation names the input, where the timeline saw it last, and the
timeline around that moment.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.paths import REPO_ROOT

if TYPE_CHECKING:
    from harness.session import HarnessSession

SCENARIOS = REPO_ROOT / "scenarios"


@dataclass
class Violation:
    invariant: str
    input: str | None
    detail: str
    last_seen: str = ""
    around: str = ""

    def render(self) -> str:
        head = f"{self.invariant}: {self.detail}"
        if self.input is not None:
            head = f"{self.invariant} [{self.input}]: {self.detail}"
        parts = [head]
        if self.last_seen:
            parts.append(f"  last seen: {self.last_seen}")
        if self.around:
            parts.append(
                "  timeline around it:\n" + "\n".join("    " + line for line in self.around.splitlines())
            )
        return "\n".join(parts)


class World:
    """What the invariants may read: objects, queues, items, rows. Reads go to the services
    directly, never through the fault proxies."""

    def __init__(self, session: HarnessSession) -> None:
        self.session = session

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.session.client("s3").get_paginator("list_objects_v2")
        return sorted(
            obj["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        )

    def versions(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """How many times each key was written (versioned buckets; else 1 per existing key)."""
        paginator = self.session.client("s3").get_paginator("list_object_versions")
        counts: dict[str, int] = {}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                counts[version["Key"]] = counts.get(version["Key"], 0) + 1
        return counts

    def read(self, bucket: str, key: str) -> bytes | None:
        s3 = self.session.client("s3")
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def read_json(self, bucket: str, key: str) -> Any:
        body = self.read(bucket, key)
        return None if body is None else json.loads(body)

    def messages(self, queue: str) -> list[dict[str, Any]]:
        """A queue's messages (bodies parsed when JSON), without receiving them."""
        url = self.session.stack.resolve_queue(queue).url
        out = []
        for message in self.session.peek_messages(url):
            body = message.get("Body", "")
            try:
                message = {**message, "json": json.loads(body)}
            except (TypeError, ValueError):
                pass
            out.append(message)
        return out

    def queue_depth(self, queue: str) -> int:
        return self.session.queue_depth(self.session.stack.resolve_queue(queue).url)

    def items(self, table: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        name = self.session.stack.resolve_table(table).name
        deserializer = TypeDeserializer()
        paginator = self.session.client("dynamodb").get_paginator("scan")
        return [
            {k: deserializer.deserialize(v) for k, v in item.items()}
            for page in paginator.paginate(TableName=name, ConsistentRead=True)
            for item in page.get("Items", [])
        ]

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        url = self.session.database_url()
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=5) as conn:
            conn.read_only = True
            with conn.cursor() as cursor:
                cursor.execute(query, params or None)
                return [dict(row) for row in cursor.fetchall()]

    def rabbit_queue(self, name: str) -> int:
        """Messages on a RabbitMQ queue (ready + unacknowledged); 0 when the queue is unknown."""
        admin = self.session.rabbit_admin
        if admin is None or "rabbitmq" in self.session.outages.down:
            return 0
        try:
            return next((q.messages for q in admin.queues() if q.name == name), 0)
        except OSError:
            return 0


@dataclass
class FlowInvariants:
    flow: str
    inputs: Callable[[World], list[str]]
    places: Callable[[World, str], list[str]]
    checks: Callable[[World], list[str]] = field(default=lambda world: [])
    source: Path | None = None


def invariants_file(flow: str) -> Path:
    return SCENARIOS / flow / "invariants.py"


def flows_with_invariants() -> list[str]:
    return sorted(p.parent.name for p in SCENARIOS.glob("*/invariants.py"))


def load_invariants(flow: str) -> FlowInvariants:
    path = invariants_file(flow)
    if not path.is_file():
        raise FileNotFoundError(
            f"flow {flow} declares no invariants ({path.relative_to(REPO_ROOT)} is missing)"
        )
    module = _load_module(path, f"harness_invariants_{flow}")
    for name in ("inputs", "places"):
        if not callable(getattr(module, name, None)):
            raise TypeError(f"{path.relative_to(REPO_ROOT)} must define a function `{name}`")
    return FlowInvariants(
        flow=flow,
        inputs=module.inputs,
        places=module.places,
        checks=getattr(module, "checks", lambda world: []),
        source=path,
    )


def _load_module(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in the module look themselves up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a broken file must fail again next time, not look half-loaded
        raise
    return module


def _timeline_lines(session: HarnessSession) -> list[str]:
    with session.timeline._lock:
        return [event.render() for event in session.timeline.events]


def _locate(lines: list[str], needle: str, span: int = 4) -> tuple[str, str]:
    hits = [i for i, line in enumerate(lines) if needle in line]
    if not hits:
        return "never in the harness's timeline", "\n".join(lines[-span * 2 :])
    last = hits[-1]
    return lines[last], "\n".join(lines[max(0, last - span) : last + span + 1])


def check_invariants(session: HarnessSession, flow: str) -> list[Violation]:
    """Every violation of the flow's invariants in the current state, with its context."""
    declared = load_invariants(flow)
    world = World(session)
    lines = _timeline_lines(session)
    violations: list[Violation] = []

    busy = session.in_flight()
    if busy:
        violations.append(
            Violation("nothing left in flight", None, "; ".join(busy), around="\n".join(lines[-8:]))
        )
    for item in dict.fromkeys(declared.inputs(world)):
        places = declared.places(world, item)
        if len(places) == 1:
            continue
        seen, around = _locate(lines, _needle(item))
        detail = (
            "reached no terminal place (no output, no DLQ message, no recorded rejection)"
            if not places
            else f"ended in {len(places)} terminal places: {'; '.join(places)}"
        )
        violations.append(Violation("exactly one terminal place", item, detail, seen, around))
    for problem in declared.checks(world):
        violations.append(Violation(f"{flow} check", None, problem))
    return violations


def _needle(item: str) -> str:
    """The part of an input's id most likely to appear in timeline events (its last path part)."""
    return item.rstrip("/").rsplit("/", 1)[-1]


def iter_flows() -> Iterator[FlowInvariants]:
    for flow in flows_with_invariants():
        yield load_invariants(flow)


def load_profile(flow: str) -> Any:
    """The flow's ChaosProfile (`CHAOS` in `scenarios/<flow>/chaos.py`), or None if it has none."""
    path = SCENARIOS / flow / "chaos.py"
    if not path.is_file():
        return None
    return getattr(_load_module(path, f"harness_chaos_{flow}"), "CHAOS", None)


def chaos_flows() -> list[str]:
    """Flows with both invariants and a chaos profile: the random chaos tests cover each."""
    return [flow for flow in flows_with_invariants() if load_profile(flow) is not None]
