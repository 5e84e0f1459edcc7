"""harness.runtime.ec2_instances: the instance-metadata endpoint."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from pathlib import Path

from harness.runtime.ec2_instances import Ec2InstanceRunner, _Metadata
from harness.runtime.lambda_runtime import RuntimeSettings


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


class _Ec2:
    def __init__(self, script: str) -> None:
        self.script = script

    def describe_instance_attribute(self, InstanceId: str, Attribute: str) -> dict[str, object]:
        return {"UserData": {"Value": base64.b64encode(self.script.encode()).decode()}}


def test_user_data_that_cannot_run_is_a_boot_failure(tmp_path: Path) -> None:
    """The instance would sit there doing nothing: the failure names it and fails the scenario."""
    runner = Ec2InstanceRunner(
        _Ec2("#!/bin/bash\nexport A=1\ncurl -o /tmp/x https://example.com\n"),
        s3=None,
        settings=RuntimeSettings(endpoint_url="http://127.0.0.1:9"),
        work_dir=tmp_path,
    )
    record = runner._launch({"InstanceId": "i-0bad", "Tags": []})
    assert record.process is None
    assert runner.boot_failures == [
        "instance i-0bad did not boot: instance i-0bad: user data line 3 "
        "(curl -o /tmp/x https://example.com): `curl` is not a command the harness carries out on the host"
    ]
    assert [e.kind for e in runner.events] == ["failed"]
    assert (tmp_path / "i-0bad" / "user-data").read_text().startswith("#!/bin/bash")
