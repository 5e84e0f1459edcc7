"""The refiner's push and poller scripts, run through `main(argv)` against moto."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from pipeline.common import aws
from pipeline.refiner import poller, push

BUCKET = "data-repository"


@pytest.fixture
def s3(aws_mock: MockAWS) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def read(s3: Any, key: str, bucket: str = BUCKET) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_push_uploads_a_file_under_refiner_input(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n1,2\n")
    assert push.main([str(source)]) == 0
    assert read(s3, "RefinerInput/report.csv") == b"a,b\n1,2\n"
    assert (
        capsys.readouterr().out.strip() == "uploaded s3://data-repository/RefinerInput/report.csv (8 bytes)"
    )


def test_push_without_a_file_uploads_hello_world(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert push.main([]) == 0
    assert read(s3, "RefinerInput/helloworld.txt") == b"Hello, world!\n"
    assert "RefinerInput/helloworld.txt (14 bytes)" in capsys.readouterr().out


def test_push_with_key_and_bucket(s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="other-bucket")
    source = tmp_path / "x.txt"
    source.write_text("x")
    assert push.main([str(source), "--bucket", "other-bucket", "--key", "custom/place.txt"]) == 0
    assert read(s3, "custom/place.txt", bucket="other-bucket") == b"x"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_push_of_a_missing_file_returns_2(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.txt"
    assert push.main([str(missing)]) == 2
    captured = capsys.readouterr()
    assert f"{missing}: no such file" in captured.err
    assert captured.out == ""
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_push_of_a_directory_returns_2(s3: Any, tmp_path: Path) -> None:
    assert push.main([str(tmp_path)]) == 2


def test_poller_once_without_manifests_returns_1(s3: Any) -> None:
    out = io.StringIO()
    assert poller.main(["--once"], out=out) == 1
    assert out.getvalue() == ""


def test_poller_once_prints_manifest_and_contents(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="RefinerOutput/u1.txt", Body=b"first copy")
    s3.put_object(Bucket=BUCKET, Key="RefinerOutput/u2.txt", Body=b"second copy")
    manifest = ["/RefinerOutput/u1.txt", "/RefinerOutput/u2.txt"]
    s3.put_object(Bucket=BUCKET, Key="RefinerComplete/a.txt.json", Body=json.dumps(manifest).encode())
    s3.put_object(Bucket=BUCKET, Key="RefinerComplete/ignored.txt", Body=b"not a manifest")

    out = io.StringIO()
    assert poller.main(["--once"], out=out) == 0
    assert out.getvalue() == (
        "manifest RefinerComplete/a.txt.json: 2 outputs\n"
        "--- /RefinerOutput/u1.txt\nfirst copy\n"
        "--- /RefinerOutput/u2.txt\nsecond copy\n"
    )


def test_poller_shows_each_manifest_once(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="RefinerOutput/o.txt", Body=b"o")
    for name in ("b.json", "a.json"):
        s3.put_object(Bucket=BUCKET, Key=f"RefinerComplete/{name}", Body=b'["/RefinerOutput/o.txt"]')
    seen: set[str] = set()
    assert list(poller.new_manifests(BUCKET, "RefinerComplete/", seen)) == [
        "RefinerComplete/a.json",
        "RefinerComplete/b.json",
    ]
    assert list(poller.new_manifests(BUCKET, "RefinerComplete/", seen)) == []
    s3.put_object(Bucket=BUCKET, Key="RefinerComplete/c.json", Body=b"[]")
    assert list(poller.new_manifests(BUCKET, "RefinerComplete/", seen)) == ["RefinerComplete/c.json"]


def test_push_then_refine_then_poll(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The three pieces of the seed fit together: push, the Lambda, the poller."""
    from pipeline.refiner import handler as refiner

    monkeypatch.setenv("REFINER_OUTPUT_PREFIX", "/RefinerOutput/")
    monkeypatch.setenv("REFINER_COMPLETE_PREFIX", "/RefinerComplete/")
    source = tmp_path / "hello.txt"
    source.write_text("hi there\n")
    assert push.main([str(source)]) == 0
    head = s3.head_object(Bucket=BUCKET, Key="RefinerInput/hello.txt")
    body = {
        "detail": {
            "bucket": {"name": BUCKET},
            "object": {"key": "RefinerInput/hello.txt", "etag": head["ETag"].strip('"')},
        }
    }
    result = refiner.handler({"Records": [{"messageId": "m", "body": json.dumps(body)}]}, None)
    assert result == {"batchItemFailures": []}

    out = io.StringIO()
    assert poller.main(["--once", "--bucket", BUCKET], out=out) == 0
    manifest = json.loads(read(s3, "RefinerComplete/hello.txt.json"))
    assert len(manifest) == 2
    assert out.getvalue() == (
        "manifest RefinerComplete/hello.txt.json: 2 outputs\n"
        f"--- {manifest[0]}\nhi there\n\n"
        f"--- {manifest[1]}\nhi there\n\n"
    )
