"""harness.runtime.ec2_instances: user-data parsing and the instance-metadata endpoint."""

from __future__ import annotations

import json
import threading
import urllib.request

from harness.runtime.ec2_instances import _Metadata, parse_exports

SCRIPT = """#!/bin/bash
set -euo pipefail
export AWS_REGION=us-east-1
export SQS_QUEUE_URL='http://127.0.0.1:5000/123456789012/tracker-work'
export ODD='it'"'"'s $HOME "quoted"'
export LOG_FILE=/home/ubuntu/sqs_worker.logs  # trailing comment
aws s3 cp "$WORKER_SCRIPT_S3_URI" /home/ubuntu/sqs_worker.py
"""


def test_parse_exports_reads_shell_quoting() -> None:
    assert parse_exports(SCRIPT) == {
        "AWS_REGION": "us-east-1",
        "SQS_QUEUE_URL": "http://127.0.0.1:5000/123456789012/tracker-work",
        "ODD": 'it\'s $HOME "quoted"',
        "LOG_FILE": "/home/ubuntu/sqs_worker.logs",
    }


def test_metadata_endpoint_serves_imdsv2() -> None:
    server = _Metadata({"instance_id": "i-0abc", "region": "us-east-1", "role": "worker", "account": "1"})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        put = urllib.request.Request(
            f"{base}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        )
        token = urllib.request.urlopen(put, timeout=2).read().decode()
        get = urllib.request.Request(
            f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
        )
        assert urllib.request.urlopen(get, timeout=2).read().decode() == "i-0abc"
        creds = urllib.request.urlopen(f"{base}/latest/meta-data/iam/security-credentials/worker", timeout=2)
        assert json.loads(creds.read())["AccessKeyId"] == "test"
        bad = urllib.request.Request(
            f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": "x"}
        )
        try:
            urllib.request.urlopen(bad, timeout=2)
            raise AssertionError("a wrong token must be refused")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        server.shutdown()
        server.server_close()
