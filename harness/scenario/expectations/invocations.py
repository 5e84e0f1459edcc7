"""The `invocations` expectation: how often a function ran, with what outcome and result."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from harness.runtime.lambda_runtime import Invocation
from harness.scenario import matchers
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    pick_name,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation


def function_invocations(ctx: ScenarioContext, function: str) -> tuple[str, list[Invocation]]:
    """A function's name (from the stack, else among the recorded invocations) and its invocations."""
    runtime = ctx.session.runtime
    if runtime is None:
        raise fail(f"invocations of {function}", "a running Lambda runtime", "no runtime in this session")
    stack = ctx.session.stack
    if stack.functions:
        try:
            name = stack.resolve_function(function).name
        except KeyError as exc:
            raise fail(f"function {function!r} exists", function, str(exc.args[0])) from None
    else:
        recorded = {i.function for i in runtime.invocations}
        name = pick_name("function", function, recorded) if recorded else function
    return name, [i for i in runtime.invocations if i.function == name]


@expectation
class Invocations(Expectation):
    """How many times a function ran, optionally only those with a given outcome or result."""

    keyword = "invocations"
    function: str
    count: CountMatcher
    outcome: Literal["success", "error", "timeout", "crash", "failed"] | None = None
    result: Matcher = None

    _valid_count = field_validator("count")(valid_count)
    _valid_result = field_validator("result")(valid_matcher)

    def check(self, ctx: ScenarioContext) -> None:
        name, calls = function_invocations(ctx, self.function)
        if self.outcome == "failed":
            selected = [i for i in calls if not i.ok]
        elif self.outcome is not None:
            selected = [i for i in calls if i.outcome == self.outcome]
        else:
            selected = calls
        label = f" with outcome {self.outcome}" if self.outcome else ""
        expect_match(
            f"invocations of {name}{label}",
            self.count,
            len(selected),
            {"count": len(selected), "all": [f"#{i.seq} {i.outcome} via {i.source}" for i in calls]},
        )
        if self.result is not None:
            for invocation in selected:
                problems = matchers.mismatches(self.result, invocation.result)
                if problems:
                    raise fail(
                        f"result of invocation #{invocation.seq} of {name}{label}",
                        self.result,
                        invocation.result,
                        problems,
                    )
