"""`harness dlq` against a harness moto server (its listing route), found from a run directory.

No Terraform and no support services: the session's own run directory (owner alive, the
emulator in its process records) is the running stack, and its queues come from the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness import cli
from harness.runtime import dlq
from harness.session import HarnessSession

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def session() -> Iterator[HarnessSession]:
    with HarnessSession("moto", label="dlq-cli", deploy=False, support_services=False) as session:
        yield session


def test_list_show_redrive_a_session_found_by_its_run_directory(
    session: HarnessSession, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = session.client("sqs")
    dlq_url = sqs.create_queue(QueueName="cli-orders-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "2"})
    source_url = sqs.create_queue(QueueName="cli-orders", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for i in range(2):
        sqs.send_message(
            QueueUrl=source_url,
            MessageBody=json.dumps({"order": i}),
            MessageAttributes={"error": {"DataType": "String", "StringValue": "KeyError: 'sku'"}},
        )
    while session.queue_depth(dlq_url) < 2:  # fail them past maxReceiveCount
        sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    where = ["--run-dir", str(session.run_dir.path)]

    assert cli.main(["dlq", "list", *where]) == 0
    out = capsys.readouterr().out
    assert "cli-orders-dlq" in out and "cli-orders (2)" in out and "(moto)" in out

    assert cli.main(["dlq", "show", "orders-dlq", "--json", *where]) == 0
    shown: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert [m["BodyJson"] for m in shown] == [{"order": 0}, {"order": 1}]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in shown} == {"2"}
    assert shown[0]["MessageAttributes"] == {"error": "KeyError: 'sku'"}
    # The shared listing is the session's, and showing bumped no receive count.
    assert dlq.peek_messages(session.endpoint_url, "moto", dlq_url) == session.peek_messages(dlq_url)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in session.peek_messages(dlq_url)} == {"2"}

    assert cli.main(["dlq", "redrive", "cli-orders-dlq", *where]) == 0
    assert capsys.readouterr().out == (
        "moved 2 message(s) from cli-orders-dlq to cli-orders; 0 left on cli-orders-dlq\n"
    )
    back = session.peek_messages(source_url)
    assert sorted(m["Body"] for m in back) == ['{"order": 0}', '{"order": 1}']
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"0"}
