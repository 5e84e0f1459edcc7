"""What an event is about: the object keys and item ids inside it, for the timeline.

Invariant violations name an input and ask where it was last seen; recording the subjects of
every invocation makes the timeline answer that. Bodies that are JSON strings (SQS records
carrying EventBridge or S3 events) are looked into too.
"""

from __future__ import annotations

import json
from typing import Any

_NAMES = {"key", "Key", "id", "object_key", "s3_path", "file_key"}
LIMIT = 10


def subjects(event: Any, limit: int = LIMIT) -> list[str]:
    found: list[str] = []
    _walk(event, found, limit, depth=0)
    return found


def _walk(value: Any, found: list[str], limit: int, depth: int) -> None:
    if len(found) >= limit or depth > 12:
        return
    if isinstance(value, str) and value[:1] in "{[" and len(value) < 1_000_000:
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, dict):
        for name, inner in value.items():
            if name in _NAMES and isinstance(inner, str) and inner not in found:
                found.append(inner)
            elif name in _NAMES and isinstance(inner, dict) and set(inner) == {"S"}:
                if inner["S"] not in found:  # a DynamoDB attribute value
                    found.append(inner["S"])
            else:
                _walk(inner, found, limit, depth + 1)
            if len(found) >= limit:
                return
    elif isinstance(value, list):
        for inner in value:
            _walk(inner, found, limit, depth + 1)
