"""The post-process Lambda: record each finished broker job and announce it once.

How it is triggered (the seed's TODO): the output bucket sends its notifications to
EventBridge; a rule on the default bus matches `Object Created` for the output bucket and the
OUTPUT_PREFIX key prefix and targets an SQS queue (with a DLQ); an SQS event-source mapping
with ReportBatchItemFailures invokes this handler. The queue decouples the Lambda from
bursts and keeps failed events (retried, then moved to the DLQ) instead of losing them.

Settings: OUTPUT_BUCKET, OUTPUT_PREFIX (`results/`), COMPLETIONS_TABLE, NOTIFY_TOPIC_ARN.

For each record: read the output object (metadata `job-id`, `source-etag`; body
`stats.record_count`), then put a completion item in COMPLETIONS_TABLE (hash key `job_id`)
only if none exists. The first put publishes an SNS notification and marks the item
`notified_at`; a duplicate event finds the item and changes nothing. Should the publish fail
after the put, the retried event finds the item without `notified_at` and publishes then, so
every completion is announced at least once.

A missing object, an object without `job-id` metadata or a malformed event is an item
failure (retried by SQS, then dead-lettered); keys outside OUTPUT_PREFIX or not ending in
`.json` are ignored: no worker wrote them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.broker import now_iso
from pipeline.common import aws, config
from pipeline.common.events import (
    MalformedEvent,
    S3ObjectRef,
    s3_object_from_eventbridge,
    sqs_record_body_json,
)
from pipeline.common.logging import get_logger, log

LOG = get_logger("pipeline.broker.postprocess")
SUBJECT = "broker job completed"
OUTPUT_SUFFIX = ".json"


@dataclass(frozen=True)
class PostprocessSettings:
    output_bucket: str
    output_prefix: str
    table: str
    topic_arn: str


@dataclass(frozen=True)
class Completion:
    job_id: str
    output_key: str
    output_etag: str
    input_key: str
    record_count: int


def load_settings() -> PostprocessSettings:
    return PostprocessSettings(
        output_bucket=config.required("OUTPUT_BUCKET"),
        output_prefix=config.key_prefix("OUTPUT_PREFIX", "results/"),
        table=config.required("COMPLETIONS_TABLE"),
        topic_arn=config.required("NOTIFY_TOPIC_ARN"),
    )


def is_worker_output(key: str, prefix: str) -> bool:
    return (
        key.startswith(prefix) and key.endswith(OUTPUT_SUFFIX) and len(key) > len(prefix) + len(OUTPUT_SUFFIX)
    )


def input_key_for(output_key: str, prefix: str) -> str:
    """`results/incoming/a.csv.json` -> `incoming/a.csv` (the worker's naming, reversed)."""
    return output_key[len(prefix) : -len(OUTPUT_SUFFIX)]


def read_completion(ref: S3ObjectRef, prefix: str) -> Completion:
    s3 = aws.client("s3")
    try:
        response = s3.get_object(Bucket=ref.bucket, Key=ref.key)
    except s3.exceptions.NoSuchKey as exc:
        raise MalformedEvent(f"output s3://{ref.bucket}/{ref.key} does not exist") from exc
    # One GetObject gives metadata and body of the same version (a HEAD first could race a rewrite).
    job_id = response.get("Metadata", {}).get("job-id")
    if not job_id:
        raise MalformedEvent(f"output {ref.key} has no job-id metadata; not written by the worker")
    try:
        document = json.loads(response["Body"].read())
        record_count = int(document["stats"]["record_count"])
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedEvent(f"output {ref.key} is not a worker result: {exc}") from exc
    return Completion(
        job_id=str(job_id),
        output_key=ref.key,
        output_etag=str(response.get("ETag", "")).strip('"'),
        input_key=input_key_for(ref.key, prefix),
        record_count=record_count,
    )


def _conditional_check_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def record_completion(settings: PostprocessSettings, completion: Completion) -> bool:
    """Puts the completion item; True the first time, False when it already exists."""
    item = {
        "job_id": {"S": completion.job_id},
        "output_key": {"S": completion.output_key},
        "output_etag": {"S": completion.output_etag},
        "input_key": {"S": completion.input_key},
        "record_count": {"N": str(completion.record_count)},
        "status": {"S": "COMPLETED"},
        "completed_at": {"S": now_iso()},
    }
    try:
        aws.client("dynamodb").put_item(
            TableName=settings.table, Item=item, ConditionExpression="attribute_not_exists(job_id)"
        )
    except ClientError as exc:
        if _conditional_check_failed(exc):
            return False
        raise
    return True


def already_notified(settings: PostprocessSettings, job_id: str) -> bool:
    response = aws.client("dynamodb").get_item(
        TableName=settings.table,
        Key={"job_id": {"S": job_id}},
        ProjectionExpression="notified_at",
        ConsistentRead=True,
    )
    return "notified_at" in response.get("Item", {})


def notify(settings: PostprocessSettings, completion: Completion) -> None:
    message = {
        "job_id": completion.job_id,
        "input_key": completion.input_key,
        "output_key": completion.output_key,
        "record_count": completion.record_count,
    }
    aws.client("sns").publish(
        TopicArn=settings.topic_arn, Subject=SUBJECT, Message=json.dumps(message, sort_keys=True)
    )
    aws.client("dynamodb").update_item(
        TableName=settings.table,
        Key={"job_id": {"S": completion.job_id}},
        UpdateExpression="SET notified_at = :at",
        ExpressionAttributeValues={":at": {"S": now_iso()}},
    )


def complete(settings: PostprocessSettings, ref: S3ObjectRef) -> str:
    """Handles one output object; returns what happened (for the log)."""
    if ref.bucket != settings.output_bucket:
        raise MalformedEvent(f"event for bucket {ref.bucket!r}, expected {settings.output_bucket!r}")
    if not is_worker_output(ref.key, settings.output_prefix):
        return "ignored"
    completion = read_completion(ref, settings.output_prefix)
    if record_completion(settings, completion):
        notify(settings, completion)
        outcome = "recorded"
    elif not already_notified(settings, completion.job_id):
        notify(settings, completion)  # the first attempt recorded it but failed to announce it
        outcome = "notified late"
    else:
        outcome = "duplicate"
    log(LOG, "completion", job_id=completion.job_id, output_key=ref.key, outcome=outcome)
    return outcome


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            ref = s3_object_from_eventbridge(sqs_record_body_json(record))
            if complete(settings, ref) == "ignored":
                log(LOG, "not a worker output; ignored", key=ref.key, message_id=message_id)
        except Exception as exc:  # noqa: BLE001 - every failure is reported per record
            LOG.error(
                "record failed",
                extra={"fields": {"message_id": message_id, "error": f"{type(exc).__name__}: {exc}"}},
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
