"""Every flow with a chaos profile keeps its invariants under random fault plans."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from harness.chaos.bundle import load_bundle, replay, write_bundle
from harness.chaos.invariants import chaos_flows, load_profile
from harness.chaos.plans import plan_id, plans
from harness.errors import ExpectationFailed, HarnessError
from harness.scenario.model import load_scenario
from harness.scenario.runner import run_scenario
from harness.session import HarnessSession

SCALE = float(os.environ.get("HARNESS_CHAOS_SCALE", "1"))
CHAOS_FLOWS = chaos_flows()


def run_plan(session: HarnessSession, plan: dict[str, Any], root: Path) -> None:
    """Run one plan as a scenario; a failure leaves a replay bundle and names it."""
    flow = plan["flow"]
    path = root / "plans" / f"{flow}-{plan_id(plan)}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(plan, sort_keys=False, width=100))
    scenario = load_scenario(path)
    try:
        run_scenario(scenario, session)
    except (ExpectationFailed, HarnessError, TimeoutError) as exc:
        bundle = write_bundle(session, root / "bundles", plan["name"], path, str(exc), flow)
        raise AssertionError(
            f"{exc}\n\nreplay bundle: {bundle}\n"
            f"  replay it:   harness replay {bundle}\n"
            f"  keep it:     harness replay {bundle} --save scenarios/{flow}/<name>.yaml"
        ) from None


@pytest.mark.parametrize("flow", CHAOS_FLOWS)
def test_invariants_hold_under_random_fault_plans(
    flow: str, session: HarnessSession, record_property: Callable[[str, object], None]
) -> None:
    profile = load_profile(flow)
    assert profile is not None
    root = session.run_dir.path / "chaos"
    stats = {"flow": flow, "plans": 0, "failing": 0, "seconds": 0.0}

    @settings(
        max_examples=max(1, int(profile.budget * SCALE)),
        deadline=None,
        derandomize=bool(os.environ.get("CI")),
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(plan=plans(profile))
    def plan_holds(plan: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            run_plan(session, plan, root)
        except AssertionError:
            stats["failing"] += 1
            raise
        finally:
            stats["plans"] += 1
            stats["seconds"] += time.monotonic() - started

    try:
        plan_holds()
    finally:
        record_property("chaos_stats", stats)


def test_a_failing_plan_leaves_a_bundle_that_replays_the_same_failure(session: HarnessSession) -> None:
    """A plan that breaks the refiner's invariants on purpose: an input with a fault that
    dead-letters it, plus a stray copy nobody wrote through the flow (an orphan output)."""
    plan: dict[str, Any] = {
        "name": "chaos refiner deliberate orphan",
        "flow": "refiner",
        "tags": ["chaos"],
        "clock": "2026-01-15T08:00:00Z",
        "faults": [{"fail_invocation": {"function": "refiner", "attempts": "all", "kind": "crash"}}],
        "steps": [
            {"put_object": {"bucket": "data-repository", "key": "RefinerInput/doomed.txt", "body": "x"}},
            {"put_object": {"bucket": "data-repository", "key": "RefinerOutput/stray.txt", "body": "x"}},
            {"await_quiet": "60s"},
        ],
        "expect": [{"invariants": "refiner"}],
    }
    root = session.run_dir.path / "chaos-replay"
    with pytest.raises(AssertionError, match="listed by no manifest") as failed:
        run_plan(session, plan, root)
    bundle = Path(str(failed.value).split("replay bundle: ")[1].splitlines()[0])
    for name in (
        "scenario.yaml",
        "failure.txt",
        "timeline.jsonl",
        "requests.jsonl",
        "state.json",
        "meta.json",
    ):
        assert (bundle / name).is_file(), name
    scenario, meta = load_bundle(bundle)
    assert "RefinerOutput/stray.txt" in json.dumps(json.loads((bundle / "state.json").read_text()))
    outcomes = replay(session, scenario, 3)
    assert [o.passed for o in outcomes] == [False, False, False]
    assert {o.signature for o in outcomes} == {meta["signature"]}
    # The timeline is compared and reported (`harness replay`), not asserted: pollers and
    # steps run concurrently, so events may interleave, and batch sizes may differ.
    assert all(o.timeline for o in outcomes)
