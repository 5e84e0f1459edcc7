"""harness.runtime.ec2_instances: the instance-metadata endpoint."""

from __future__ import annotations

import json
import threading
import urllib.request

from harness.runtime.ec2_instances import _Metadata


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
