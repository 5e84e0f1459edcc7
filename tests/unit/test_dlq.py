"""harness/runtime/dlq.py and `harness dlq` against an in-process moto server.

One server serves the module (the harness's side-effect-free listing route registered on
it, as `harness.services.moto_main` does); every test starts from empty backends.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from harness import cli
from harness.deploy.stack import Queue, RedrivePolicy, Stack
from harness.errors import HarnessError
from harness.runtime import dlq
from harness.services.moto_fixes import peek_sqs_messages
from harness.services.ports import free_port

LISTING_ROUTE = "{0}/moto-api/harness/sqs-messages"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.moto_api._internal import urls

    added = LISTING_ROUTE not in urls.url_paths
    urls.url_paths.setdefault(LISTING_ROUTE, peek_sqs_messages)  # read when the app is built
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        if added:
            urls.url_paths.pop(LISTING_ROUTE, None)


@pytest.fixture(scope="module")
def sqs_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def sqs(endpoint: str, sqs_client: Any) -> Any:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    return sqs_client


def make_queue(sqs: Any, name: str, dlq_arn: str | None = None, max_receives: int = 1) -> str:
    attributes = {"VisibilityTimeout": "30"}
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
        )
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def arn_of(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def work_stack(sqs: Any) -> tuple[str, str, str]:
    """work -> work-dlq (after 1 receive), and a plain `elsewhere`; returns their URLs."""
    dlq_url = make_queue(sqs, "work-dlq")
    source_url = make_queue(sqs, "work", arn_of(sqs, dlq_url))
    other_url = make_queue(sqs, "elsewhere")
    return source_url, dlq_url, other_url


def fail(sqs: Any, source_url: str, dlq_url: str, count: int) -> None:
    """Dead-letter `count` messages the real way: received past maxReceiveCount (1)."""
    for i in range(count):
        sqs.send_message(
            QueueUrl=source_url,
            MessageBody=json.dumps({"n": i}),
            MessageAttributes={
                "n": {"DataType": "Number", "StringValue": str(i)},
                "reason": {"DataType": "String", "StringValue": "ValueError: bad input"},
            },
        )
    for _ in range(20):
        if dlq.queue_counts(sqs, dlq_url)["ApproximateNumberOfMessages"] == count:
            break
        sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert dlq.queue_counts(sqs, dlq_url)["ApproximateNumberOfMessages"] == count


def depth(sqs: Any, url: str) -> tuple[int, int]:
    counts = dlq.queue_counts(sqs, url)
    return counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", []):
        got.extend(batch)
    return got


# -- list -----------------------------------------------------------------------------------


def test_dead_letter_queues_have_their_depth_and_sources(sqs: Any) -> None:
    _, dlq_url, _ = work_stack(sqs)
    make_queue(sqs, "second", arn_of(sqs, dlq_url), max_receives=4)
    for i in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"m{i}")
    sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    stack = dlq.stack_from_emulator(sqs)
    assert sorted(stack.queues) == ["elsewhere", "second", "work", "work-dlq"]

    [info] = dlq.dead_letter_queues(stack, sqs)

    assert (info.name, info.visible, info.not_visible, info.depth) == ("work-dlq", 2, 1, 3)
    assert [(s.name, s.redrive.max_receive_count if s.redrive else 0) for s in info.sources] == [
        ("second", 4),
        ("work", 1),
    ]
    assert info.as_dict()["sources"] == [
        {"name": "second", "max_receive_count": 4},
        {"name": "work", "max_receive_count": 1},
    ]


# -- peek -----------------------------------------------------------------------------------


def test_peek_reads_messages_without_consuming_them(sqs: Any) -> None:
    source_url, dlq_url, _ = work_stack(sqs)
    fail(sqs, source_url, dlq_url, 3)

    messages = dlq.peek(sqs, dlq_url, backend="moto")

    assert [json.loads(m["Body"]) for m in messages] == [{"n": 0}, {"n": 1}, {"n": 2}]
    first = messages[0]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"  # the failed receive, no more
    assert first["Attributes"]["SentTimestamp"].isdigit()
    assert first["MessageAttributes"]["reason"] == {
        "DataType": "String",
        "StringValue": "ValueError: bad input",
    }
    assert depth(sqs, dlq_url) == (3, 0)
    assert len(dlq.peek(sqs, dlq_url, 2)) == 2  # finds the listing by itself
    assert depth(sqs, dlq_url) == (3, 0)


def test_peek_without_a_listing_receives_and_hands_back(sqs: Any) -> None:
    """On an emulator with no side-effect-free listing (LocalStack's route is not on moto)."""
    _, dlq_url, _ = work_stack(sqs)
    for i in range(12):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"m{i}")

    messages = dlq.peek(sqs, dlq_url, backend="localstack")
    limited = dlq.peek(sqs, dlq_url, 3, backend="localstack")

    assert sorted(m["Body"] for m in messages) == sorted(f"m{i}" for i in range(12))
    assert len(limited) == 3
    assert depth(sqs, dlq_url) == (12, 0)  # every one visible again at once


# -- redrive --------------------------------------------------------------------------------


def test_redrive_moves_everything_back_to_the_source_with_attributes(sqs: Any) -> None:
    source_url, dlq_url, _ = work_stack(sqs)
    fail(sqs, source_url, dlq_url, 13)
    stack = dlq.stack_from_emulator(sqs)
    seen: list[str] = []

    moved = dlq.redrive(sqs, stack, "work-dlq", on_moved=lambda m: seen.append(m["MessageId"]))

    assert moved == 13 and len(seen) == 13
    assert depth(sqs, dlq_url) == (0, 0)
    back = receive_all(sqs, source_url)
    assert sorted(json.loads(m["Body"])["n"] for m in back) == list(range(13))
    for m in back:
        n = str(json.loads(m["Body"])["n"])
        assert m["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": n}
        assert m["MessageAttributes"]["reason"]["StringValue"] == "ValueError: bad input"
        assert m["Attributes"]["ApproximateReceiveCount"] == "1"  # a fresh start


def test_redrive_to_another_queue_with_a_limit(sqs: Any) -> None:
    source_url, dlq_url, other_url = work_stack(sqs)
    fail(sqs, source_url, dlq_url, 3)
    stack = dlq.stack_from_emulator(sqs)

    assert dlq.redrive(sqs, stack, stack.queues["work-dlq"], to="elsewhere", limit=2) == 2

    assert depth(sqs, other_url) == (2, 0)
    assert depth(sqs, dlq_url) == (1, 0)
    assert depth(sqs, source_url) == (0, 0)


def test_redrive_errors_name_the_queues(sqs: Any) -> None:
    work_stack(sqs)
    make_queue(sqs, "other-dlq")
    stack = dlq.stack_from_emulator(sqs)
    with pytest.raises(HarnessError, match="no queue of the stack has elsewhere as its dead-letter queue"):
        dlq.redrive(sqs, stack, "elsewhere", option="--to")
    with pytest.raises(HarnessError, match=r"'dlq' is ambiguous \(matches \['other-dlq', 'work-dlq'\]\)"):
        dlq.redrive(sqs, stack, "dlq")
    with pytest.raises(HarnessError, match=r"no queue named 'nowhere'.*elsewhere, other-dlq, work, work-dlq"):
        dlq.redrive(sqs, stack, "nowhere")
    with pytest.raises(HarnessError, match="cannot be redriven into itself"):
        dlq.redrive(sqs, stack, "work-dlq", to="work-dlq")


def test_several_sources_need_a_target() -> None:
    target = Queue("d", "arn:d", "url:d", 30, None, False, "a.d")
    policy = RedrivePolicy("arn:d", 3)
    stack = Stack(
        queues={
            "d": target,
            "a": Queue("a", "arn:a", "url:a", 30, policy, False, "a.a"),
            "b": Queue("b", "arn:b", "url:b", 30, policy, False, "a.b"),
        }
    )
    with pytest.raises(HarnessError, match=r"several queues send failures to d \(a, b\)") as caught:
        dlq.redrive_target(stack, target, option="--to QUEUE")
    assert caught.value.hint == "choose one with --to QUEUE"


# -- harness dlq ----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    return tmp_path


def fake_up_run(home: Path, endpoint: str, sqs: Any, *, owner: int | None = None) -> Path:
    """A run directory as `harness up` leaves it: owner.pid, up.json, Terraform state."""
    run = home / "runs" / f"20260101T000000-up-{owner or os.getpid()}"
    (run / "terraform").mkdir(parents=True)
    (run / "owner.pid").write_text(str(owner or os.getpid()))
    resources = []
    for name, queue in dlq.stack_from_emulator(sqs).queues.items():
        policy = queue.redrive
        attributes = {
            "name": name,
            "arn": queue.arn,
            "url": queue.url,
            "id": queue.url,
            "visibility_timeout_seconds": 30,
            "fifo_queue": False,
            "redrive_policy": json.dumps(
                {"deadLetterTargetArn": policy.dead_letter_target_arn, "maxReceiveCount": 1}
            )
            if policy
            else "",
        }
        resources.append(
            {
                "module": "module.work" if name.startswith("work") else None,
                "mode": "managed",
                "type": "aws_sqs_queue",
                "name": "queue",
                "instances": [{"index_key": name, "attributes": attributes}],
            }
        )
    state = run / "terraform" / "terraform.tfstate"
    state.write_text(json.dumps({"version": 4, "resources": resources, "outputs": {}}))
    cli.write_up_record(run / cli.UP_RECORD, endpoint_url=endpoint, backend="moto", terraform_state=state)
    return run


def test_no_running_stack_is_one_line_and_exit_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dlq", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: no running stack: start one with `harness up`")
    assert err.count("\n") == 1 and "Traceback" not in err

    gone = home / "runs" / "20260101T000000-up-999999999"
    gone.mkdir(parents=True)
    (gone / "owner.pid").write_text("999999999")  # beyond pid_max: never alive
    assert cli.main(["dlq", "show", "x"]) == 2
    assert "no running stack" in capsys.readouterr().err
    assert cli.main(["dlq", "list", "--run-dir", str(gone)]) == 2
    assert "has exited" in capsys.readouterr().err


def test_an_emulator_that_does_not_answer_is_no_running_stack(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["dlq", "list", "--endpoint", closed]) == 2
    assert capsys.readouterr().err == (
        f"harness: no running stack: the emulator at {closed} does not answer (has `harness up` stopped?)\n"
    )


def test_cli_finds_the_running_up_and_lists_shows_redrives(
    home: Path, endpoint: str, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    source_url, dlq_url, other_url = work_stack(sqs)
    fail(sqs, source_url, dlq_url, 3)
    run = fake_up_run(home, endpoint, sqs)
    running = cli.find_running_stack()
    assert (running.run_dir, running.backend, running.endpoint_url) == (run, "moto", endpoint)
    assert running.state_path == run / "terraform" / "terraform.tfstate"
    stack = cli.stack_from_state(running.state_path)
    assert stack.queues["work-dlq"].address == 'module.work.aws_sqs_queue.queue["work-dlq"]'

    assert cli.main(["dlq", "list"]) == 0
    out = capsys.readouterr().out
    assert "work-dlq" in out and "work (1)" in out and "Terraform state" in out
    assert "elsewhere" not in out

    assert cli.main(["dlq", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["messages"], listed["not_visible"]) == ("work-dlq", 3, 0)

    assert cli.main(["dlq", "show", "work-dlq", "--limit", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [m["BodyJson"] for m in shown] == [{"n": 0}, {"n": 1}]
    assert shown[0]["MessageAttributes"] == {"n": "0", "reason": "ValueError: bad input"}
    assert shown[0]["Attributes"]["ApproximateReceiveCount"] == "1"

    assert cli.main(["dlq", "show", "k-dlq"]) == 0  # a unique suffix
    out = capsys.readouterr().out
    assert out.startswith("work-dlq: 3 message(s), 0 not visible; showing 3 (dead-letter queue of work)")
    assert "message attribute reason (String): ValueError: bad input" in out
    assert '      {\n        "n": 2\n      }' in out
    assert depth(sqs, dlq_url) == (3, 0)  # shown, not consumed

    assert cli.main(["dlq", "redrive", "work-dlq", "--to", "elsewhere", "--limit", "1"]) == 0
    assert capsys.readouterr().out == "moved 1 message(s) from work-dlq to elsewhere; 2 left on work-dlq\n"
    assert cli.main(["dlq", "redrive", "work-dlq"]) == 0
    assert capsys.readouterr().out == "moved 2 message(s) from work-dlq to work; 0 left on work-dlq\n"
    assert depth(sqs, other_url) == (1, 0) and depth(sqs, source_url) == (2, 0)


def test_cli_errors_name_the_candidates(
    home: Path, endpoint: str, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    work_stack(sqs)
    make_queue(sqs, "other-dlq")
    assert cli.main(["dlq", "show", "dlq", "--endpoint", endpoint]) == 1  # no up: the emulator's queues
    assert "ambiguous (matches ['other-dlq', 'work-dlq'])" in capsys.readouterr().err
    assert cli.main(["dlq", "redrive", "elsewhere", "--endpoint", endpoint]) == 1
    err = capsys.readouterr().err
    assert "no queue of the stack has elsewhere as its dead-letter queue" in err
    assert "hint: name the queue to move the messages to with --to QUEUE" in err


def test_a_run_without_up_json_is_found_from_its_process_records(tmp_path: Path) -> None:
    run = tmp_path / "20260101T000000-steps-1"
    (run / "pids").mkdir(parents=True)
    (run / "owner.pid").write_text(str(os.getpid()))
    moto = {
        "pgid": 1,
        "argv": ["python", "-m", "harness.services.moto_main", "-H", "127.0.0.1", "-p", "5123"],
    }
    (run / "pids" / "moto.json").write_text(json.dumps(moto))
    found = cli.find_running_stack(run)
    assert (found.endpoint_url, found.backend, found.state_path) == ("http://127.0.0.1:5123", "moto", None)

    (run / "pids" / "moto.json").unlink()
    (run / "pids" / "localstack-4567.json").write_text(json.dumps({"pgid": 1, "argv": ["python"]}))
    found = cli.find_running_stack(run, backend=None)
    assert (found.endpoint_url, found.backend) == ("http://127.0.0.1:4567", "localstack")


def test_localstack_listing_shape_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """LocalStack's `/_aws/sqs/messages` answers in the query protocol's JSON shape."""
    import io

    answer = {
        "ReceiveMessageResponse": {
            "ReceiveMessageResult": {
                "Message": {
                    "MessageId": "m-1",
                    "Body": "{}",
                    "Attribute": [{"Name": "ApproximateReceiveCount", "Value": "5"}],
                    "MessageAttribute": {
                        "Name": "reason",
                        "Value": {"DataType": "String", "StringValue": "boom"},
                    },
                }
            }
        }
    }
    asked: list[str] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> io.BytesIO:
        asked.append(request.full_url)
        return io.BytesIO(json.dumps(answer).encode())

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    [message] = dlq.peek_messages("http://ls:4566/", "localstack", "http://ls:4566/000000000000/q")
    assert asked == [
        "http://ls:4566/_aws/sqs/messages?QueueUrl=http%3A%2F%2Fls%3A4566%2F000000000000%2Fq"
        "&ShowInvisible=true&ShowDelayed=true"
    ]
    assert message["Attributes"] == {"ApproximateReceiveCount": "5"}
    assert message["MessageAttributes"] == {"reason": {"DataType": "String", "StringValue": "boom"}}


def test_up_records_its_stack_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`harness up` writes up.json once the stack is up and removes it when it stops."""
    import argparse
    import types

    import harness.session

    run_dir = tmp_path / "20260101T000000-up-1"
    run_dir.mkdir()
    seen: list[dict[str, Any]] = []

    class FakeSession:
        def __init__(self, backend: str | None, *, label: str, deploy: bool) -> None:
            self.run_dir = types.SimpleNamespace(path=run_dir)
            self.backend, self.want_deploy = backend or "moto", deploy
            self.endpoint_url, self.support, self.bindings = "http://127.0.0.1:5000", {}, []

        def __enter__(self) -> FakeSession:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    class CtrlC:
        def wait(self, timeout: float) -> bool:
            seen.append(json.loads((run_dir / cli.UP_RECORD).read_text()))
            raise KeyboardInterrupt

        def set(self) -> None:
            pass

    monkeypatch.setattr(harness.session, "HarnessSession", FakeSession)
    monkeypatch.setattr(cli.threading, "Event", CtrlC)
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)

    assert cli.cmd_up(argparse.Namespace(backend="localstack", services_only=False)) == 0

    [record] = seen
    assert record["endpoint_url"] == "http://127.0.0.1:5000" and record["backend"] == "localstack"
    assert record["terraform_state"] == str(run_dir / "terraform" / "terraform.tfstate")
    assert record["pid"] == os.getpid()
    assert not (run_dir / cli.UP_RECORD).exists()
