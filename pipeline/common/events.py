"""Parsing the AWS event shapes the handlers receive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class MalformedEvent(ValueError):
    """A message that is not the event this handler expects; retrying will not help."""


@dataclass(frozen=True)
class S3ObjectRef:
    bucket: str
    key: str
    etag: str | None
    version_id: str | None


def s3_object_from_eventbridge(event: dict[str, Any]) -> S3ObjectRef:
    """The object named by an EventBridge "Object Created" event from S3."""
    try:
        detail = event["detail"]
        obj = detail["object"]
        return S3ObjectRef(
            bucket=str(detail["bucket"]["name"]),
            key=unquote_plus(str(obj["key"])),
            etag=obj.get("etag") or obj.get("eTag"),
            version_id=obj.get("version-id"),
        )
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"not an S3 EventBridge event: missing {exc}") from exc


def sqs_record_body_json(record: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(record["body"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"message body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedEvent("message body is not a JSON object")
    return body
