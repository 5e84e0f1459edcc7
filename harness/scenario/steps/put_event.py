"""The `put_event` step: put one event on an EventBridge bus."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


@step
class PutEvent(Step):
    """Put an event on an EventBridge bus (`default` unless `bus` names another), at virtual time."""

    keyword = "put_event"
    bus: str = Field(default="default", min_length=1)
    source: str = Field(min_length=1)
    detail_type: str = Field(min_length=1)
    detail: dict[str, Any] = Field(default_factory=dict)
    resources: list[str] = Field(default_factory=list)

    def run(self, ctx: ScenarioContext) -> None:
        entry: dict[str, Any] = {
            "EventBusName": self.bus,
            "Source": self.source,
            "DetailType": self.detail_type,
            "Detail": json.dumps(self.detail),
            "Time": ctx.session.clock.now(),
        }
        if self.resources:
            entry["Resources"] = self.resources
        try:
            response = ctx.session.client("events").put_events(Entries=[entry])
        except ClientError as exc:
            raise HarnessError(f"put_event on bus {self.bus!r}: {exc}") from None
        if response.get("FailedEntryCount", 0):
            failed = [
                f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}"
                for e in response.get("Entries", [])
                if e.get("ErrorCode")
            ]
            raise HarnessError(
                f"put_event on bus {self.bus!r}: EventBridge rejected the event ({'; '.join(failed)})"
            )
        event_id = (response.get("Entries") or [{}])[0].get("EventId")
        ctx.session.timeline.add(
            "put_event",
            ctx.session.clock.iso(),
            bus=self.bus,
            source=self.source,
            detail_type=self.detail_type,
            event_id=event_id,
        )
