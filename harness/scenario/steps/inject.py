"""The `inject` and `clear_faults` steps: faults that start (and end) mid-scenario.

`- inject: {network: {service: redis, mode: blackhole}}` installs any fault of the
`faults:` vocabulary at this point of the steps instead of before the first one; it lasts
until `clear_faults` or the end of the scenario.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import PrivateAttr, ValidationError, model_validator

from harness.deploy.stack import UnknownNameError
from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import FAULTS, Fault, Step, step


@step
class Inject(Step):
    """Install a fault now (any entry of the `faults:` vocabulary, written the same way)."""

    keyword = "inject"
    #: the fault as written: one keyword of the `faults:` vocabulary and its settings
    fault: dict[str, Any]
    _parsed: Fault = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _wrap(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"fault"}:
            return value  # already in field form (a re-validation with saved values)
        return {"fault": value}

    @model_validator(mode="after")
    def _parse(self) -> Inject:
        options = ", ".join(sorted(FAULTS))
        if len(self.fault) != 1:
            raise ValueError(
                f"inject takes one fault, like `inject: {{network: {{...}}}}`; faults: {options}"
            )
        keyword, spec = next(iter(self.fault.items()))
        kind = FAULTS.get(str(keyword))
        if kind is None:
            raise ValueError(f"unknown fault `{keyword}`; faults: {options}")
        try:
            self._parsed = kind.model_validate(spec)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{keyword}: {problems}") from None
        return self

    def run(self, ctx: ScenarioContext) -> None:
        try:
            self._parsed.install(ctx)
        except UnknownNameError as exc:
            raise HarnessError(f"inject {self._parsed.keyword}: {exc.args[0]}") from None


@step
class ClearFaults(Step):
    """Remove the faults in force: all of them, or one kind (aws, network, handler, delivery)."""

    keyword = "clear_faults"
    shorthand = "kind"
    kind: Literal["all", "aws", "network", "handler", "delivery"] = "all"

    def run(self, ctx: ScenarioContext) -> None:
        ctx.session.clear_faults(self.kind)
        ctx.session.timeline.add("clear_faults", ctx.session.clock.iso(), which=self.kind)
