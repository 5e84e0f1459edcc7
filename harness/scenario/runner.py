"""Run one scenario against a session: reset data, take the steps, check every expectation."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from harness.deploy.stack import UnknownNameError
from harness.errors import ExpectationFailed, HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.interpolate import interpolate
from harness.scenario.model import FLOWS, Scenario
from harness.scenario.vocabulary import Spec
from harness.session import HarnessSession

SpecT = TypeVar("SpecT", bound=Spec)


def with_saved(spec: SpecT, ctx: ScenarioContext) -> SpecT:
    """The entry with its `${saved.NAME}` placeholders replaced by the values saved so far."""
    data = interpolate(spec.model_dump(by_alias=True, exclude_unset=True), ctx.saved)
    try:
        return type(spec).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise HarnessError(f"{spec.keyword} with saved values filled in is not valid: {problems}") from None


def run_scenario(scenario: Scenario, session: HarnessSession) -> ScenarioContext:
    header = scenario.header
    session.reset_data(
        clock_start=header.clock,
        seed=header.seed,
        flow=header.flow if header.schedules == "flow" else None,
        flows=frozenset(FLOWS),
    )
    ctx = ScenarioContext(session=session, file=scenario.file)
    for fault in scenario.faults:  # removed again by the next reset_data
        try:
            fault.install(ctx)
        except UnknownNameError as exc:
            raise HarnessError(f"{scenario.file}: fault {fault.keyword}: {exc.args[0]}") from None
    try:
        for index, step in enumerate(scenario.steps, start=1):
            try:
                with_saved(step, ctx).run(ctx)
            except TimeoutError as exc:
                raise ExpectationFailed(f"step {index} ({step.keyword}) timed out: {exc}") from None
        session.evaluate_alarms()  # as CloudWatch would have by now
        failures: list[str] = []
        for index, expectation in enumerate(scenario.expect, start=1):
            try:
                with_saved(expectation, ctx).check(ctx)
            except ExpectationFailed as exc:
                failures.append(f"expect[{index}] {expectation.keyword}: {exc}")
        # A handler that cannot import a module is a packaging mistake: it fails the scenario
        # whatever the expectations say (in AWS every invocation of it would fail).
        runtime = session.runtime
        failures += [f"packaging: {error}" for error in (runtime.packaging_errors if runtime else [])]
        # Likewise user data the harness could not carry out: the instance would do nothing.
        failures += [f"ec2: {failure}" for failure in (session.ec2.boot_failures if session.ec2 else [])]
        if failures:
            raise ExpectationFailed("\n".join(failures))
    finally:
        for step in scenario.finally_steps:
            with_saved(step, ctx).run(ctx)
    return ctx
