"""The current time, from one place.

In AWS this is the real clock. A test harness may set PIPELINE_CLOCK_FILE to a file holding
an ISO-8601 instant; then that virtual time is "now". Handlers of scheduled events should
prefer the event's own `time` field.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path


def now() -> datetime:
    source = os.environ.get("PIPELINE_CLOCK_FILE")
    if source:
        try:
            text = Path(source).read_text().strip()
        except OSError:
            text = ""
        if text:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC)
