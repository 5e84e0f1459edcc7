"""Each emulator pitfall from shared/notes/emulators.md, shown neutralised on every backend."""

from __future__ import annotations

import json
from typing import Any

from harness.session import HarnessSession

BUCKET = "pitfall-bucket"


def _drain(session: HarnessSession, name: str) -> list[dict[str, Any]]:
    queue = session.stack.resolve_queue(name)
    return [json.loads(m["Body"]) for m in session.peek_messages(queue.url)]


def _put_two(session: HarnessSession) -> None:
    session.reset_data()
    s3 = session.client("s3")
    s3.put_object(Bucket=BUCKET, Key="in/one.txt", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="in/two.txt", Body=b"2")
    session.await_quiet(30)


def test_lambda_target_does_not_break_s3_delivery(pitfall_session: HarnessSession) -> None:
    _put_two(pitfall_session)
    routed = _drain(pitfall_session, "pitfall-routed")
    assert sorted(e["detail"]["object"]["key"] for e in routed) == ["in/one.txt", "in/two.txt"]


def test_lambda_target_is_invoked_by_the_harness(pitfall_session: HarnessSession) -> None:
    _put_two(pitfall_session)
    runtime = pitfall_session.runtime
    assert runtime is not None
    calls = [i for i in runtime.invocations if i.function == "pitfall-echo"]
    assert sorted(c.event["detail"]["object"]["key"] for c in calls) == ["in/one.txt", "in/two.txt"]
    assert all(c.source == "events:default/pitfall-to-lambda" and c.ok for c in calls)


def test_s3_events_have_unique_ids_iso_time_and_no_tag_events(pitfall_session: HarnessSession) -> None:
    _put_two(pitfall_session)
    routed = _drain(pitfall_session, "pitfall-routed")
    assert len({e["id"] for e in routed}) == 2
    assert {e["detail-type"] for e in routed} == {"Object Created"}
    for event in routed:
        assert isinstance(event["time"], str) and event["time"].endswith("Z")
        assert event["account"] and event["region"] == "us-east-1"


def test_s3_events_do_not_reach_custom_buses_or_schedule_rules(pitfall_session: HarnessSession) -> None:
    _put_two(pitfall_session)
    assert _drain(pitfall_session, "pitfall-leaks") == []


def test_schedule_targets_are_held_by_the_harness(pitfall_session: HarnessSession) -> None:
    targets = pitfall_session.client("events").list_targets_by_rule(Rule="pitfall-every-minute")["Targets"]
    assert targets == []
    stack_targets = [t for t in pitfall_session.stack.targets if t.rule == "pitfall-every-minute"]
    assert len(stack_targets) == 1, "the Stack still knows the schedule's target from Terraform state"
