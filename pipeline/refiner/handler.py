"""The refiner Lambda, fed by the RefinerInput SQS queue.

Each SQS record carries an EventBridge "Object Created" event for `RefinerInput/<name>`.
The handler writes two copies to `RefinerOutput/<uuid>.txt` and a manifest
`RefinerComplete/<name>.json` listing them (`["/RefinerOutput/<uuid1>.txt", ...]`).

Unlike the seed, copy ids are not fresh random UUIDs: they are derived from the bucket,
key and object version (or ETag), so a redelivered message rewrites the same two copies
instead of adding two more, and a manifest already written with the same content is not
written again (which would emit a second RefinerComplete event). Failures are reported per
record (ReportBatchItemFailures), so one bad message does not retry the whole batch.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pipeline.common import aws, config
from pipeline.common.events import S3ObjectRef, s3_object_from_eventbridge, sqs_record_body_json
from pipeline.common.idempotency import stable_uuid
from pipeline.common.logging import get_logger, log

LOG = get_logger("pipeline.refiner")
COPIES = 2


def output_keys(ref: S3ObjectRef, output_prefix: str) -> list[str]:
    """The keys of the copies for one version of one input object (stable across retries)."""
    version = ref.version_id or ref.etag or ""
    return [
        f"{output_prefix}{stable_uuid(ref.bucket, ref.key, version, n)}.txt" for n in range(1, COPIES + 1)
    ]


def manifest_key(ref: S3ObjectRef, complete_prefix: str) -> str:
    return f"{complete_prefix}{posixpath.basename(ref.key)}.json"


def _read_if_exists(bucket: str, key: str) -> bytes | None:
    s3 = aws.client("s3")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def refine(ref: S3ObjectRef) -> dict[str, Any]:
    """Copy one input object twice and write its manifest; returns what was written."""
    output_prefix = config.key_prefix("REFINER_OUTPUT_PREFIX", "/RefinerOutput/")
    complete_prefix = config.key_prefix("REFINER_COMPLETE_PREFIX", "/RefinerComplete/")
    s3 = aws.client("s3")
    get_args: dict[str, str] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        get_args["VersionId"] = ref.version_id
    body = s3.get_object(**get_args)["Body"].read()

    copies = output_keys(ref, output_prefix)
    manifest = json.dumps(["/" + key for key in copies]).encode()
    target = manifest_key(ref, complete_prefix)
    if _read_if_exists(ref.bucket, target) == manifest:
        log(LOG, "already refined; nothing to write", input=ref.key, manifest=target)
        return {"input": ref.key, "copies": copies, "manifest": target, "written": False}

    for key in copies:
        s3.put_object(Bucket=ref.bucket, Key=key, Body=body)
        log(LOG, "wrote copy", input=ref.key, output=key)
    s3.put_object(Bucket=ref.bucket, Key=target, Body=manifest, ContentType="application/json")
    log(LOG, "wrote manifest", manifest=target, contents=json.loads(manifest))
    return {"input": ref.key, "copies": copies, "manifest": target, "written": True}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            ref = s3_object_from_eventbridge(sqs_record_body_json(record))
            refine(ref)
        except Exception as exc:  # noqa: BLE001 - every failure is reported per record
            LOG.error(
                "record failed",
                extra={"fields": {"message_id": message_id, "error": f"{type(exc).__name__}: {exc}"}},
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
