"""The `ec2_instances` expectation: instances launched during the scenario, as the emulator lists them."""

from __future__ import annotations

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation


@expectation
class Ec2Instances(Expectation):
    """EC2 instances launched since the scenario began, filtered by tags (all must match) and
    state (`running`, `terminated`, ...): how many, their states, and whether the harness
    ran their user data (`ran`: how many were started as processes)."""

    keyword = "ec2_instances"
    tags: dict[str, str] = {}
    state: str | list[str] | None = None
    count: CountMatcher = None
    states: Matcher = None
    ran: CountMatcher = None

    _valid_counts = field_validator("count", "ran")(valid_count)
    _valid_states = field_validator("states")(valid_matcher)

    def check(self, ctx: ScenarioContext) -> None:
        runner = ctx.session.ec2
        if runner is None:
            raise fail("ec2_instances: a deployed stack", "instances", "no stack")
        wanted = [self.state] if isinstance(self.state, str) else self.state
        found = []
        for inst in runner.scenario_instances():
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            state = inst.get("State", {}).get("Name", "")
            if any(tags.get(k) != v for k, v in self.tags.items()):
                continue
            if wanted is not None and state not in wanted:
                continue
            found.append({"instance_id": inst["InstanceId"], "state": state, "tags": tags})
        what = f"EC2 instances tagged {self.tags or 'anything'}" + (f" in state {wanted}" if wanted else "")
        ran = sum(
            1
            for f in found
            if f["instance_id"] in runner.instances and runner.instances[f["instance_id"]].process
        )
        actual = {"count": len(found), "instances": found, "ran": ran}
        if self.count is not None:
            expect_match(f"number of {what}", self.count, len(found), actual)
        if self.states is not None:
            expect_match(f"states of {what}", self.states, [f["state"] for f in found], actual)
        if self.ran is not None:
            expect_match(f"{what} whose user data the harness ran", self.ran, ran, actual)
