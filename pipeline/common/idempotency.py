"""Deterministic identifiers, so a redelivered message yields the same outputs, not new ones."""

from __future__ import annotations

import json
import uuid

# A fixed namespace for this pipeline's derived ids (uuid5 needs one).
NAMESPACE = uuid.UUID("6f1c1b7e-4d0a-5c43-9a58-0d6a2f3e8b11")


def stable_uuid(*parts: object) -> str:
    """A UUID that depends only on `parts`: the same input always maps to the same id."""
    # JSON keeps the parts apart: no separator character can make ("a|b",) equal ("a", "b").
    return str(uuid.uuid5(NAMESPACE, json.dumps([str(p) for p in parts])))
