"""EventBridge Pipes from DynamoDB streams, run by the harness from the Terraform state.

Each pipe reads its table's stream (from LATEST or TRIM_HORIZON, as configured), keeps the
records its filter criteria match, and sends them to the target queue with the SQS batch
API, one message per record, in the shape AWS documents for a DynamoDB stream record in a
pipe (`eventSourceARN` added, `ApproximateCreationDateTime` in epoch seconds).

Matching is the emulator's: LocalStack answers TestEventPattern; moto's TestEventPattern
returns an empty body (moto 5.2.5), so for moto its own matcher, the one its EventBridge
routes PutEvents with, is called in-process. No pattern logic lives here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from harness.deploy.stack import Pipe, Stack
from harness.runtime.poller import QueuePoller

#: Fields TestEventPattern insists on; a pipe's filter never refers to them.
_ENVELOPE = {
    "id": "00000000-0000-0000-0000-000000000000",
    "detail-type": "pipe record",
    "source": "harness.pipes",
    "account": "000000000000",
    "time": "1970-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}
SHARD_REFRESH_S = 2.0
_LOST_ITERATOR = {"TrimmedDataAccessException", "ExpiredIteratorException"}


def moto_matcher() -> Callable[[str, dict[str, Any]], bool]:
    from moto.events.models import EventPattern

    cache: dict[str, Any] = {}

    def matches(pattern: str, record: dict[str, Any]) -> bool:
        if pattern not in cache:
            cache[pattern] = EventPattern.load(pattern)
        return bool(cache[pattern].matches_event(record))

    return matches


def emulator_matcher(events: Any) -> Callable[[str, dict[str, Any]], bool]:
    def matches(pattern: str, record: dict[str, Any]) -> bool:
        event = {**_ENVELOPE, **record}
        return bool(events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"])

    return matches


def pipe_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams GetRecords record as a pipe passes it on."""
    out = {k: v for k, v in record.items() if k != "userIdentity"}
    dynamodb = dict(out.get("dynamodb") or {})
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    out["dynamodb"] = dynamodb
    out["eventSourceARN"] = stream_arn
    return out


class DynamoDBStreamPipe(QueuePoller):
    """One pipe: stream -> filter -> SQS target."""

    def __init__(
        self,
        pipe: Pipe,
        stack: Stack,
        streams: Any,
        sqs: Any,
        matches: Callable[[str, dict[str, Any]], bool],
        on_delivery: Callable[[Pipe, int, int], None] | None = None,
    ) -> None:
        super().__init__(f"pipe-{pipe.name}", poll_interval=0.1)
        self.pipe = pipe
        self.streams = streams
        self.sqs = sqs
        self.matches = matches
        self.on_delivery = on_delivery
        queue = stack.queue_by_arn(pipe.target)
        if queue is None:
            raise ValueError(f"pipe {pipe.name} targets {pipe.target}, which is not a queue of this stack")
        self.target_url = queue.url
        self.iterators: dict[str, str | None] = {}
        #: the last sequence number read per shard, to pick up after a lost iterator
        self.last_sequence: dict[str, str] = {}
        self.delivered = 0
        self.filtered_out = 0
        self._shards_checked = 0.0

    def start(self) -> None:
        self.seek(self.pipe.starting_position)
        super().start()

    def seek(self, position: str = "LATEST") -> None:
        """Point every shard at `position` (LATEST after a data reset: old records are history).

        LATEST is read as "from the trim horizon, skipping what is there now": DynamoDB
        Local (LocalStack) answers an iterator that has polled an empty shard for a few
        seconds with TrimmedDataAccessException at the next write (measured), and knowing the
        last sequence number lets the pipe resume exactly after it.
        """
        self.iterators = {}
        self.last_sequence = {}
        for shard in self._shards():
            iterator = self._iterator(shard, "TRIM_HORIZON")
            self.iterators[shard] = self._skip_to_end(shard, iterator) if position == "LATEST" else iterator
        self._shards_checked = time.monotonic()

    def _skip_to_end(self, shard: str, iterator: str | None) -> str | None:
        while iterator is not None:
            response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            records = response.get("Records", [])
            if records:
                self.last_sequence[shard] = records[-1]["dynamodb"]["SequenceNumber"]
            iterator = response.get("NextShardIterator")
            if not records:
                return iterator
        return None

    def _resume(self, shard: str) -> str | None:
        """A fresh iterator after a lost one, right after the last record read."""
        last = self.last_sequence.get(shard)
        if last is None:
            return self._iterator(shard, "TRIM_HORIZON")
        response = self.streams.get_shard_iterator(
            StreamArn=self.pipe.source,
            ShardId=shard,
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            SequenceNumber=last,
        )
        return response.get("ShardIterator")

    def _shards(self) -> list[str]:
        description = self.streams.describe_stream(StreamArn=self.pipe.source)["StreamDescription"]
        return [s["ShardId"] for s in description.get("Shards", [])]

    def _iterator(self, shard: str, position: str) -> str | None:
        response = self.streams.get_shard_iterator(
            StreamArn=self.pipe.source, ShardId=shard, ShardIteratorType=position
        )
        return response.get("ShardIterator")

    def poll_once(self) -> bool:
        if time.monotonic() - self._shards_checked > SHARD_REFRESH_S:
            for shard in self._shards():  # a new shard is read from its start
                if shard not in self.iterators:
                    self.iterators[shard] = self._iterator(shard, "TRIM_HORIZON")
            self._shards_checked = time.monotonic()
        worked = False
        for shard, iterator in list(self.iterators.items()):
            if iterator is None:
                continue
            try:
                response = self.streams.get_records(
                    ShardIterator=iterator, Limit=max(1, self.pipe.batch_size)
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _LOST_ITERATOR:
                    raise
                self.iterators[shard] = self._resume(shard)
                worked = True  # poll again at once: a write is what invalidated the iterator
                continue
            records = response.get("Records", [])
            if records:
                self.in_flight = True
                worked = True
                # A failed delivery raises before the iterator moves: the batch is read again.
                self._deliver([pipe_record(r, self.pipe.source) for r in records])
                self.last_sequence[shard] = records[-1]["dynamodb"]["SequenceNumber"]
            self.iterators[shard] = response.get("NextShardIterator")
        return worked

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        kept = [
            r for r in records if not self.pipe.filters or any(self.matches(f, r) for f in self.pipe.filters)
        ]
        self.filtered_out += len(records) - len(kept)
        for start in range(0, len(kept), 10):
            chunk = kept[start : start + 10]
            entries = [{"Id": uuid.uuid4().hex, "MessageBody": json.dumps(r, default=str)} for r in chunk]
            failed = (
                self.sqs.send_message_batch(QueueUrl=self.target_url, Entries=entries).get("Failed") or []
            )
            if failed:
                raise RuntimeError(f"pipe {self.pipe.name}: SendMessageBatch failed for {failed}")
        self.delivered += len(kept)
        if self.on_delivery is not None:
            self.on_delivery(self.pipe, len(records), len(kept))
