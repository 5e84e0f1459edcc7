"""The `wait_until` step: poll an expectation until it holds, or fail after a timeout."""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError, field_validator

from harness.errors import ExpectationFailed
from harness.scenario import expectations as _expectations  # noqa: F401 - registers expectations
from harness.scenario.context import ScenarioContext
from harness.scenario.durations import parse_duration
from harness.scenario.vocabulary import EXPECTATIONS, Expectation, Step, step


def parse_expectation(entry: Any) -> Expectation:
    """One `expect:` entry (`{queue_empty: X}`) as its validated expectation."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ValueError("`expect` is one expectation, a mapping with one key like `{queue_empty: MyQueue}`")
    keyword, value = next(iter(entry.items()))
    spec = EXPECTATIONS.get(str(keyword))
    if spec is None:
        raise ValueError(
            f"unknown expectation `{keyword}`; expected one of: {', '.join(sorted(EXPECTATIONS))}"
        )
    try:
        return spec.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{keyword}: {problems}") from None


@step
class WaitUntil(Step):
    """Check an expectation again and again until it holds (or fail after `timeout`, default 30s)."""

    keyword = "wait_until"
    expect: dict[str, Any]
    timeout: str | float = "30s"
    interval: str | float = "200ms"

    @field_validator("expect")
    @classmethod
    def _expectation(cls, value: dict[str, Any]) -> dict[str, Any]:
        parse_expectation(value)
        return value

    @field_validator("timeout", "interval")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    def run(self, ctx: ScenarioContext) -> None:
        expectation = parse_expectation(self.expect)
        timeout = parse_duration(self.timeout).total_seconds()
        interval = max(parse_duration(self.interval).total_seconds(), 0.01)
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                expectation.check(ctx)
            except ExpectationFailed as exc:
                last = str(exc)
            else:
                ctx.session.timeline.add(
                    "wait_until",
                    ctx.session.clock.iso(),
                    expect=expectation.keyword,
                    held=True,
                    attempts=attempts,
                    after_s=round(time.monotonic() - started, 3),
                )
                return
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                break
            time.sleep(min(interval, timeout - elapsed))
        ctx.session.timeline.add(
            "wait_until",
            ctx.session.clock.iso(),
            expect=expectation.keyword,
            held=False,
            attempts=attempts,
            after_s=round(time.monotonic() - started, 3),
        )
        raise ExpectationFailed(
            f"wait_until: {expectation.keyword} did not hold within {timeout:g}s "
            f"({attempts} checks); last failure:\n{last}"
        )
