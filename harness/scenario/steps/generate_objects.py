"""The `generate_objects` step: upload many objects with deterministic generated content."""

from __future__ import annotations

import concurrent.futures
import json
import random
import re
import string
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step

Shape = Literal["text", "csv", "json", "jsonl"]

MAX_OBJECT_BYTES = 64 * 1024**2
MAX_TOTAL_BYTES = 1024**3
_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
EXTENSIONS = {"text": "txt", "csv": "csv", "json": "json", "jsonl": "jsonl"}
CONTENT_TYPES = {
    "text": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}
CSV_HEADER = "id,key,value,ts\n"
_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "pipeline",
    "record",
    "event",
    "queue",
    "bucket",
    "message",
    "refiner",
    "manifest",
    "output",
    "input",
    "batch",
    "stream",
]
_ALNUM = string.ascii_letters + string.digits
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def parse_size(value: int | str) -> int:
    """Bytes from `4096`, `"4KiB"`, `"1MiB"`, `"10KB"` (KB/MB/GB are decimal, KiB/MiB/GiB binary)."""
    if isinstance(value, bool):
        raise ValueError("a size in bytes, like 4096, 4KiB or 1MiB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a size (use bytes, or e.g. 512B, 4KiB, 1MiB)")
        size = int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    if size < 0 or size > MAX_OBJECT_BYTES:
        raise ValueError(f"size must be between 0 and {MAX_OBJECT_BYTES // 1024**2}MiB, got {size} bytes")
    return size


def _record(rng: random.Random, number: int) -> dict[str, Any]:
    ts = _EPOCH + timedelta(seconds=rng.randrange(365 * 86400))
    return {
        "id": number,
        "key": f"k-{rng.getrandbits(32):08x}",
        "value": "".join(rng.choices(_ALNUM, k=rng.randint(4, 24))),
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _render(shape: Shape, record: dict[str, Any]) -> str:
    if shape == "csv":
        return f"{record['id']},{record['key']},{record['value']},{record['ts']}\n"
    line = json.dumps(record, separators=(",", ":"))
    return line + "\n" if shape == "jsonl" else line


def _text(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        words = rng.choices(_WORDS, k=rng.randint(6, 14))
        line = " ".join(words).capitalize() + ".\n"
        parts.append(line)
        length += len(line)
    return "".join(parts)[:size]


def _records(shape: Shape, rng: random.Random, size: int) -> str:
    """Whole records while they fit in `size`; the last record's value is padded to hit it exactly."""
    overhead = {"csv": len(CSV_HEADER), "json": 2, "jsonl": 0}[shape]
    separator = 1 if shape == "json" else 0
    lines: list[str] = []
    records: list[dict[str, Any]] = []
    length = overhead
    while True:
        record = _record(rng, len(records) + 1)
        line = _render(shape, record)
        extra = len(line) + (separator if lines else 0)
        if length + extra > size:
            break
        records.append(record)
        lines.append(line)
        length += extra
    if not records:
        record = _record(rng, 1)
        record["value"] = ""
        needed = overhead + len(_render(shape, record))
        if needed > size:
            raise ValueError(f"a {shape} object with one record needs at least {needed} bytes, got {size}")
        records.append(record)
        lines.append(_render(shape, record))
        length = needed
    records[-1]["value"] += "".join(rng.choices(_ALNUM, k=size - length))
    lines[-1] = _render(shape, records[-1])
    if shape == "csv":
        return CSV_HEADER + "".join(lines)
    if shape == "json":
        return "[" + ",".join(lines) + "]"
    return "".join(lines)


def generate_content(shape: Shape, size: int, rng: random.Random) -> bytes:
    """One object's content, exactly `size` bytes (ASCII), from `rng` alone."""
    text = _text(rng, size) if shape == "text" else _records(shape, rng, size)
    data = text.encode()
    assert len(data) == size, (shape, size, len(data))
    return data


def object_seeds(seed: int, count: int) -> list[int]:
    """Each object's own generator seed: the i-th draw of `random.Random(seed)`.

    So object i does not depend on `count`, and objects can be generated in any order.
    """
    master = random.Random(seed)
    return [master.getrandbits(64) for _ in range(count)]


def object_key(prefix: str, name: str | None, shape: Shape, i: int) -> str:
    return prefix + (name or f"object-{{i:05d}}.{EXTENSIONS[shape]}").format(i=i)


def generate(
    shape: Shape, size: int, count: int, seed: int, name: str | None = None, prefix: str = ""
) -> list[tuple[str, bytes]]:
    """(key, content) for every object: the same arguments always give byte-identical objects."""
    return [
        (object_key(prefix, name, shape, i), generate_content(shape, size, random.Random(s)))
        for i, s in enumerate(object_seeds(seed, count))
    ]


def min_size(shape: Shape) -> int:
    """The smallest object of this shape: nothing for text, else one record with an empty value."""
    if shape == "text":
        return 0
    record = _record(random.Random(0), 1)
    record["value"] = ""
    return {"csv": len(CSV_HEADER), "json": 2, "jsonl": 0}[shape] + len(_render(shape, record))


@step
class GenerateObjects(Step):
    """Upload `count` objects of generated content (text, csv, json or jsonl), the same for the same seed.

    Keys are `prefix` + `name`, where `name` is a pattern with `{i}` counting from 0
    (default `object-{i:05d}.<ext>`). Every object is exactly `size` bytes: text is lines of
    words; csv has the header `id,key,value,ts` and rows; json is an array of such records;
    jsonl one record per line.
    """

    keyword = "generate_objects"
    bucket: str
    prefix: str = ""
    count: int = Field(ge=1, le=10000)
    size: int | str
    shape: Shape = "text"
    seed: int = 0
    name: str | None = None

    @field_validator("size")
    @classmethod
    def _size(cls, value: int | str) -> int | str:
        parse_size(value)
        return value

    @field_validator("name")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            first, second = value.format(i=0), value.format(i=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"name {value!r} is not a pattern with `{{i}}` (like file-{{i:04d}}.csv): {exc}"
            ) from None
        if first == second:
            raise ValueError(f"name {value!r} must contain `{{i}}` so every object gets its own key")
        return value

    @model_validator(mode="after")
    def _limits(self) -> GenerateObjects:
        size = parse_size(self.size)
        if size * self.count > MAX_TOTAL_BYTES:
            raise ValueError(f"count x size is {size * self.count} bytes; at most 1GiB in one step")
        if size < min_size(self.shape):
            raise ValueError(
                f"a {self.shape} object with one record needs at least {min_size(self.shape)} bytes, "
                f"got size {size}"
            )
        return self

    def run(self, ctx: ScenarioContext) -> None:
        size = parse_size(self.size)
        keys = [object_key(self.prefix, self.name, self.shape, i) for i in range(self.count)]
        s3 = ctx.session.client("s3")

        def upload(item: tuple[str, int]) -> int:
            data = generate_content(self.shape, size, random.Random(item[1]))
            s3.put_object(Bucket=self.bucket, Key=item[0], Body=data, ContentType=CONTENT_TYPES[self.shape])
            return len(data)

        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, self.count)) as pool:
                total = sum(pool.map(upload, zip(keys, object_seeds(self.seed, self.count), strict=True)))
        except s3.exceptions.NoSuchBucket:
            raise HarnessError(f"generate_objects: bucket {self.bucket!r} does not exist") from None
        ctx.session.timeline.add(
            "generate_objects",
            ctx.session.clock.iso(),
            bucket=self.bucket,
            count=self.count,
            shape=self.shape,
            seed=self.seed,
            bytes=total,
            first=keys[0],
            last=keys[-1],
        )
