"""Schedule rules fire on the virtual clock, in order, with AWS's scheduled-event shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from harness.paths import REPO_ROOT
from harness.session import HarnessSession

from .conftest import backends

STACK = REPO_ROOT / "bench" / "schedule_stack"
START = datetime(2026, 1, 15, 7, 58, 30, tzinfo=UTC)


@pytest.fixture(scope="module", params=backends())
def session(request: pytest.FixtureRequest) -> Iterator[HarnessSession]:
    with HarnessSession(
        request.param, label=f"sched-{request.param}", support_services=False, config_dir=STACK
    ) as session:
        yield session


def _ticks(session: HarnessSession) -> list[dict[str, object]]:
    assert session.runtime is not None
    return [i.event for i in session.runtime.invocations if i.function == "bench-tick"]


def test_advance_fires_each_minute_in_order_with_the_scheduled_event(session: HarnessSession) -> None:
    session.reset_data(clock_start=START)
    fired = session.advance_to(START + timedelta(minutes=10))
    events = _ticks(session)
    assert fired == len(events) == 10
    times = [e["time"] for e in events]
    assert times == [(START + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(1, 11)]
    rule = next(r for r in session.stack.rules if r.name == "bench-every-minute")
    for event in events:
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["resources"] == [rule.arn] and event["detail"] == {}
        assert {"version", "id", "account", "region"} <= set(event)
    assert len({e["id"] for e in events}) == 10
    assert session.clock.now() == START + timedelta(minutes=10)


def test_the_same_advance_gives_the_same_timeline(session: HarnessSession) -> None:
    runs = []
    for _ in range(2):
        session.reset_data(clock_start=START)
        session.advance_to(START + timedelta(minutes=5))
        runs.append([(e["id"], e["time"]) for e in _ticks(session)])
    assert runs[0] == runs[1] and len(runs[0]) == 5


def test_nothing_fires_on_the_wall_clock(session: HarnessSession) -> None:
    """The emulator's own schedule (LocalStack fires rules on the wall clock) was taken over."""
    import time

    session.reset_data(clock_start=START)
    time.sleep(2)
    session.await_quiet(10)
    assert _ticks(session) == []


def test_the_clock_cannot_go_back(session: HarnessSession) -> None:
    session.reset_data(clock_start=START)
    with pytest.raises(ValueError, match="cannot move the clock back"):
        session.advance_to(START - timedelta(minutes=1))
