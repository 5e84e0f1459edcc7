"""The EC2 user data that boots a rag-worker on Amazon Linux 2023.

AL2023's system Python is 3.9; the worker needs 3.11 (datetime.UTC, StrEnum), which AL2023
ships as the `python3.11` package. The instance has no route to the internet (the subnets
reach AWS through VPC endpoints only; AL2023's package repositories are in S3, reached
through the S3 gateway endpoint), so the worker's pinned requirements come as wheels inside
the bundle Terraform uploads to the bucket, and pip installs them with --no-index.

One command per line, one `export` per setting with its value shell-quoted: the script is
read back by tools (`parse_exports` is the inverse of `build`), and checked with `bash -n`
and shellcheck by the tests.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

WORKER_HOME = "/opt/rag-worker"
LOG_DIR = "/var/log/rag-worker"
LOG_FILE = f"{LOG_DIR}/sqs_worker.log"
PYTHON = "python3.11"
EXPORT = "export "


@dataclass(frozen=True)
class WorkerBootstrap:
    """What the worker needs to know at boot; everything else it learns from AWS."""

    region: str
    queue_url: str
    table_name: str
    autoterminate_minutes: str
    bucket: str
    bundle_key: str
    log_file: str = LOG_FILE

    @property
    def bundle_uri(self) -> str:
        return f"s3://{self.bucket}/{self.bundle_key.lstrip('/')}"

    def exports(self) -> dict[str, str]:
        """The exported variables, in the order the script sets them."""
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "SQS_QUEUE_URL": self.queue_url,
            "DYNAMODB_TABLE_NAME": self.table_name,
            "EC2_AUTOTERMINATE_MINUTES": self.autoterminate_minutes,
            "WORKER_BUNDLE_S3_URI": self.bundle_uri,
            "WORKER_HOME": WORKER_HOME,
            "LOG_DIR": LOG_DIR,
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
        "# rag-worker bootstrap (Amazon Linux 2023), written by the tracker orchestrator",
        "set -euo pipefail",
        *(_export_line(name, value) for name, value in settings.exports().items()),
        f"dnf install -y {PYTHON}",
        'mkdir -p "$WORKER_HOME" "$LOG_DIR"',
        'aws s3 cp "$WORKER_BUNDLE_S3_URI" "$WORKER_HOME/bundle.zip"',
        f'{PYTHON} -m zipfile -e "$WORKER_HOME/bundle.zip" "$WORKER_HOME"',
        f'{PYTHON} -m venv "$WORKER_HOME/venv"',
        '"$WORKER_HOME/venv/bin/pip" install --no-index --find-links "$WORKER_HOME/wheels" '
        '-r "$WORKER_HOME/requirements.txt"',
        'nohup "$WORKER_HOME/venv/bin/python" "$WORKER_HOME/sqs_worker.py" >> "$LOG_FILE" 2>&1 &',
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
