"""pipeline.tracker.user_data: the worker's bootstrap script, its exact shape and its round trip."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.tracker import user_data
from pipeline.tracker.user_data import WorkerBootstrap, build, parse_exports

SETTINGS = WorkerBootstrap(
    region="us-east-1",
    queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/tracker-work",
    table_name="tracker-files",
    autoterminate_minutes="5",
    bucket="tracker-data",
    script_key="scripts/sqs_worker.py",
)

EXPECTED = """#!/bin/bash
# rag-worker bootstrap, written by the tracker orchestrator
set -euo pipefail
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export SQS_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/tracker-work
export DYNAMODB_TABLE_NAME=tracker-files
export EC2_AUTOTERMINATE_MINUTES=5
export WORKER_SCRIPT_S3_URI=s3://tracker-data/scripts/sqs_worker.py
export LOG_FILE=/home/ubuntu/sqs_worker.logs
aws s3 cp "$WORKER_SCRIPT_S3_URI" /home/ubuntu/sqs_worker.py
nohup python3 /home/ubuntu/sqs_worker.py >> "$LOG_FILE" 2>&1 &
"""


def test_build_has_the_exact_shape() -> None:
    assert build(SETTINGS) == EXPECTED


def test_parse_exports_reads_back_every_export() -> None:
    assert parse_exports(build(SETTINGS)) == {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SQS_QUEUE_URL": SETTINGS.queue_url,
        "DYNAMODB_TABLE_NAME": "tracker-files",
        "EC2_AUTOTERMINATE_MINUTES": "5",
        "WORKER_SCRIPT_S3_URI": "s3://tracker-data/scripts/sqs_worker.py",
        "LOG_FILE": "/home/ubuntu/sqs_worker.logs",
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
    assert sum(line.startswith("export ") for line in build(settings).splitlines()) == 7


def test_agrees_with_the_harness_parser() -> None:
    harness_ec2 = pytest.importorskip("harness.runtime.ec2_instances")
    harness_parse = getattr(harness_ec2, "parse_exports", None)
    if harness_parse is None:
        pytest.skip("the harness has no parse_exports")
    settings = dataclasses.replace(SETTINGS, table_name='it\'s $odd # "x"')
    assert harness_parse(build(settings)) == parse_exports(build(settings))


@pytest.mark.parametrize("bad", ["two\nlines", "carriage\rreturn", "nul\0byte"])
def test_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="DYNAMODB_TABLE_NAME"):
        build(dataclasses.replace(SETTINGS, table_name=bad))


def test_script_uri_tolerates_a_leading_slash() -> None:
    settings = dataclasses.replace(SETTINGS, script_key="/scripts/w.py")
    assert settings.script_uri == "s3://tracker-data/scripts/w.py"


def test_parse_exports_ignores_other_lines() -> None:
    script = "#!/bin/bash\n# export NOT=this\necho export NOR=this\n  export YES='a b'\nexport =bad\n"
    assert parse_exports(script) == {"YES": "a b"}
    assert user_data.LOG_FILE == "/home/ubuntu/sqs_worker.logs"
