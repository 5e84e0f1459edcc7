"""pipeline.tracker.user_data: the worker's bootstrap script, its exact shape, its round trip, and
that bash and shellcheck accept it."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.tracker import user_data
from pipeline.tracker.user_data import WorkerBootstrap, build, parse_exports

SETTINGS = WorkerBootstrap(
    region="us-east-1",
    queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/tracker-work",
    table_name="tracker-files",
    autoterminate_minutes="5",
    bucket="tracker-data",
    bundle_key="scripts/rag-worker.zip",
)

EXPECTED = """\
#!/bin/bash
# rag-worker bootstrap (Amazon Linux 2023), written by the tracker orchestrator
set -euo pipefail
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export SQS_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/tracker-work
export DYNAMODB_TABLE_NAME=tracker-files
export EC2_AUTOTERMINATE_MINUTES=5
export WORKER_BUNDLE_S3_URI=s3://tracker-data/scripts/rag-worker.zip
export WORKER_HOME=/opt/rag-worker
export LOG_DIR=/var/log/rag-worker
export LOG_FILE=/var/log/rag-worker/sqs_worker.log
dnf install -y python3.11
mkdir -p "$WORKER_HOME" "$LOG_DIR"
aws s3 cp "$WORKER_BUNDLE_S3_URI" "$WORKER_HOME/bundle.zip"
python3.11 -m zipfile -e "$WORKER_HOME/bundle.zip" "$WORKER_HOME"
python3.11 -m venv "$WORKER_HOME/venv"
"$WORKER_HOME/venv/bin/pip" install --no-index --find-links "$WORKER_HOME/wheels" \
-r "$WORKER_HOME/requirements.txt"
nohup "$WORKER_HOME/venv/bin/python" "$WORKER_HOME/sqs_worker.py" >> "$LOG_FILE" 2>&1 &
"""


def test_build_has_the_exact_shape() -> None:
    assert build(SETTINGS) == EXPECTED.replace("\\\n", "")


def test_parse_exports_reads_back_every_export() -> None:
    assert parse_exports(build(SETTINGS)) == {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SQS_QUEUE_URL": SETTINGS.queue_url,
        "DYNAMODB_TABLE_NAME": "tracker-files",
        "EC2_AUTOTERMINATE_MINUTES": "5",
        "WORKER_BUNDLE_S3_URI": "s3://tracker-data/scripts/rag-worker.zip",
        "WORKER_HOME": "/opt/rag-worker",
        "LOG_DIR": "/var/log/rag-worker",
        "LOG_FILE": "/var/log/rag-worker/sqs_worker.log",
    }


@pytest.mark.parametrize(
    "value",
    [
        "with spaces",
        "it's",
        'say "hi"',
        "$HOME and ${PATH} and $(reboot) and `id`",
        "semi;colon && pipe | amp & hash # not a comment",
        "back\\slash",
        "'",
        "",
        "ünïcödé",
    ],
    ids=[
        "spaces",
        "single-quote",
        "double-quote",
        "dollar",
        "shell-metachars",
        "backslash",
        "lone-quote",
        "empty",
        "unicode",
    ],
)
def test_round_trip_with_awkward_values(value: str) -> None:
    settings = dataclasses.replace(SETTINGS, table_name=value, queue_url=value + "/q")
    exports = parse_exports(build(settings))
    assert exports["DYNAMODB_TABLE_NAME"] == value
    assert exports["SQS_QUEUE_URL"] == value + "/q"
    # Every export stays on its own line, whatever the value holds.
    assert sum(line.startswith("export ") for line in build(settings).splitlines()) == 9


@pytest.mark.parametrize("table", ["tracker-files", 'it\'s $odd # "x"'], ids=["plain", "awkward"])
def test_bash_parses_it_and_shellcheck_finds_nothing(tmp_path: Path, table: str) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(build(dataclasses.replace(SETTINGS, table_name=table)))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    # A literal $ in a quoted value is what we mean (shellcheck's SC2016 is only "info").
    severity = "info" if table == "tracker-files" else "warning"
    done = subprocess.run(
        [shellcheck, "--shell=bash", f"--severity={severity}", str(script)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("bad", ["two\nlines", "carriage\rreturn", "nul\0byte"])
def test_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="DYNAMODB_TABLE_NAME"):
        build(dataclasses.replace(SETTINGS, table_name=bad))


def test_bundle_uri_tolerates_a_leading_slash() -> None:
    settings = dataclasses.replace(SETTINGS, bundle_key="/scripts/w.zip")
    assert settings.bundle_uri == "s3://tracker-data/scripts/w.zip"


def test_parse_exports_ignores_other_lines() -> None:
    script = "#!/bin/bash\n# export NOT=this\necho export NOR=this\n  export YES='a b'\nexport =bad\n"
    assert parse_exports(script) == {"YES": "a b"}
    assert user_data.LOG_FILE == "/var/log/rag-worker/sqs_worker.log"  # no hard-coded home directory
