"""Virtual time: moves only when a scenario advances it or the runtime compresses a wait.

Components the harness runs read it through the file named by PIPELINE_CLOCK_FILE
(pipeline/common/clock.py), so handlers see virtual time, not the wall clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VirtualClock:
    def __init__(self, file: Path, start: datetime | None = None) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._write()

    def _write(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(_iso(self._now))
        tmp.replace(self.file)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def iso(self) -> str:
        return _iso(self.now())

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(UTC)
            self._write()

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            self._write()
            return self._now
