"""The event table: one item per S3 key (hash key `object_key`) saying what became of it.

The item goes PROCESSING -> PROCESSED | PROCESSED_WITH_REJECTS | FAILED. It is written with
UpdateItem rather than PutItem: a put would also erase `alert_sent_at` / `alert_version`,
the marker that keeps SQS retries of a broken file from alerting again. Attributes left
over from an earlier attempt (an old error_message, counts) are removed by each write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from pipeline.common import aws
from pipeline.ingest.schema import iso

PROCESSING = "PROCESSING"
PROCESSED = "PROCESSED"
PROCESSED_WITH_REJECTS = "PROCESSED_WITH_REJECTS"
FAILED = "FAILED"

_RESULT_FIELDS = (
    "records_total",
    "records_valid",
    "records_rejected",
    "error_message",
    "processed_at",
    "parquet_keys",
    "rejects_key",
)
MAX_ERROR = 1000
_SERIALIZER = TypeSerializer()


def dynamo_value(value: Any) -> Any:
    """DynamoDB takes Decimal, not float."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [dynamo_value(v) for v in value]
    return value


def item_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(dynamo_value(v)) for k, v in item.items()}


class EventTable:
    def __init__(self, name: str) -> None:
        self.name = name

    def mark_processing(
        self, object_key: str, *, received_at: datetime, now: datetime, location: Mapping[str, Any]
    ) -> None:
        """`location`: bucket, etag, version_id (None values are removed from the item)."""
        fields = {**location, "status": PROCESSING, "received_at": iso(received_at), "started_at": iso(now)}
        self._update(object_key, fields, remove=_RESULT_FIELDS, add={"attempts": 1})

    def mark_processed(
        self,
        object_key: str,
        *,
        now: datetime,
        total: int,
        valid: int,
        rejected: int,
        parquet_keys: Sequence[str],
        rejects_key: str | None,
    ) -> str:
        status = PROCESSED_WITH_REJECTS if rejected else PROCESSED
        fields = {
            "status": status,
            "records_total": total,
            "records_valid": valid,
            "records_rejected": rejected,
            "processed_at": iso(now),
            "parquet_keys": list(parquet_keys),
            "rejects_key": rejects_key,
        }
        self._update(object_key, fields, remove=("error_message",))
        return status

    def mark_failed(
        self, object_key: str, *, now: datetime, error: str, counts: tuple[int, int, int]
    ) -> None:
        fields = {
            "status": FAILED,
            "error_message": error[:MAX_ERROR],
            "processed_at": iso(now),
            "records_total": counts[0],
            "records_valid": counts[1],
            "records_rejected": counts[2],
        }
        self._update(object_key, fields, remove=("parquet_keys", "rejects_key"))

    def claim_alert(self, object_key: str, *, version: str, now: datetime) -> bool:
        """True for the first caller per object version; later retries get False."""
        client = aws.client("dynamodb")
        try:
            client.update_item(
                TableName=self.name,
                Key=item_attributes({"object_key": object_key}),
                UpdateExpression="SET alert_sent_at = :now, alert_version = :version",
                ConditionExpression="attribute_not_exists(alert_sent_at) OR alert_version <> :version",
                ExpressionAttributeValues=item_attributes({":now": iso(now), ":version": version}),
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_alert(self, object_key: str) -> None:
        """Undo a claim whose alert could not be sent, so that a retry sends it."""
        aws.client("dynamodb").update_item(
            TableName=self.name,
            Key=item_attributes({"object_key": object_key}),
            UpdateExpression="REMOVE alert_sent_at, alert_version",
        )

    def _update(
        self,
        object_key: str,
        fields: Mapping[str, Any],
        *,
        remove: Sequence[str] = (),
        add: Mapping[str, int] | None = None,
    ) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        removes = [name for name in remove if fields.get(name) is None]
        for name, value in fields.items():
            if value is None:
                removes.append(name)
                continue
            n = len(sets)
            names[f"#s{n}"] = name  # placeholders: `status` is a reserved word
            values[f":s{n}"] = value
            sets.append(f"#s{n} = :s{n}")
        parts = [f"SET {', '.join(sets)}"]
        if add:
            adds = []
            for n, (name, amount) in enumerate(add.items()):
                names[f"#a{n}"] = name
                values[f":a{n}"] = amount
                adds.append(f"#a{n} :a{n}")
            parts.append(f"ADD {', '.join(adds)}")
        removes = list(dict.fromkeys(removes))
        if removes:
            for n, name in enumerate(removes):
                names[f"#r{n}"] = name
            parts.append("REMOVE " + ", ".join(f"#r{n}" for n in range(len(removes))))
        aws.client("dynamodb").update_item(
            TableName=self.name,
            Key=item_attributes({"object_key": object_key}),
            UpdateExpression=" ".join(parts),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=item_attributes(values),
        )
