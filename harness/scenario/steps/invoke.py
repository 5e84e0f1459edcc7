"""The `invoke` step: call a function directly with a payload."""

from __future__ import annotations

from typing import Any

from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


@step
class Invoke(Step):
    """Invoke a function directly with a payload, as `aws lambda invoke` would."""

    keyword = "invoke"
    function: str
    payload: Any = None

    def run(self, ctx: ScenarioContext) -> None:
        runtime = ctx.session.runtime
        assert runtime is not None
        runtime.invoke(ctx.session.stack.resolve_function(self.function).name, self.payload or {})
