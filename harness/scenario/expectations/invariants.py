"""The `invariants` expectation: the flow's declared invariants hold (see harness.chaos.invariants).

`- invariants: refiner` checks every input of the refiner flow ended in exactly one terminal
place, nothing was written twice, the status agrees with the objects and nothing is left in
flight. Random chaos runs end with it; any scenario may too.
"""

from __future__ import annotations

from harness.chaos.invariants import check_invariants, flows_with_invariants
from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import fail
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class Invariants(Expectation):
    """The flow's invariants (scenarios/<flow>/invariants.py) hold after the steps."""

    keyword = "invariants"
    shorthand = "flow"
    flow: str

    def check(self, ctx: ScenarioContext) -> None:
        declared = flows_with_invariants()
        if self.flow not in declared:
            raise fail("a flow with declared invariants", declared, self.flow)
        violations = check_invariants(ctx.session, self.flow)
        ctx.violations = violations
        if violations:
            raise fail(
                f"the {self.flow} invariants hold",
                "no violations",
                f"{len(violations)} violation(s)",
                [v.render() for v in violations],
            )
