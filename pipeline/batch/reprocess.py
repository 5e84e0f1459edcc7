"""Start the batch task for one day with a RUN_DATE override (seed 001's reprocess script).

    python -m pipeline.batch.reprocess YYYY-MM-DD [--cluster C] [--task-definition T]
        [--subnet S ...] [--security-group G ...] [--assign-public-ip] [--container processor]

Calls `ecs.run_task` (launch type FARGATE, awsvpc networking) with a container override that
sets RUN_DATE on the container `processor`, and prints the ARN of the started task. Options
default to the environment: ECS_CLUSTER, TASK_DEFINITION, SUBNET_IDS and SECURITY_GROUP_IDS
(comma-separated). Exit status: 0 started, 1 AWS error or task not started, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.batch.processor import SettingError, parse_run_date
from pipeline.common import aws

PROG = "batch-reprocess"


def _from_env(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("run_date", metavar="YYYY-MM-DD", help="the day to reprocess")
    parser.add_argument("--cluster", default=os.environ.get("ECS_CLUSTER"))
    parser.add_argument("--task-definition", default=os.environ.get("TASK_DEFINITION"))
    parser.add_argument("--subnet", action="append", dest="subnets", help="repeatable (env SUBNET_IDS)")
    parser.add_argument(
        "--security-group",
        action="append",
        dest="security_groups",
        help="repeatable (env SECURITY_GROUP_IDS)",
    )
    parser.add_argument("--assign-public-ip", action="store_true", help="give the task a public IP")
    parser.add_argument("--container", default="processor", help="the container to override")
    args = parser.parse_args(argv)
    args.subnets = args.subnets or _from_env("SUBNET_IDS")
    args.security_groups = args.security_groups or _from_env("SECURITY_GROUP_IDS")
    return args


def check_args(args: argparse.Namespace) -> date:
    """The day to reprocess; SettingError when it or a required option is missing or invalid."""
    day = parse_run_date(args.run_date)
    missing = [
        option
        for option, value in (
            ("--cluster (or ECS_CLUSTER)", args.cluster),
            ("--task-definition (or TASK_DEFINITION)", args.task_definition),
            ("--subnet (or SUBNET_IDS)", args.subnets),
        )
        if not value
    ]
    if missing:
        raise SettingError(f"missing {', '.join(missing)}")
    return day


def run_task_request(args: argparse.Namespace, day: date) -> dict[str, Any]:
    """The `ecs.run_task` arguments that start the processor for `day`."""
    network: dict[str, Any] = {
        "subnets": list(args.subnets),
        "assignPublicIp": "ENABLED" if args.assign_public_ip else "DISABLED",
    }
    if args.security_groups:
        network["securityGroups"] = list(args.security_groups)
    return {
        "cluster": args.cluster,
        "taskDefinition": args.task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": f"reprocess-{day.isoformat()}",
        "networkConfiguration": {"awsvpcConfiguration": network},
        "overrides": {
            "containerOverrides": [
                {"name": args.container, "environment": [{"name": "RUN_DATE", "value": day.isoformat()}]}
            ]
        },
    }


def start_task(request: dict[str, Any]) -> str:
    """Starts the task; returns its ARN, or raises RuntimeError with ECS's reason."""
    response = aws.client("ecs").run_task(**request)
    tasks = response.get("tasks") or []
    if not tasks:
        reasons = "; ".join(
            f"{failure.get('arn', '?')}: {failure.get('reason', 'unknown')}"
            for failure in response.get("failures") or []
        )
        raise RuntimeError(f"no task started ({reasons or 'no reason given'})")
    return str(tasks[0]["taskArn"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        day = check_args(args)
    except SettingError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        arn = start_task(run_task_request(args, day))
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        print(f"{PROG}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
