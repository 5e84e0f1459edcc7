"""What the harness does with each resource of the applied state, and what it does not.

Every managed resource is one of: run by the harness (compute and triggers, from the state),
bound to a local server (managed data stores), served by the emulator as data (buckets,
queues, tables, ...), or configuration with no behaviour to simulate (networking, IAM, log
groups, ...). Anything else, and any trigger of a kind the harness does not run (a DynamoDB
event-source mapping, an SNS subscription to a Lambda, an S3 notification to a Lambda), is
reported by name: a stack must never look tested where it is not.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.deploy.stack import all_resources

RUN = {
    "aws_lambda_function", "aws_lambda_event_source_mapping", "aws_cloudwatch_event_rule",
    "aws_cloudwatch_event_target", "aws_scheduler_schedule", "aws_ecs_task_definition",
    "aws_ecs_service", "aws_pipes_pipe", "aws_cloudwatch_metric_alarm", "aws_instance",
    "aws_lambda_layer_version",
}  # fmt: skip
BOUND = {"aws_db_instance", "aws_rds_cluster", "aws_mq_broker", "aws_elasticache_replication_group"}
#: The emulator holds these as data, or they configure something without behaviour of its own.
DATA_PREFIXES = (
    "aws_s3_", "aws_sqs_", "aws_sns_", "aws_dynamodb_", "aws_secretsmanager_", "aws_ssm_parameter",
    "aws_iam_", "aws_cloudwatch_log_", "aws_cloudwatch_event_bus", "aws_cloudwatch_event_archive",
    "aws_vpc", "aws_subnet", "aws_route", "aws_security_group", "aws_default_", "aws_network_acl",
    "aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_flow_log", "aws_ecr_", "aws_ecs_cluster",
    "aws_efs_", "aws_db_subnet_group", "aws_db_parameter_group", "aws_elasticache_subnet_group",
    "aws_elasticache_parameter_group", "aws_kms_", "aws_lambda_permission", "aws_scheduler_schedule_group",
    "aws_launch_template", "aws_key_pair", "aws_ebs_", "terraform_data",
)  # fmt: skip


def _unsupported_triggers(rtype: str, values: dict[str, Any]) -> list[str]:
    if rtype == "aws_lambda_event_source_mapping" and ":sqs:" not in str(values.get("event_source_arn")):
        return [f"event-source mapping from {values.get('event_source_arn')} (only SQS sources are run)"]
    if rtype == "aws_sns_topic_subscription" and values.get("protocol") not in ("sqs", "email", "email-json"):
        return [f"SNS subscription {values.get('protocol')} -> {values.get('endpoint')}"]
    if rtype == "aws_s3_bucket_notification":
        kinds = [k for k in ("lambda_function", "queue", "topic") if values.get(k)]
        return [
            f"S3 notification of {values.get('bucket')} to {kind}"
            for kind in kinds
            if kind == "lambda_function"
        ]
    return []


def unattended(show: dict[str, Any]) -> list[str]:
    """One line per resource type (with its count), or trigger, that nothing runs or binds."""
    root = (show.get("values") or {}).get("root_module") or {}
    types: Counter[str] = Counter()
    triggers: list[str] = []
    for resource in all_resources(root):
        if resource.get("mode") != "managed":
            continue
        rtype = resource["type"]
        triggers += _unsupported_triggers(rtype, resource.get("values") or {})
        if rtype in RUN or rtype in BOUND or rtype.startswith(DATA_PREFIXES):
            continue
        types[rtype] += 1
    return [f"{t} ({n})" for t, n in sorted(types.items())] + triggers
