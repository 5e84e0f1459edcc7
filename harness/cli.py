"""`harness`: the command line of the local-first pipeline harness.

    harness run [PATHS] [-k EXPR] [-n N] [--backend moto|localstack]   run scenarios (pytest)
    harness validate [PATHS]                                          check scenario files
    harness new FLOW NAME                                             write a starter scenario
    harness list [PATHS]                                              scenarios with tags
    harness up [--backend B] [--services-only]
                                    start services, apply Terraform, keep running (Ctrl-C stops)
    harness setup localstack        install LocalStack (Python 3.13 venv, DynamoDB Local)
    harness sweep                   stop processes left behind by killed runs
    harness dlq list|show Q|redrive Q [--to Q] [--limit N]
                                    the running stack's dead-letter queues (see `harness up`)
    harness replay BUNDLE [--times N] [--save PATH]
                                    re-run a failed run's replay bundle; keep it as a scenario

User mistakes (a malformed scenario, a missing binary, a taken port, a Terraform error)
print one message and exit 1 or 2; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.chaos import replay_cli
from harness.errors import HarnessError, ScenarioError
from harness.paths import REPO_ROOT
from harness.services.process import pid_alive

if TYPE_CHECKING:
    from harness.deploy.stack import Stack

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
        record = session.run_dir.path / UP_RECORD
        write_up_record(
            record,
            endpoint_url=session.endpoint_url,
            backend=session.backend,
            terraform_state=session.run_dir.path / TERRAFORM_STATE if session.want_deploy else None,
        )
        try:
            print(f"AWS_ENDPOINT_URL={session.endpoint_url}")
            for name, service in session.support.items():
                print(f"{name}: {masked(service.endpoint.url)}")
            for binding in session.bindings:
                print(f"bound: {binding.describe()}")
            print("running; Ctrl-C stops everything", flush=True)
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            record.unlink(missing_ok=True)
    return 0


def masked(url: str) -> str:
    """A URL with its password replaced: a bound store's credentials are the stack's secrets."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# -- the running stack (`harness up`) -------------------------------------------------------

#: What `harness up` writes into its run directory once the stack is up (removed on exit).
UP_RECORD = "up.json"
#: Where a session's Terraform state lives in its run directory (HarnessSession._deploy).
TERRAFORM_STATE = Path("terraform") / "terraform.tfstate"
REGION = "us-east-1"


class NoRunningStack(HarnessError):
    """No stack to talk to: `harness dlq` exits 2 with this one line."""


def write_up_record(path: Path, *, endpoint_url: str, backend: str, terraform_state: Path | None) -> None:
    data = {
        "pid": os.getpid(),
        "backend": backend,
        "endpoint_url": endpoint_url,
        "region": REGION,
        "run_dir": str(path.parent),
        "terraform_state": str(terraform_state) if terraform_state else None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


@dataclass(frozen=True)
class RunningStack:
    """Where the stack of a running harness is: its emulator, and its Terraform state if any."""

    endpoint_url: str
    backend: str | None = None
    run_dir: Path | None = None
    state_path: Path | None = None
    region: str = REGION

    def client(self, service: str) -> Any:
        return _client(service, self.endpoint_url, self.region)

    def answers(self) -> bool:
        """Whether something listens at the endpoint (refused at once, not after retries)."""
        import socket
        import urllib.parse

        parts = urllib.parse.urlsplit(self.endpoint_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False


@functools.cache
def _client(service: str, endpoint_url: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2}),
    )


def _owner_alive(run_dir: Path) -> bool:
    try:
        return pid_alive(int((run_dir / "owner.pid").read_text()))
    except (OSError, ValueError):
        return False


def _emulator_from_pids(run_dir: Path) -> tuple[str, str] | None:
    """(endpoint, backend) of the emulator a run started, from its process records."""
    for record in sorted((run_dir / "pids").glob("*.json")):
        if record.stem == "moto":
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                argv = json.loads(record.read_text())["argv"]
                return f"http://127.0.0.1:{int(argv[argv.index('-p') + 1])}", "moto"
        elif record.stem.startswith("localstack-") and record.stem.removeprefix("localstack-").isdigit():
            return f"http://127.0.0.1:{record.stem.removeprefix('localstack-')}", "localstack"
    return None


def stack_of_run(run_dir: Path) -> RunningStack:
    """The stack of one run directory: from its `up.json`, else from its process records."""
    if not run_dir.is_dir():
        raise NoRunningStack(f"no running stack: {run_dir} is not a run directory")
    if not _owner_alive(run_dir):
        raise NoRunningStack(
            f"no running stack: the harness that owned {run_dir} has exited; start one with `harness up`"
        )
    state = run_dir / TERRAFORM_STATE
    try:
        data = json.loads((run_dir / UP_RECORD).read_text())
    except (OSError, ValueError):
        found = _emulator_from_pids(run_dir)
        if found is None:
            raise NoRunningStack(
                f"no running stack: {run_dir} records no emulator yet (is `harness up` still starting?)"
            ) from None
        return RunningStack(found[0], found[1], run_dir, state if state.is_file() else None)
    state_path = Path(data["terraform_state"]) if data.get("terraform_state") else None
    return RunningStack(
        str(data["endpoint_url"]),
        data.get("backend"),
        run_dir,
        state_path if state_path and state_path.is_file() else None,
        str(data.get("region") or REGION),
    )


def live_up_runs() -> list[Path]:
    """Run directories of `harness up` whose owner still runs, newest first."""
    from harness.paths import runs_root

    runs = sorted((p for p in runs_root().glob("*-up-*") if p.is_dir()), reverse=True)
    return [run for run in runs if _owner_alive(run)]


def find_running_stack(
    run_dir: Path | None = None, endpoint: str | None = None, backend: str | None = None
) -> RunningStack:
    """`--run-dir`, else the newest live `harness up`; `--endpoint` names the emulator instead."""
    if run_dir is not None:
        found = stack_of_run(run_dir)
        if endpoint:
            return replace(found, endpoint_url=endpoint, backend=backend)
        return replace(found, backend=backend or found.backend)
    runs = live_up_runs()
    if endpoint:  # the `harness up` serving that emulator knows the Terraform state
        for run in runs:
            with contextlib.suppress(NoRunningStack):
                found = stack_of_run(run)
                if found.endpoint_url.rstrip("/") == endpoint.rstrip("/"):
                    return replace(found, backend=backend or found.backend)
        return RunningStack(endpoint, backend)
    if not runs:
        raise NoRunningStack(
            "no running stack: start one with `harness up` (or pass --run-dir PATH or --endpoint URL)"
        )
    found = stack_of_run(runs[0])
    return replace(found, backend=backend or found.backend)


def stack_from_state(path: Path) -> Stack:
    """The stack in a Terraform state file, read directly (no `terraform show`, no binary)."""
    from harness.deploy.stack import stack_from_show_json

    state = json.loads(path.read_text())
    resources: list[dict[str, Any]] = []
    for resource in state.get("resources") or []:
        if resource.get("mode") != "managed":
            continue
        address = ".".join(filter(None, [resource.get("module"), f"{resource['type']}.{resource['name']}"]))
        for instance in resource.get("instances") or []:
            key = instance.get("index_key")
            resources.append(
                {
                    "address": address + (f"[{json.dumps(key)}]" if key is not None else ""),
                    "mode": "managed",
                    "type": resource["type"],
                    "values": instance.get("attributes") or {},
                }
            )
    outputs = {name: {"value": o.get("value")} for name, o in (state.get("outputs") or {}).items()}
    return stack_from_show_json({"values": {"outputs": outputs, "root_module": {"resources": resources}}})


# -- harness dlq ----------------------------------------------------------------------------


def _print_table(headers: list[str], rows: list[list[str]], caption: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        for line in [headers, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        print(caption)
        return
    table = Table(caption=caption, caption_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if i in (1, 2) else "left", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    # Piped output has no width to fit: print the table at its natural width, never truncated.
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=1000)
    console.print(table)


def _timestamp(value: Any) -> str:
    text = str(value or "")
    if not text.isdigit():
        return text
    return datetime.fromtimestamp(int(text) / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _plain_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as {name: value} (binary as base64), for display and JSON."""
    import base64

    plain: dict[str, Any] = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        if not isinstance(attr, dict):
            plain[name] = attr
        elif "StringValue" in attr:
            plain[name] = attr["StringValue"]
        elif "BinaryValue" in attr:
            data = attr["BinaryValue"]
            plain[name] = base64.b64encode(data).decode() if isinstance(data, bytes | bytearray) else data
        else:
            plain[name] = attr
    return plain


def _message_json(message: dict[str, Any]) -> dict[str, Any]:
    body = message.get("Body")
    parsed: Any = None
    with contextlib.suppress(TypeError, ValueError):
        parsed = json.loads(body) if isinstance(body, str) else None
    return {
        "MessageId": message.get("MessageId"),
        "Body": body,
        **({"BodyJson": parsed} if parsed is not None else {}),
        "Attributes": dict(message.get("Attributes") or {}),
        "MessageAttributes": _plain_attributes(message),
    }


def _print_message(index: int, message: dict[str, Any]) -> None:
    attrs = dict(message.get("Attributes") or {})
    receives = attrs.pop("ApproximateReceiveCount", "?")
    sent = _timestamp(attrs.pop("SentTimestamp", ""))
    in_flight = "  (in flight)" if message.get("Visible") is False else ""
    print(f"[{index}] {message.get('MessageId')}  receive count {receives}  sent {sent}{in_flight}")
    if "ApproximateFirstReceiveTimestamp" in attrs:
        attrs["ApproximateFirstReceiveTimestamp"] = _timestamp(attrs["ApproximateFirstReceiveTimestamp"])
    if attrs:
        print("    attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())))
    for name, value in sorted(_plain_attributes(message).items()):
        kind = ((message.get("MessageAttributes") or {}).get(name) or {}).get("DataType", "")
        print(f"    message attribute {name} ({kind}): {value}")
    body = message.get("Body") or ""
    try:
        shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        shown = body
    print("    body:")
    for line in shown.splitlines() or [""]:
        print(f"      {line}")


def _dlq_list(args: argparse.Namespace, running: RunningStack, stack: Stack, sqs: Any) -> int:
    from harness.runtime import dlq as dlqs

    infos = dlqs.dead_letter_queues(stack, sqs)
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    where = f"{running.endpoint_url} ({running.backend or 'emulator'})"
    if not infos:
        print(f"no dead-letter queues among the {len(stack.queues)} queue(s) of the stack at {where}")
        return 0
    rows = [
        [
            info.name,
            str(info.visible) if info.present else "missing",
            str(info.not_visible) if info.present else "-",
            ", ".join(
                f"{s.name} ({s.redrive.max_receive_count})" if s.redrive else s.name for s in info.sources
            ),
        ]
        for info in infos
    ]
    origin = "Terraform state" if running.state_path else "the emulator's queues"
    _print_table(
        ["dead-letter queue", "messages", "not visible", "source queue(s) (maxReceiveCount)"],
        rows,
        f"{where}; queues from {origin}",
    )
    return 0


def _dlq_show(args: argparse.Namespace, running: RunningStack, stack: Stack, sqs: Any) -> int:
    from harness.runtime import dlq as dlqs

    queue = dlqs.resolve_queue(stack, args.queue)
    messages = dlqs.peek(sqs, queue.url, args.limit, backend=running.backend)
    if args.json:
        print(json.dumps([_message_json(m) for m in messages], indent=2, ensure_ascii=False))
        return 0
    counts = dlqs.queue_counts(sqs, queue.url)
    visible, hidden = counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]
    sources = ", ".join(s.name for s in dlqs.sources_of(stack, queue))
    print(
        f"{queue.name}: {visible} message(s), {hidden} not visible; showing {len(messages)}"
        + (f" (dead-letter queue of {sources})" if sources else "")
    )
    for index, message in enumerate(messages, 1):
        _print_message(index, message)
    return 0


def _dlq_redrive(args: argparse.Namespace, running: RunningStack, stack: Stack, sqs: Any) -> int:
    from harness.runtime import dlq as dlqs

    queue = dlqs.resolve_queue(stack, args.queue)
    to = dlqs.resolve_queue(stack, args.to) if args.to else None
    target = dlqs.redrive_target(stack, queue, to, option="--to QUEUE")
    # Without --limit, what is on the DLQ now: messages that fail again meanwhile stay there.
    limit = args.limit or dlqs.queue_counts(sqs, queue.url)["ApproximateNumberOfMessages"]
    moved = [0]

    def count(_: dict[str, Any]) -> None:
        moved[0] += 1

    try:
        if limit:
            dlqs.redrive(sqs, stack, queue, target, limit, on_moved=count)
    except KeyboardInterrupt:
        print(
            f"harness: interrupted after moving {moved[0]} message(s) from {queue.name} to {target.name}; "
            f"a message being moved may show up on both after {dlqs.MOVE_VISIBILITY}s, none is lost",
            file=sys.stderr,
        )
        return 130
    left = dlqs.queue_counts(sqs, queue.url)["ApproximateNumberOfMessages"]
    print(f"moved {moved[0]} message(s) from {queue.name} to {target.name}; {left} left on {queue.name}")
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    try:
        running = find_running_stack(args.run_dir, args.endpoint, args.backend)
        if not running.answers():
            raise NoRunningStack(
                f"no running stack: the emulator at {running.endpoint_url} does not answer "
                "(has `harness up` stopped?)"
            )
        sqs = running.client("sqs")
        stack = stack_from_state(running.state_path) if running.state_path else None
        if stack is None or not stack.queues:
            from harness.runtime.dlq import stack_from_emulator

            stack = stack_from_emulator(sqs)
            running = replace(running, state_path=None)
        action = {"list": _dlq_list, "show": _dlq_show, "redrive": _dlq_redrive}[args.dlq_command]
        return action(args, running, stack, sqs)
    except NoRunningStack as exc:
        print(f"harness: {exc.message}", file=sys.stderr)
        return 2
    except (BotoConnectionError, HTTPClientError) as exc:
        print(f"harness: no running stack: the emulator stopped answering ({exc})", file=sys.stderr)
        return 2
    except ClientError as exc:
        raise HarnessError(f"the emulator refused: {exc}") from None


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
    _add_dlq_parser(sub)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _add_dlq_parser(sub: Any) -> None:
    where = argparse.ArgumentParser(add_help=False)
    found = where.add_argument_group("which stack (default: the newest running `harness up`)")
    found.add_argument("--run-dir", type=Path, metavar="PATH", help="a run directory under .harness/runs/")
    found.add_argument(
        "--endpoint", metavar="URL", help="the AWS emulator's URL (e.g. http://127.0.0.1:4566)"
    )
    found.add_argument("--backend", choices=["moto", "localstack"], help="the emulator behind --endpoint")
    dlq = sub.add_parser(
        "dlq",
        help="list, show and redrive the dead-letter queues of the running stack",
        description="Dead-letter queues of the stack `harness up` keeps running. QUEUE is a queue's "
        "name or a unique suffix of it (RefinerInput-dlq).",
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="{list,show,redrive}")
    listing = actions.add_parser(
        "list", parents=[where], help="every DLQ with its depth and its source queue(s)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", parents=[where], help="a queue's messages, without consuming them")
    show.add_argument("queue", metavar="QUEUE")
    show.add_argument("--limit", type=_positive, metavar="N", help="at most N messages (oldest first)")
    show.add_argument("--json", action="store_true", help="print the messages as JSON")
    redrive = actions.add_parser(
        "redrive",
        parents=[where],
        help="move a DLQ's messages back to its source queue (or --to), each sent then deleted",
    )
    redrive.add_argument("queue", metavar="QUEUE")
    redrive.add_argument("--to", metavar="QUEUE", help="move them here instead of the source queue")
    redrive.add_argument(
        "--limit", type=_positive, metavar="N", help="at most N (default: what the DLQ holds now)"
    )
    replay_cli.add_parser(sub)


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
        "dlq": cmd_dlq,
        "replay": replay_cli.cmd_replay,
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
