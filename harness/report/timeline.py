"""The timeline: an ordered log of what the harness saw and did, on virtual and wall time.

Scenario failures print its tail, so a reader sees what happened just before.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimelineEvent:
    seq: int
    virtual_time: str
    wall_offset: float
    kind: str
    detail: dict[str, Any]

    def render(self) -> str:
        details = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in self.detail.items())
        return f"[{self.virtual_time} +{self.wall_offset:7.3f}s] {self.kind} {details}"


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    events: list[TimelineEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, virtual_time: str, **detail: Any) -> None:
        with self._lock:
            self.events.append(
                TimelineEvent(
                    len(self.events) + 1, virtual_time, time.monotonic() - self.started, kind, detail
                )
            )

    def clear(self) -> None:
        with self._lock:
            self.events.clear()
            self.started = time.monotonic()

    def tail(self, n: int = 20) -> str:
        with self._lock:
            return "\n".join(e.render() for e in self.events[-n:])
