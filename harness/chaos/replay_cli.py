"""`harness replay <bundle>`: re-run a failing run and say whether it fails the same way.

    harness replay .harness/runs/<run>/chaos/bundles/<plan>            # 1 replay
    harness replay <bundle> --times 5                                  # determinism check
    harness replay <bundle> --save scenarios/refiner/lost_copy.yaml    # keep as a scenario

The replay starts its own session on the bundle's backend (or --backend). It reports, per
run, pass or fail, whether the failure matches the recorded one (ids, durations and ports
masked) and whether the timeline matches (kinds and outcomes in virtual time). Exit status:
0 when every replay reproduced the recorded outcome, 1 when some did not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.chaos.bundle import load_bundle, replay, same_events, save_as_scenario


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replay", help="re-run a replay bundle; --save keeps it as a scenario")
    parser.add_argument("bundle", type=Path, help="a bundle directory (printed by a failing run)")
    parser.add_argument("--times", type=int, default=1, help="how many replays (default 1)")
    parser.add_argument("--backend", default=None, help="moto or localstack (default: the bundle's)")
    parser.add_argument("--save", type=Path, default=None, help="write the bundle's plan as a scenario file")
    parser.add_argument("--name", default=None, help="the saved scenario's name")


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        scenario, meta = load_bundle(args.bundle)
    except (FileNotFoundError, ValueError) as exc:
        print(f"harness replay: {exc}", file=sys.stderr)
        return 2
    if args.save is not None:
        target = save_as_scenario(args.bundle, args.save, args.name)
        print(f"saved {target}; it runs with the other scenarios from now on")
        return 0
    if args.times < 1:
        print("harness replay: --times is a number from 1", file=sys.stderr)
        return 2

    from harness.session import HarnessSession

    backend = args.backend or meta.get("backend")
    recorded = meta.get("signature")
    recorded_timeline = meta.get("timeline_signature")
    with HarnessSession(backend, label="replay", say=print) as session:
        outcomes = replay(session, scenario, args.times)
    same = 0
    first_timeline = outcomes[0].timeline if outcomes else []
    for outcome in outcomes:
        verdict = "passed" if outcome.passed else "failed"
        matches = recorded is not None and outcome.signature == recorded
        if matches or (recorded is None and not outcome.passed):
            same += 1
        reference = recorded_timeline if recorded_timeline is not None else first_timeline
        if outcome.timeline == reference:
            timeline_note = "same timeline"
        elif same_events(outcome.timeline, reference):
            timeline_note = "same timeline events, interleaved differently"
        else:
            timeline_note = "different timeline"
        print(
            f"replay {outcome.run}: {verdict} in {outcome.seconds:.1f}s; "
            f"{'same failure' if matches else 'different outcome'}; {timeline_note}"
        )
        if not matches and not outcome.passed:
            print("  " + outcome.signature.replace("\n", "\n  ")[:2000])
    print(f"reproduced {same} of {len(outcomes)}")
    return 0 if same == len(outcomes) else 1
