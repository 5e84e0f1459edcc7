"""Random fault plans, drawn by hypothesis, written as ordinary scenario documents.

A flow opts in with a `CHAOS = ChaosProfile(...)` next to its invariants
(`scenarios/<flow>/invariants.py`): how to drop an input, how to drive the flow to its end,
and which faults make sense for it (its functions, queues, AWS operations, services). A plan
is a scenario dict: inputs, faults from the start (`faults:`) or injected mid-run
(`inject:`), the drive steps, and `expect: [invariants: <flow>]`. Because a plan is a
scenario, a failing one is replayed, shrunk and saved as a regression test with no
translation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

Step = dict[str, Any]

#: AWS errors a plan may draw: throttling and 5xx are retried by botocore, AccessDenied is not.
AWS_ERRORS: list[dict[str, Any]] = [
    {"statusCode": 503, "code": "ServiceUnavailable"},
    {"statusCode": 500, "code": "InternalError"},
    {"statusCode": 400, "code": "ThrottlingException"},
    {"statusCode": 403, "code": "AccessDenied"},
]


@dataclass(frozen=True)
class ChaosProfile:
    flow: str
    clock: str
    #: the steps that drop input number i with the drawn body
    input_steps: Callable[[int, str], list[Step]]
    #: input bodies to draw from (good ones and the flow's kinds of bad ones)
    bodies: tuple[str, ...]
    #: the steps that drive everything to its end once inputs are in
    drive: tuple[Step, ...] = ({"await_quiet": "90s"},)
    functions: tuple[str, ...] = ()
    #: the most AWS calls one invocation makes (for crashes mid-work)
    max_calls: int = 3
    #: (service, operation) pairs the flow's compute calls
    aws_calls: tuple[tuple[str, str], ...] = ()
    #: which matching calls fail, and how (narrow these for a flow whose failed work waits
    #: out a long visibility timeout: "1-2" of 503 is absorbed by botocore's retries)
    aws_call_ranges: tuple[str, ...] = ("1", "2", "1-2", "1-3")
    aws_errors: tuple[dict[str, Any], ...] = tuple(AWS_ERRORS)
    #: queues with a Lambda trigger (delivery faults)
    queues: tuple[str, ...] = ()
    #: support services reached through the TCP fault proxy
    network: tuple[str, ...] = ()
    #: steps a plan may insert mid-run (service restarts, task kills): each with where it
    #: goes, None = just before a drawn input, i = right after drive step i
    disruptions: tuple[tuple[int | None, tuple[Step, ...]], ...] = ()
    max_inputs: int = 4
    max_faults: int = 3
    #: plans per CI run (`make chaos` multiplies it)
    budget: int = 50
    notes: dict[str, str] = field(default_factory=dict)


def _attempts() -> st.SearchStrategy[str]:
    return st.sampled_from(["1", "2", "1-2", "1-3", "2-3", "all"])


def _fault(profile: ChaosProfile) -> st.SearchStrategy[Step]:
    options: list[st.SearchStrategy[Step]] = []
    if profile.functions:
        options.append(
            st.builds(
                lambda fn, attempts, kind, after: {
                    "fail_invocation": {
                        "function": fn,
                        "attempts": attempts,
                        "kind": kind,
                        **({"after_calls": after} if after and kind != "error" else {}),
                    }
                },
                st.sampled_from(profile.functions),
                _attempts(),
                st.sampled_from(["error", "timeout", "crash"]),
                st.one_of(st.none(), st.integers(1, profile.max_calls)),
            )
        )
    if profile.aws_calls:
        options.append(
            st.builds(
                lambda call, calls, error: {
                    "aws_fault": {"service": call[0], "operation": call[1], "calls": calls, "error": error}
                },
                st.sampled_from(profile.aws_calls),
                st.sampled_from(profile.aws_call_ranges),
                st.sampled_from(profile.aws_errors),
            )
        )
        options.append(
            st.builds(
                lambda call, latency: {
                    "aws_fault": {"service": call[0], "operation": call[1], "latency": latency}
                },
                st.sampled_from(profile.aws_calls),
                st.sampled_from([50, 200]),
            )
        )
    if profile.queues:
        options.append(
            st.builds(
                lambda queue, action, count: {
                    "delivery": {"queue": queue, "action": action, "count": count, "delay": "1s"}
                },
                st.sampled_from(profile.queues),
                st.sampled_from(["duplicate", "reorder", "delay"]),
                st.integers(1, 3),
            )
        )
    if profile.network:
        options.append(
            st.builds(
                lambda service, mode: {"network": {"service": service, "mode": mode, "latency": "150ms"}},
                st.sampled_from(profile.network),
                st.sampled_from(["latency", "reset_once", "blackhole", "reset"]),
            )
        )
    return st.one_of(options)


def _is_transient(fault: Step) -> bool:
    """Faults that must be lifted again for the flow to be able to finish at all."""
    spec = fault.get("network") or {}
    return bool(spec) and spec.get("mode") in ("blackhole", "reset")


@st.composite
def plans(draw: st.DrawFn, profile: ChaosProfile) -> dict[str, Any]:
    """One fault plan for the flow, as a scenario document."""
    count = draw(st.integers(1, profile.max_inputs))
    bodies = [draw(st.sampled_from(profile.bodies)) for _ in range(count)]
    faults = draw(st.lists(_fault(profile), max_size=profile.max_faults))
    # Each fault starts before the first input (0) or just before input k.
    starts = [draw(st.integers(0, count - 1)) for _ in faults]
    disruption = (
        draw(st.one_of(st.none(), st.sampled_from(profile.disruptions))) if profile.disruptions else None
    )
    disrupt_at = -1
    if disruption is not None and disruption[0] is None:
        disrupt_at = draw(st.integers(0, count - 1))

    early = {
        i for i, (f, at) in enumerate(zip(faults, starts, strict=True)) if at == 0 and not _is_transient(f)
    }
    up_front = [faults[i] for i in sorted(early)]
    steps: list[Step] = []
    transient = False
    for index, body in enumerate(bodies):
        for number, (fault, at) in enumerate(zip(faults, starts, strict=True)):
            if number in early:
                continue
            if at == index:
                steps.append({"inject": fault})
                transient = transient or _is_transient(fault)
        if index == disrupt_at and disruption is not None:
            steps.extend(disruption[1])
        steps.extend(profile.input_steps(index, body))
    if transient:
        steps.append({"wait": "1s"})
        steps.append({"clear_faults": "network"})
    for number, drive_step in enumerate(profile.drive):
        steps.append(drive_step)
        if disruption is not None and disruption[0] == number:
            steps.extend(disruption[1])
    plan: dict[str, Any] = {
        "name": "",
        "description": "A random fault plan drawn by the chaos test; the flow's invariants must hold.",
        "flow": profile.flow,
        "tags": ["chaos"],
        "clock": profile.clock,
        "seed": draw(st.integers(0, 2**16)),
        "faults": up_front,
        "steps": steps,
        "expect": [{"invariants": profile.flow}],
    }
    plan = json.loads(json.dumps(plan))  # no shared objects: they would dump as YAML anchors
    plan["name"] = f"chaos {profile.flow} {plan_id(plan)}"
    return plan


def plan_id(plan: dict[str, Any]) -> str:
    """A short stable id of a plan's content (its name excluded)."""
    content = json.dumps({k: v for k, v in plan.items() if k != "name"}, sort_keys=True, default=str)
    return hashlib.sha256(content.encode()).hexdigest()[:10]
