"""EventBridge rules whose target is a Lambda function, run by the harness.

The emulator routes matching events into a tap queue (see deploy/takeover.py); this
poller invokes the function with each event the way EventBridge does: asynchronously, with
Lambda's default of two retries after a failed attempt.
"""

from __future__ import annotations

import json
from typing import Any

from harness.deploy.takeover import LambdaTap
from harness.runtime.lambda_runtime import LambdaRuntime
from harness.runtime.poller import QueuePoller


class EventBridgeLambdaTarget(QueuePoller):
    def __init__(self, tap: LambdaTap, sqs: Any, runtime: LambdaRuntime, poll_interval: float = 0.05) -> None:
        super().__init__(f"tap-{tap.rule.name}", poll_interval)
        self.tap = tap
        self.sqs = sqs
        self.runtime = runtime

    @property
    def queue_url(self) -> str:
        return self.tap.queue_url

    def poll_once(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.tap.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        self.in_flight = bool(messages)
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except json.JSONDecodeError:
                event = message["Body"]
            source = f"events:{self.tap.rule.bus}/{self.tap.rule.name}"
            self.runtime.invoke_async(self.tap.function_name, event, source=source)
            self.sqs.delete_message(QueueUrl=self.tap.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(messages)
