"""SQS event-source mappings, run by the harness as Lambda's poller would.

Per mapping from the Terraform state: receive up to `batch_size` messages, invoke the
function with the SQS event shape AWS documents, delete what succeeded, and leave what
failed for the queue's own redrive policy: the emulator's ApproximateReceiveCount decides
when a message moves to the DLQ, exactly as in AWS. With `ReportBatchItemFailures`, only
the reported items fail; otherwise an error fails the whole batch.

A failed message would normally stay invisible for the queue's visibility timeout. The
harness makes it visible at once and records on the virtual clock that the timeout passed,
so five retries cost milliseconds, not 75 minutes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from harness.chaos.delivery import DeliveryFaults
from harness.deploy.stack import EventSourceMapping, Queue
from harness.runtime.lambda_runtime import Invocation, LambdaRuntime
from harness.runtime.poller import QueuePoller


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    records = []
    for m in messages:
        attrs = m.get("Attributes", {})
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attrs.get("SentTimestamp", ""),
                    "SenderId": attrs.get("SenderId", ""),
                    "ApproximateFirstReceiveTimestamp": attrs.get("ApproximateFirstReceiveTimestamp", ""),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType"),
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(invocation: Invocation, mapping: EventSourceMapping, ids: list[str]) -> list[str]:
    """Which messages of the batch failed, by Lambda's rules for SQS batches."""
    if not invocation.ok:
        return ids
    if not mapping.report_batch_item_failures:
        return []
    result = invocation.result
    if result is None or (isinstance(result, dict) and not result.get("batchItemFailures")):
        return []
    if not isinstance(result, dict) or not isinstance(result.get("batchItemFailures"), list):
        return ids  # a malformed response fails the whole batch
    failed: list[str] = []
    for item in result["batchItemFailures"]:
        item_id = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not item_id or item_id not in ids:
            return ids  # an empty or unknown identifier fails the whole batch
        failed.append(str(item_id))
    return failed


class SqsEventSourceMapping(QueuePoller):
    """A poller thread for one mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        queue: Queue,
        sqs: Any,
        runtime: LambdaRuntime,
        region: str,
        compress_wait: Callable[[timedelta, str], None],
        poll_interval: float = 0.05,
    ) -> None:
        super().__init__(f"esm-{queue.name}", poll_interval)
        self.mapping = mapping
        self.queue = queue
        self.sqs = sqs
        self.runtime = runtime
        self.region = region
        self.compress_wait = compress_wait
        self.delivery = DeliveryFaults()

    def enabled(self) -> bool:
        return self.mapping.enabled

    def poll_once(self) -> bool:
        response = self.sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=min(self.mapping.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        messages = response.get("Messages", [])
        if not messages:
            return False
        self.in_flight = True
        delay = self.delivery.delay_for(self.queue.name)
        if delay is not None:  # back on the queue, invisible for a while: handled later
            self._set_visibility(messages, round(delay))
            return True
        messages = self.delivery.reorder(self.queue.name, messages)
        event = sqs_event(messages, self.queue.arn, self.region)
        invocation = self.runtime.invoke(
            self.mapping.function_name.split(":")[-1], event, source=f"sqs:{self.queue.name}"
        )
        ids = [m["MessageId"] for m in messages]
        failed = set(failed_message_ids(invocation, self.mapping, ids))
        lost = [m for m in messages if self.delivery.lose_delete(self.queue.name, m["MessageId"])]
        done = [m for m in messages if m["MessageId"] not in failed and m not in lost]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        # A lost delete: SQS hands the message out again, as at-least-once delivery allows.
        self._set_visibility([m for m in lost if m["MessageId"] not in failed], 0)
        retry = [m for m in messages if m["MessageId"] in failed]
        if retry:
            self._set_visibility(retry, 0)
            self.compress_wait(
                timedelta(seconds=self.queue.visibility_timeout),
                f"visibility timeout of {self.queue.name} after {len(retry)} failed message(s)",
            )
        return True

    def _set_visibility(self, messages: list[dict[str, Any]], seconds: int) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )
