"""Delivery faults on the SQS event-source mappings the harness runs: what at-least-once
delivery allows and handlers must survive.

- `duplicate`: the mapping's delete after a successful invocation is lost, so SQS delivers
  the same message (same MessageId, receive count + 1) again at once.
- `reorder`: a received batch reaches the function in reverse order.
- `delay`: a received batch is put back invisible for `delay_s` before it is handled.

Each rule affects its first `count` messages (batches for reorder and delay); None = all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["duplicate", "reorder", "delay"]


@dataclass
class DeliveryRule:
    queue: str
    action: Action
    count: int | None = 1
    delay_s: float = 2.0
    applied: int = 0
    seen: set[str] = field(default_factory=set)

    def take(self) -> bool:
        if self.count is not None and self.applied >= self.count:
            return False
        self.applied += 1
        return True


@dataclass
class DeliveryFaults:
    """The rules in force, per queue name; consulted by each mapping's poller thread."""

    rules: list[DeliveryRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: DeliveryRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take(self, queue: str, action: Action) -> DeliveryRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.queue == queue and rule.action == action and rule.take():
                    return rule
        return None

    def delay_for(self, queue: str) -> float | None:
        rule = self._take(queue, "delay")
        return rule.delay_s if rule else None

    def reorder(self, queue: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(messages) > 1 and self._take(queue, "reorder"):
            return list(reversed(messages))
        return messages

    def lose_delete(self, queue: str, message_id: str) -> bool:
        """True when this message's delete is to be lost (each message at most once)."""
        with self._lock:
            for rule in self.rules:
                if rule.queue != queue or rule.action != "duplicate" or message_id in rule.seen:
                    continue
                if rule.take():
                    rule.seen.add(message_id)
                    return True
        return False
