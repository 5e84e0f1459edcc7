"""`harness`: the command line of the local-first pipeline harness.

    harness run [PATHS] [-k EXPR] [-n N] [--backend moto|localstack]   run scenarios (pytest)
    harness validate [PATHS]                                          check scenario files
    harness new FLOW NAME                                             write a starter scenario
    harness list [PATHS]                                              scenarios with tags
    harness up [--backend B] [--services-only]
                                    start services, apply Terraform, keep running (Ctrl-C stops)
    harness setup localstack        install LocalStack (Python 3.13 venv, DynamoDB Local)
    harness sweep                   stop processes left behind by killed runs

User mistakes (a malformed scenario, a missing binary, a taken port, a Terraform error)
print one message and exit 1 or 2; never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError, ScenarioError
from harness.paths import REPO_ROOT

SCENARIOS = REPO_ROOT / "scenarios"


def _scenario_files(paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths or [str(SCENARIOS)]:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise HarnessError(f"{raw}: no such file or directory")
    return files


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario.model import load_scenarios

    files = _scenario_files(args.paths)
    errors = 0
    for file in files:
        try:
            load_scenarios(file)
        except ScenarioError as exc:
            errors += 1
            print(exc, file=sys.stderr)
    print(f"{len(files) - errors} valid, {errors} invalid of {len(files)} scenario file(s)")
    return 1 if errors else 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.scenario.model import load_scenarios

    for file in _scenario_files(args.paths):
        shown = file.relative_to(REPO_ROOT) if file.is_relative_to(REPO_ROOT) else file
        try:
            scenarios = load_scenarios(file)
        except ScenarioError as exc:
            print(f"{shown}  INVALID: {exc.message}")
            continue
        for scenario in scenarios:
            tags = ",".join([scenario.header.flow, *scenario.header.tags])
            case = f"[{scenario.case}]" if scenario.case else ""
            print(f"{shown}  [{tags}]  {scenario.name}{case}")
    return 0


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    argv = [sys.executable, "-m", "pytest", *(args.paths or [str(SCENARIOS)])]
    if args.k:
        argv += ["-k", args.k]
    if args.n:
        argv += ["-n", str(args.n)]
    if args.backend:
        argv += ["--backend", args.backend]
    return subprocess.call([*argv, *extra], cwd=REPO_ROOT)


STARTER = """\
# yaml-language-server: $schema=../../harness/scenario/schema.json
# A scenario reads like a test plan: set the scene, act, then say what must be true.
# Every step and expectation is shown in scenarios/README.md; `harness validate` checks this file.
name: {name}
description: >
  What this scenario proves, in a sentence or two.
flow: {flow}
tags: [new]
clock: 2026-01-15T08:00:00Z        # the virtual time the scenario starts at
steps:
  # Drop an input: an inline body, or `file: <path under fixtures/>`.
  - put_object: {{bucket: data-repository, key: RefinerInput/{slug}.txt, body: "hello"}}
  # Wait until no message is in flight and no function runs (fails after the timeout).
  - await_quiet: 30s
expect:
  # Outputs under a prefix: how many, their names, their content.
  - objects: {{bucket: data-repository, prefix: RefinerOutput/, count: 2}}
  # Nothing was dead-lettered.
  - queue_empty: RefinerInput-dlq
# faults:                           # inject failures, e.g.
#   - fail_invocation: {{function: refiner, attempts: "1-2"}}
"""


def cmd_new(args: argparse.Namespace) -> int:
    import re

    from harness.scenario.model import FLOWS, load_scenarios

    if args.flow not in FLOWS:
        raise HarnessError(f"unknown flow {args.flow!r}", hint=f"choose one of: {', '.join(FLOWS)}")
    slug = re.sub(r"[^a-z0-9]+", "_", args.name.lower()).strip("_") or "scenario"
    target = SCENARIOS / args.flow / f"{slug}.yaml"
    if target.exists():
        raise HarnessError(f"{target} already exists", hint="choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    name = args.name.replace('"', "'")
    target.write_text(STARTER.format(name=name, flow=args.flow, slug=slug))
    load_scenarios(target)  # the starter must itself be valid
    print(f"wrote {target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from harness.session import HarnessSession

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # A process started from a background job inherits SIGINT ignored, so Ctrl-C would
    # never reach it (measured: the no-orphans test hung under a backgrounded `.ci/run`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    session = HarnessSession(args.backend, label="up", deploy=not args.services_only)
    with session:
        print(f"AWS_ENDPOINT_URL={session.endpoint_url}")
        for name, service in session.support.items():
            print(f"{name}: {service.endpoint.url}")
        print("running; Ctrl-C stops everything", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from harness.services.localstack_setup import ensure_localstack

    install = ensure_localstack(force=args.force)
    print(f"LocalStack ready: {install}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.services.process import sweep_stale_runs

    killed = sweep_stale_runs()
    print(f"stopped {len(killed)} leftover process group(s)" + (": " + ", ".join(killed) if killed else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="local-first harness for the AWS data pipeline"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios (extra arguments go to pytest)")
    run.add_argument("paths", nargs="*")
    run.add_argument("-k", help="only scenarios matching this pytest expression")
    run.add_argument("-n", type=int, help="parallel workers, each with its own stack")
    run.add_argument("--backend", choices=["moto", "localstack"])
    validate = sub.add_parser("validate", help="check scenario files; report every error")
    validate.add_argument("paths", nargs="*")
    listing = sub.add_parser("list", help="list scenarios with their tags")
    listing.add_argument("paths", nargs="*")
    up = sub.add_parser("up", help="start services and the stack, keep them running")
    up.add_argument("--backend", choices=["moto", "localstack"])
    up.add_argument("--services-only", action="store_true", help="start the services, skip Terraform")
    setup = sub.add_parser("setup", help="install an optional backend")
    setup.add_argument("what", choices=["localstack"])
    setup.add_argument("--force", action="store_true")
    sub.add_parser("sweep", help="stop processes left behind by killed runs")
    new = sub.add_parser("new", help="write a commented starter scenario")
    new.add_argument("flow")
    new.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handlers = {
        "validate": cmd_validate,
        "list": cmd_list,
        "up": cmd_up,
        "setup": cmd_setup,
        "sweep": cmd_sweep,
        "new": cmd_new,
    }
    try:
        if args.command == "run":
            return cmd_run(args, extra)
        return handlers[args.command](args)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `harness list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
