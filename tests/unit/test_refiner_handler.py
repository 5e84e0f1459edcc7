"""The refiner Lambda against moto's in-process S3: copies, manifest, idempotency, failures."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import quote_plus

import pytest
from moto.core.models import MockAWS

from pipeline.common import aws
from pipeline.common.events import S3ObjectRef
from pipeline.refiner import handler as refiner

BUCKET = "data-repository"
UUID_TXT = re.compile(r"RefinerOutput/[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\.txt")


@pytest.fixture
def s3(aws_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REFINER_OUTPUT_PREFIX", "/RefinerOutput/")
    monkeypatch.setenv("REFINER_COMPLETE_PREFIX", "/RefinerComplete/")
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def put(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    response = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return {"etag": response["ETag"].strip('"'), "version_id": response.get("VersionId")}


def eventbridge_event(
    key: str, etag: str | None, version_id: str | None, bucket: str = BUCKET
) -> dict[str, Any]:
    """What S3 puts on the bus for Object Created (the key URL-encoded, as S3 sends it)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1, "sequencer": "0001"}
    if etag is not None:
        obj["etag"] = etag
    if version_id is not None:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-15T07:59:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "ABC",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:RefinerInput",
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def keys_under(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def versions_of(s3: Any, key: str) -> list[dict[str, Any]]:
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    return [v for v in listing.get("Versions", []) if v["Key"] == key]


def read(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_writes_two_identical_copies_and_a_manifest(s3: Any) -> None:
    body = b"Hello, world!\nThis file goes through the refiner.\n"
    meta = put(s3, "RefinerInput/helloworld.txt", body)
    event = sqs_event(sqs_record("m-1", json.dumps(eventbridge_event("RefinerInput/helloworld.txt", **meta))))

    result = refiner.handler(event, None)

    assert result == {"batchItemFailures": []}
    copies = keys_under(s3, "RefinerOutput/")
    assert len(copies) == 2
    assert copies[0] != copies[1]
    for key in copies:
        assert UUID_TXT.fullmatch(key), key
        assert read(s3, key) == body
    assert keys_under(s3, "RefinerComplete/") == ["RefinerComplete/helloworld.txt.json"]
    manifest = json.loads(read(s3, "RefinerComplete/helloworld.txt.json"))
    ref = S3ObjectRef(BUCKET, "RefinerInput/helloworld.txt", meta["etag"], meta["version_id"])
    expected = ["/" + k for k in refiner.output_keys(ref, "RefinerOutput/")]
    assert manifest == expected
    assert sorted(manifest) == ["/" + k for k in copies]
    # The input object is left where it was.
    assert read(s3, "RefinerInput/helloworld.txt") == body


def test_manifest_has_json_content_type(s3: Any) -> None:
    meta = put(s3, "RefinerInput/a.txt", b"a")
    refiner.handler(
        sqs_event(sqs_record("m", json.dumps(eventbridge_event("RefinerInput/a.txt", **meta)))), None
    )
    head = s3.head_object(Bucket=BUCKET, Key="RefinerComplete/a.txt.json")
    assert head["ContentType"] == "application/json"


def test_redelivery_writes_nothing_new(s3: Any) -> None:
    meta = put(s3, "RefinerInput/dup.txt", b"same bytes")
    event = sqs_event(sqs_record("m-1", json.dumps(eventbridge_event("RefinerInput/dup.txt", **meta))))

    assert refiner.handler(event, None) == {"batchItemFailures": []}
    copies_first = keys_under(s3, "RefinerOutput/")
    manifest_head = s3.head_object(Bucket=BUCKET, Key="RefinerComplete/dup.txt.json")

    assert refiner.handler(event, None) == {"batchItemFailures": []}

    assert keys_under(s3, "RefinerOutput/") == copies_first
    assert len(versions_of(s3, "RefinerComplete/dup.txt.json")) == 1
    for key in copies_first:
        assert len(versions_of(s3, key)) == 1
    again = s3.head_object(Bucket=BUCKET, Key="RefinerComplete/dup.txt.json")
    assert again["VersionId"] == manifest_head["VersionId"]
    assert again["ETag"] == manifest_head["ETag"]


def test_redelivery_with_a_new_message_id_is_still_idempotent(s3: Any) -> None:
    meta = put(s3, "RefinerInput/dup.txt", b"same bytes")
    body = json.dumps(eventbridge_event("RefinerInput/dup.txt", **meta))
    refiner.handler(sqs_event(sqs_record("m-1", body)), None)
    refiner.handler(sqs_event(sqs_record("m-2", body)), None)
    assert len(keys_under(s3, "RefinerOutput/")) == 2
    assert len(versions_of(s3, "RefinerComplete/dup.txt.json")) == 1


def test_new_version_of_input_yields_new_copy_ids(s3: Any) -> None:
    first = put(s3, "RefinerInput/v.txt", b"version one")
    refiner.handler(
        sqs_event(sqs_record("m-1", json.dumps(eventbridge_event("RefinerInput/v.txt", **first)))), None
    )
    copies_v1 = set(keys_under(s3, "RefinerOutput/"))
    manifest_v1 = json.loads(read(s3, "RefinerComplete/v.txt.json"))

    second = put(s3, "RefinerInput/v.txt", b"version two")
    assert second["version_id"] != first["version_id"]
    refiner.handler(
        sqs_event(sqs_record("m-2", json.dumps(eventbridge_event("RefinerInput/v.txt", **second)))), None
    )

    copies_all = set(keys_under(s3, "RefinerOutput/"))
    copies_v2 = copies_all - copies_v1
    assert len(copies_all) == 4
    assert len(copies_v2) == 2
    for key in copies_v2:
        assert read(s3, key) == b"version two"
    for key in copies_v1:
        assert read(s3, key) == b"version one"
    manifest_v2 = json.loads(read(s3, "RefinerComplete/v.txt.json"))
    assert sorted(manifest_v2) == sorted("/" + k for k in copies_v2)
    assert set(manifest_v2).isdisjoint(manifest_v1)
    assert len(versions_of(s3, "RefinerComplete/v.txt.json")) == 2


def test_reads_the_version_named_by_the_event_not_the_latest(s3: Any) -> None:
    first = put(s3, "RefinerInput/old.txt", b"old content")
    put(s3, "RefinerInput/old.txt", b"new content")
    event = sqs_event(sqs_record("m-1", json.dumps(eventbridge_event("RefinerInput/old.txt", **first))))
    assert refiner.handler(event, None) == {"batchItemFailures": []}
    copies = keys_under(s3, "RefinerOutput/")
    assert [read(s3, k) for k in copies] == [b"old content", b"old content"]


def test_without_version_id_the_etag_decides_the_copy_ids(s3: Any) -> None:
    meta = put(s3, "RefinerInput/e.txt", b"etag only")
    event = eventbridge_event("RefinerInput/e.txt", etag=meta["etag"], version_id=None)
    assert refiner.handler(sqs_event(sqs_record("m-1", json.dumps(event))), None) == {"batchItemFailures": []}
    ref = S3ObjectRef(BUCKET, "RefinerInput/e.txt", meta["etag"], None)
    assert keys_under(s3, "RefinerOutput/") == sorted(refiner.output_keys(ref, "RefinerOutput/"))


def test_url_encoded_key_is_decoded_before_reading(s3: Any) -> None:
    key = "RefinerInput/a b!.txt"
    meta = put(s3, key, b"spaced")
    event = eventbridge_event(key, **meta)
    assert event["detail"]["object"]["key"] == "RefinerInput/a+b%21.txt"
    assert refiner.handler(sqs_event(sqs_record("m-1", json.dumps(event))), None) == {"batchItemFailures": []}
    assert keys_under(s3, "RefinerComplete/") == ["RefinerComplete/a b!.txt.json"]
    assert [read(s3, k) for k in keys_under(s3, "RefinerOutput/")] == [b"spaced", b"spaced"]


def test_prefixes_come_from_the_environment(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFINER_OUTPUT_PREFIX", "/Elsewhere/Out")
    monkeypatch.setenv("REFINER_COMPLETE_PREFIX", "Done/")
    meta = put(s3, "RefinerInput/p.txt", b"p")
    refiner.handler(
        sqs_event(sqs_record("m", json.dumps(eventbridge_event("RefinerInput/p.txt", **meta)))), None
    )
    outs = keys_under(s3, "Elsewhere/Out/")
    assert len(outs) == 2
    assert keys_under(s3, "RefinerOutput/") == []
    assert sorted(json.loads(read(s3, "Done/p.txt.json"))) == ["/" + k for k in outs]


@pytest.mark.parametrize(
    "bad_body",
    [
        "not json at all",
        json.dumps(["a", "list"]),
        json.dumps({"detail-type": "Object Created", "detail": {"bucket": {"name": BUCKET}}}),
        json.dumps({"detail": None}),
    ],
    ids=["not-json", "json-list", "no-object", "null-detail"],
)
def test_malformed_record_fails_alone(s3: Any, bad_body: str) -> None:
    meta = put(s3, "RefinerInput/good.txt", b"good")
    good = sqs_record("good-id", json.dumps(eventbridge_event("RefinerInput/good.txt", **meta)))
    event = sqs_event(sqs_record("bad-id", bad_body), good)

    assert refiner.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "bad-id"}]}
    assert len(keys_under(s3, "RefinerOutput/")) == 2
    assert keys_under(s3, "RefinerComplete/") == ["RefinerComplete/good.txt.json"]


def test_missing_input_object_fails_that_record_only(s3: Any) -> None:
    meta = put(s3, "RefinerInput/good.txt", b"good")
    missing = eventbridge_event("RefinerInput/gone.txt", etag="0" * 32, version_id=None)
    missing_versioned = eventbridge_event(
        "RefinerInput/good.txt", etag="0" * 32, version_id="no-such-version"
    )
    event = sqs_event(
        sqs_record("missing-1", json.dumps(missing)),
        sqs_record("good-1", json.dumps(eventbridge_event("RefinerInput/good.txt", **meta))),
        sqs_record("missing-2", json.dumps(missing_versioned)),
    )

    result = refiner.handler(event, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "missing-1"}, {"itemIdentifier": "missing-2"}]}
    assert keys_under(s3, "RefinerComplete/") == ["RefinerComplete/good.txt.json"]
    assert len(keys_under(s3, "RefinerOutput/")) == 2


def test_missing_bucket_fails_the_record(s3: Any) -> None:
    event = eventbridge_event("RefinerInput/x.txt", etag="e", version_id=None, bucket="no-such-bucket")
    assert refiner.handler(sqs_event(sqs_record("m-x", json.dumps(event))), None) == {
        "batchItemFailures": [{"itemIdentifier": "m-x"}]
    }


def test_empty_event_has_no_failures(s3: Any) -> None:
    assert refiner.handler({"Records": []}, None) == {"batchItemFailures": []}
    assert refiner.handler({}, None) == {"batchItemFailures": []}


def test_output_keys_are_stable_and_distinct() -> None:
    ref = S3ObjectRef("b", "RefinerInput/x.txt", "etag", "v1")
    first = refiner.output_keys(ref, "Out/")
    assert first == refiner.output_keys(ref, "Out/")
    assert len(set(first)) == 2
    assert all(k.startswith("Out/") and k.endswith(".txt") for k in first)
    other_version = refiner.output_keys(S3ObjectRef("b", "RefinerInput/x.txt", "etag", "v2"), "Out/")
    assert set(first).isdisjoint(other_version)
    other_key = refiner.output_keys(S3ObjectRef("b", "RefinerInput/y.txt", "etag", "v1"), "Out/")
    assert set(first).isdisjoint(other_key)
    # The version id wins over the ETag when both are known.
    same_version = refiner.output_keys(S3ObjectRef("b", "RefinerInput/x.txt", "other-etag", "v1"), "Out/")
    assert same_version == first


def test_manifest_key_uses_the_base_name() -> None:
    ref = S3ObjectRef("b", "RefinerInput/deep/dir/name.csv", None, None)
    assert refiner.manifest_key(ref, "RefinerComplete/") == "RefinerComplete/name.csv.json"
