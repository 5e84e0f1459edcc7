"""The chaos building blocks that need no emulator: delivery rules, fault specs, plans, bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.chaos.bundle import failure_signature, load_bundle, save_as_scenario, timeline_signature
from harness.chaos.delivery import DeliveryFaults, DeliveryRule
from harness.chaos.invariants import chaos_flows, load_profile
from harness.chaos.plans import plans
from harness.scenario.faults.aws_fault import AwsFault
from harness.scenario.faults.fail_invocation import FailInvocation
from harness.scenario.model import load_scenario
from harness.scenario.steps.inject import Inject


def test_a_duplicate_rule_loses_the_delete_of_its_first_messages_once_each() -> None:
    faults = DeliveryFaults()
    faults.add(DeliveryRule(queue="q", action="duplicate", count=2))
    assert faults.lose_delete("q", "m1")
    assert not faults.lose_delete("q", "m1")  # its redelivery is deleted normally
    assert not faults.lose_delete("other", "m2")
    assert faults.lose_delete("q", "m2")
    assert not faults.lose_delete("q", "m3")  # count used up


def test_reorder_and_delay_rules() -> None:
    faults = DeliveryFaults()
    faults.add(DeliveryRule(queue="q", action="reorder", count=None))
    faults.add(DeliveryRule(queue="q", action="delay", count=1, delay_s=1.5))
    batch: list[dict[str, Any]] = [{"MessageId": "a"}, {"MessageId": "b"}]
    assert [m["MessageId"] for m in faults.reorder("q", batch)] == ["b", "a"]
    assert faults.reorder("q", batch[:1]) == batch[:1]  # a batch of one has no order
    assert faults.delay_for("q") == 1.5
    assert faults.delay_for("q") is None
    faults.clear()
    assert faults.reorder("q", batch) == batch


def test_inject_takes_any_fault_and_survives_revalidation() -> None:
    step = Inject.model_validate({"network": {"service": "redis", "mode": "blackhole"}})
    again = Inject.model_validate(step.model_dump())  # what filling in saved values does
    assert again.fault == {"network": {"service": "redis", "mode": "blackhole"}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"netwrok": {}}, "unknown fault `netwrok`"),
        ({"network": {"service": "mysql", "mode": "reset"}}, "network: service"),
        ({"a": {}, "b": {}}, "inject takes one fault"),
    ],
)
def test_inject_errors_name_the_problem(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Inject.model_validate(value)


def test_a_mid_work_fault_is_a_crash_or_a_timeout() -> None:
    FailInvocation.model_validate({"function": "f", "kind": "crash", "after_calls": 2})
    with pytest.raises(ValidationError, match="after_calls goes with kind crash or timeout"):
        FailInvocation.model_validate({"function": "f", "kind": "error", "after_calls": 2})


def test_aws_fault_rules_carry_over_from_localstack() -> None:
    fault = AwsFault.model_validate(
        {
            "service": "s3",
            "operation": "PutObject",
            "probability": 0.5,
            "error": {"statusCode": 503, "code": "SlowDown"},
        }
    )
    assert (fault.rule.error is not None) and fault.rule.error.status_code == 503
    assert AwsFault.model_validate({"service": "sqs", "latency": "250ms"}).rule.latency_ms == 250
    assert (
        AwsFault.model_validate({"service": "sqs", "latency": 40}).rule.latency_ms == 40
    )  # ms, as LocalStack
    with pytest.raises(ValidationError, match="no operation"):
        AwsFault.model_validate({"service": "s3", "operation": "PutObjekt"})


@pytest.mark.parametrize("flow", chaos_flows())
def test_every_drawn_plan_is_a_valid_scenario(flow: str, tmp_path: Path) -> None:
    profile = load_profile(flow)

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(plan=plans(profile))
    def valid(plan: dict[str, Any]) -> None:
        path = tmp_path / "plan.yaml"
        path.write_text(yaml.safe_dump(plan, sort_keys=False))
        scenario = load_scenario(path)
        assert scenario.header.flow == flow
        assert [e.keyword for e in scenario.expect][-1] == "invariants"
        assert "&id" not in path.read_text()  # no YAML anchors: plans are read by people

    valid()


@given(st.uuids(), st.floats(0, 999, allow_nan=False))
def test_failure_signatures_mask_what_differs_between_runs(uuid: Any, seconds: float) -> None:
    one = failure_signature(f"invocation {uuid} failed after {seconds:.2f}s on 127.0.0.1:4566")
    two = failure_signature(
        "invocation 00000000-0000-0000-0000-000000000000 failed after 1.00s on 127.0.0.1:5000"
    )
    assert one == two


def test_timeline_signature_ignores_wall_time() -> None:
    a = [{"kind": "invoke", "virtual_time": "t", "function": "f", "outcome": "success", "wall": 1.0, "ms": 3}]
    b = [{"kind": "invoke", "virtual_time": "t", "function": "f", "outcome": "success", "wall": 9.0, "ms": 7}]
    assert timeline_signature(a) == timeline_signature(b)


def test_a_bundle_is_saved_as_a_regression_scenario(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    plan = {
        "name": "chaos refiner abc",
        "flow": "refiner",
        "tags": ["chaos"],
        "steps": [{"put_object": {"bucket": "data-repository", "key": "RefinerInput/x.txt", "body": "x"}}],
        "expect": [{"invariants": "refiner"}],
    }
    (bundle / "scenario.yaml").write_text(yaml.safe_dump(plan))
    (bundle / "failure.txt").write_text("exactly one terminal place [RefinerInput/x.txt]: reached none\n")
    (bundle / "meta.json").write_text(json.dumps({"backend": "moto"}))
    target = save_as_scenario(bundle, tmp_path / "scenarios" / "refiner" / "lost.yaml", "a lost input")
    saved = load_scenario(target)
    assert saved.name == "a lost input"
    assert saved.header.tags == ["regression"]
    assert "reached none" in saved.header.description
    with pytest.raises(FileNotFoundError, match="not a replay bundle"):
        load_bundle(tmp_path)


def test_replay_cli_saves_a_bundle_and_refuses_what_is_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    assert main(["replay", str(tmp_path)]) == 2
    assert "is not a replay bundle" in capsys.readouterr().err
    bundle = tmp_path / "b"
    bundle.mkdir()
    plan = {
        "name": "x",
        "flow": "refiner",
        "steps": [{"await_quiet": "1s"}],
        "expect": [{"invariants": "refiner"}],
    }
    (bundle / "scenario.yaml").write_text(yaml.safe_dump(plan))
    target = tmp_path / "kept.yaml"
    assert main(["replay", str(bundle), "--save", str(target), "--name", "kept"]) == 0
    assert load_scenario(target).name == "kept"
    assert main(["replay", str(bundle), "--times", "0"]) == 2
