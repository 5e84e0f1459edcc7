"""The EC2 user data that boots a rag-worker: its environment, then fetch and run the worker script.

The harness reads this script back (every `export NAME=VALUE` line, and the script to run
from WORKER_SCRIPT_S3_URI), so its shape is fixed: one export per line, each value quoted
with `shlex.quote`. `parse_exports` is the inverse of `build`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

HOME = "/home/ubuntu"
LOG_FILE = f"{HOME}/sqs_worker.logs"
SCRIPT_PATH = f"{HOME}/sqs_worker.py"
EXPORT = "export "


@dataclass(frozen=True)
class WorkerBootstrap:
    """What the worker needs to know at boot; everything else it learns from AWS."""

    region: str
    queue_url: str
    table_name: str
    autoterminate_minutes: str
    bucket: str
    script_key: str
    log_file: str = LOG_FILE

    @property
    def script_uri(self) -> str:
        return f"s3://{self.bucket}/{self.script_key.lstrip('/')}"

    def exports(self) -> dict[str, str]:
        """The exported variables, in the order the script sets them."""
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "SQS_QUEUE_URL": self.queue_url,
            "DYNAMODB_TABLE_NAME": self.table_name,
            "EC2_AUTOTERMINATE_MINUTES": self.autoterminate_minutes,
            "WORKER_SCRIPT_S3_URI": self.script_uri,
            "LOG_FILE": self.log_file,
        }


def _export_line(name: str, value: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not a shell variable name")
    # A newline would split the export over two lines, which no line-based reader survives.
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"{name} contains a line break or NUL: {value!r}")
    return f"{EXPORT}{name}={shlex.quote(value)}"


def build(settings: WorkerBootstrap) -> str:
    """The bash user-data script for one worker instance."""
    lines = [
        "#!/bin/bash",
        "# rag-worker bootstrap, written by the tracker orchestrator",
        "set -euo pipefail",
        *(_export_line(name, value) for name, value in settings.exports().items()),
        f'aws s3 cp "$WORKER_SCRIPT_S3_URI" {SCRIPT_PATH}',
        f'nohup python3 {SCRIPT_PATH} >> "$LOG_FILE" 2>&1 &',
    ]
    return "\n".join(lines) + "\n"


def parse_exports(script: str) -> dict[str, str]:
    """The `export NAME=VALUE` lines of a script, values unquoted as the shell would."""
    exports: dict[str, str] = {}
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped.startswith(EXPORT):
            continue
        for word in shlex.split(stripped[len(EXPORT) :]):
            name, sep, value = word.partition("=")
            if sep and name.isidentifier():
                exports[name] = value
    return exports
