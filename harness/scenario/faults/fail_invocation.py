"""The `fail_invocation` fault: chosen invocations of a function fail without running it.

Call indexes follow Step Functions mock configs: `attempts: [1, 2]`, `attempts: "1-2"`,
`attempts: "2,4-5"` or `attempts: all`, counted from 1 per function within the scenario.

With `after_calls: N` the handler really runs and the fault lands mid-work: right after its
Nth AWS API call returns, its process exits (`crash`) or hangs until killed (`timeout`), so
whatever it wrote before stays written, as when a Lambda sandbox dies halfway.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Fault, fault

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_attempts(value: list[int] | str) -> set[int] | None:
    """The attempts a spec names; None means all."""
    if isinstance(value, list):
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value):
            raise ValueError("attempts are numbers from 1")
        return set(value)
    if value.strip() == "all":
        return None
    chosen: set[int] = set()
    for part in value.split(","):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"{value!r} is not a list of attempts like [1, 2], '1-2', '2,4-5' or 'all'")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if low < 1 or high < low or high - low > 10_000:
            raise ValueError(f"{part.strip()!r} is not an ascending range of attempts from 1")
        chosen.update(range(low, high + 1))
    return chosen


@fault
class FailInvocation(Fault):
    """Make chosen invocations of a function fail (error, timeout or crash) without running it."""

    keyword = "fail_invocation"
    function: str
    attempts: list[int] | str = "all"
    kind: Literal["error", "timeout", "crash"] = "error"
    message: str = "injected failure"
    after_calls: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _mid_work(self) -> FailInvocation:
        if self.after_calls is not None and self.kind == "error":
            raise ValueError(
                "after_calls goes with kind crash or timeout (an error is raised before any work)"
            )
        return self

    @field_validator("attempts")
    @classmethod
    def _attempts(cls, value: list[int] | str) -> list[int] | str:
        parse_attempts(value)
        return value

    def install(self, ctx: ScenarioContext) -> None:
        runtime = ctx.session.runtime
        assert runtime is not None
        name = ctx.session.stack.resolve_function(self.function).name
        chosen = parse_attempts(self.attempts)
        error_type = {"error": "InjectedFault", "timeout": "Sandbox.Timedout", "crash": "Runtime.ExitError"}[
            self.kind
        ]

        def hook(function: str, attempt: int) -> dict[str, Any] | None:
            if function != name or (chosen is not None and attempt not in chosen):
                return None
            if self.after_calls is not None:
                return {"arm": {"kind": self.kind, "after_calls": self.after_calls}}
            return {
                "ok": False,
                "kind": self.kind,
                "error_type": error_type,
                "error_message": self.message,
                "logs": "",
            }

        runtime.fault_hooks.append(hook)
        ctx.session.timeline.add(
            "fault",
            ctx.session.clock.iso(),
            fault=self.keyword,
            function=name,
            attempts=self.attempts,
            failure=self.kind,
            after_calls=self.after_calls,
        )
