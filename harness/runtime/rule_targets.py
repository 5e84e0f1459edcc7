"""EventBridge rules whose target is a Lambda function, run by the harness.

The emulator routes matching events into a tap queue (see deploy/takeover.py); this
poller invokes the function with each event the way EventBridge does: asynchronously, with
Lambda's default of two retries after a failed attempt.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from harness.deploy.takeover import LambdaTap
from harness.runtime.lambda_runtime import LambdaRuntime

ASYNC_RETRIES = 2


class EventBridgeLambdaTarget:
    def __init__(self, tap: LambdaTap, sqs: Any, runtime: LambdaRuntime, poll_interval: float = 0.05) -> None:
        self.tap = tap
        self.sqs = sqs
        self.runtime = runtime
        self.poll_interval = poll_interval
        self.in_flight = False
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"tap-{tap.rule.name}", daemon=True)

    @property
    def queue_url(self) -> str:
        return self.tap.queue_url

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def pause(self) -> None:
        self._paused.set()
        while self.in_flight:
            time.sleep(0.01)

    def resume(self) -> None:
        self._paused.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._paused.is_set():
                time.sleep(self.poll_interval)
                continue
            self.in_flight = True
            try:
                handled = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - keep polling through emulator hiccups
                self.errors.append(f"{type(exc).__name__}: {exc}")
                handled = False
            finally:
                self.in_flight = False
            if not handled:
                time.sleep(self.poll_interval)

    def poll_once(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.tap.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except json.JSONDecodeError:
                event = message["Body"]
            for _attempt in range(1 + ASYNC_RETRIES):
                invocation = self.runtime.invoke(
                    self.tap.function_name, event, source=f"events:{self.tap.rule.bus}/{self.tap.rule.name}"
                )
                if invocation.ok:
                    break
            self.sqs.delete_message(QueueUrl=self.tap.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(messages)
