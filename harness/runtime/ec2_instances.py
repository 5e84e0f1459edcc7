"""EC2 instances, run by the harness as local processes for as long as the emulator says so.

The emulator only records instances. When it reports one as running, the harness does what
the instance would (see user_data.py): it checks the user data (bash -n, shellcheck), carries
it out inside the instance's own root directory (packages, downloads from the emulator's S3,
virtual environments built with the script's own pip arguments) and starts the process it
leaves running, with the exported environment, plus an instance-metadata endpoint of its own
(`AWS_EC2_METADATA_SERVICE_ENDPOINT`, which botocore honours) so the process can learn its
instance id and role. A boot that fails is recorded with its reason. When the emulator
reports the instance stopping or terminated (the worker terminating itself included), the
process is stopped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runtime import user_data
from harness.runtime.lambda_runtime import RuntimeSettings
from harness.runtime.user_data import UserDataError, UserDataRunner

#: The worker's SQS long poll; shortened so an idle worker notices the virtual clock quickly.
HARNESS_OVERRIDES = {"WORKER_POLL_SECONDS": "1"}
GONE = ("shutting-down", "terminated", "stopping", "stopped")


class _Metadata(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, document: dict[str, str]) -> None:
        self.document = document
        self.token = uuid.uuid4().hex
        super().__init__(("127.0.0.1", 0), _MetadataHandler)


class _MetadataHandler(BaseHTTPRequestHandler):
    server: _Metadata

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        if self.path == "/latest/api/token":
            self._send(200, self.server.token)
        else:
            self._send(404, "not found")

    def do_GET(self) -> None:
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is not None and token != self.server.token:
            self._send(401, "invalid token")
            return
        doc = self.server.document
        role = doc.get("role", "")
        paths = {
            "/latest/meta-data/instance-id": doc["instance_id"],
            "/latest/meta-data/instance-type": doc.get("instance_type", ""),
            "/latest/meta-data/ami-id": doc.get("image_id", ""),
            "/latest/meta-data/placement/region": doc["region"],
            "/latest/meta-data/placement/availability-zone": doc.get("zone", f"{doc['region']}a"),
            "/latest/meta-data/iam/security-credentials/": role,
        }
        if self.path in paths:
            self._send(200, paths[self.path])
        elif role and self.path == f"/latest/meta-data/iam/security-credentials/{role}":
            creds = {
                "Code": "Success",
                "Type": "AWS-HMAC",
                "AccessKeyId": "test",
                "SecretAccessKey": "test",
                "Token": "test",
                "Expiration": "2099-01-01T00:00:00Z",
            }
            self._send(200, json.dumps(creds), "application/json")
        elif self.path == "/latest/dynamic/instance-identity/document":
            identity = {
                "instanceId": doc["instance_id"],
                "region": doc["region"],
                "accountId": doc.get("account", ""),
                "imageId": doc.get("image_id", ""),
                "instanceType": doc.get("instance_type", ""),
            }
            self._send(200, json.dumps(identity), "application/json")
        else:
            self._send(404, "not found")


@dataclass
class InstanceProcess:
    instance_id: str
    tags: dict[str, str]
    process: subprocess.Popen[bytes] | None
    metadata: _Metadata | None
    directory: Path
    environment: dict[str, str]
    started_at: str
    exit_code: int | None = None
    note: str = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def queue_url(self) -> str | None:
        return self.environment.get("SQS_QUEUE_URL")


@dataclass(frozen=True)
class InstanceEvent:
    kind: str  # started | stopped | failed
    instance_id: str
    detail: str
    virtual_time: str


@dataclass
class Ec2InstanceRunner:
    ec2: Any
    s3: Any
    settings: RuntimeSettings
    work_dir: Path
    virtual_now: Callable[[], str] = lambda: ""
    on_event: Callable[[InstanceEvent], None] | None = None
    interval: float = 0.2
    instances: dict[str, InstanceProcess] = field(default_factory=dict)
    events: list[InstanceEvent] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pending: set[str] = field(default_factory=set)
    #: instances that existed at the last reset (moto keeps listing terminated ones)
    baseline: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    #: instances whose user data could not run (each fails its scenario)
    boot_failures: list[str] = field(default_factory=list)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="ec2-instances", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for inst in self.instances.values():
                self._end(inst, "harness stopping")

    # -- watching the emulator ---------------------------------------------------------------

    def _describe(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self.ec2.get_paginator("describe_instances").paginate():
            for reservation in page.get("Reservations", []):
                found.extend(reservation.get("Instances", []))
        return found

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - keep watching through emulator hiccups
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def sync(self) -> None:
        """Start processes for newly running instances; stop those of instances that are gone."""
        described = self._describe()
        pending: set[str] = set()
        with self._lock:
            for inst in described:
                instance_id, state = inst["InstanceId"], inst.get("State", {}).get("Name", "")
                known = self.instances.get(instance_id)
                if state == "pending":
                    pending.add(instance_id)
                elif state == "running" and known is None:
                    self.instances[instance_id] = self._launch(inst)
                elif state in GONE and known is not None and known.exit_code is None:
                    self._end(known, f"instance {state}")
            self._pending = pending

    def _user_data(self, instance_id: str) -> str:
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = (attr.get("UserData") or {}).get("Value") or ""
        return base64.b64decode(encoded).decode(errors="replace") if encoded else ""

    def _launch(self, inst: dict[str, Any]) -> InstanceProcess:
        instance_id = inst["InstanceId"]
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        directory = self.work_dir / instance_id
        root = directory / "root"
        root.mkdir(parents=True, exist_ok=True)
        script = self._user_data(instance_id)
        record = InstanceProcess(instance_id, tags, None, None, directory, {}, self.virtual_now())
        (directory / "user-data").write_text(script)
        try:
            if not script.strip():
                raise UserDataError("the instance has no user data: nothing to run")
            warnings = user_data.check(script)
            runner = UserDataRunner(root, self._fetch, f"instance {instance_id}")
            boot = runner.run(script)
        except HarnessError as exc:
            record.note = exc.message
            self.errors.append(f"{instance_id}: {exc.message}")
            self.boot_failures.append(f"instance {instance_id} did not boot: {exc.message}")
            self._event("failed", record, exc.message)
            return record
        with (directory / "boot-notes.txt").open("a") as notes:
            notes.writelines(f"{note}\n" for note in [*warnings, *boot.notes])
        declared = {name: runner.local_value(value) for name, value in boot.env.items()}
        role = (inst.get("IamInstanceProfile") or {}).get("Arn", "").rsplit("/", 1)[-1]
        metadata = _Metadata(
            {
                "instance_id": instance_id,
                "region": self.settings.region,
                "instance_type": inst.get("InstanceType", ""),
                "image_id": inst.get("ImageId", ""),
                "zone": (inst.get("Placement") or {}).get("AvailabilityZone", ""),
                "account": inst.get("OwnerId", ""),
                "role": role,
            }
        )
        threading.Thread(target=metadata.serve_forever, name=f"imds-{instance_id}", daemon=True).start()
        host, port = metadata.server_address[:2]
        own = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{host!s}:{port}", **HARNESS_OVERRIDES}
        env = self.settings.process_environment(
            home=root / "root", python_path=[], own=own, declared=declared
        )
        env.update(HARNESS_OVERRIDES)
        log = boot.log or directory / "console.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        console = log.open("ab")
        try:
            record.process = subprocess.Popen(
                boot.argv,
                env=env,
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            console.close()
        record.metadata = metadata
        record.environment = declared
        self._event("started", record, " ".join(boot.argv[1:]))
        return record

    def _fetch(self, bucket: str, key: str) -> bytes:
        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as exc:  # noqa: BLE001 - the boot fails with the reason
            raise UserDataError(f"aws s3 cp s3://{bucket}/{key}: {exc}") from None

    def _end(self, inst: InstanceProcess, reason: str) -> None:
        if inst.process is not None and inst.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(inst.process.pid, signal.SIGTERM)
            try:
                inst.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.process.pid, signal.SIGKILL)
                inst.process.wait(timeout=5)
        if inst.metadata is not None:
            inst.metadata.shutdown()
            inst.metadata.server_close()
            inst.metadata = None
        inst.exit_code = inst.process.returncode if inst.process is not None else None
        if inst.exit_code is None:
            inst.exit_code = 0
        self._event("stopped", inst, reason)

    def _event(self, kind: str, inst: InstanceProcess, detail: str) -> None:
        event = InstanceEvent(kind, inst.instance_id, detail, self.virtual_now())
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # -- what the session reads ----------------------------------------------------------------

    @property
    def starting(self) -> bool:
        """An instance is pending, or running in the emulator but not yet started here."""
        return bool(self._pending)

    def running(self) -> list[InstanceProcess]:
        with self._lock:
            return [i for i in self.instances.values() if i.running]

    def interrupt(self, instance_id: str | None = None) -> list[str]:
        """Kill running workers mid-work (SIGKILL, no chance to clean up) and terminate their
        instances, as a Spot interruption or a host failure would; returns the instance ids."""
        with self._lock:
            hit = [i for i in self.instances.values() if i.running and instance_id in (None, i.instance_id)]
            for inst in hit:
                assert inst.process is not None
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.process.pid, signal.SIGKILL)
            if hit:
                self.ec2.terminate_instances(InstanceIds=[i.instance_id for i in hit])
            for inst in hit:
                self._end(inst, "interrupted by the harness")
        return [i.instance_id for i in hit]

    def reset(self) -> None:
        """Terminate every instance of the last scenario, in the emulator and here."""
        with self._lock:
            live = [i["InstanceId"] for i in self._describe() if i.get("State", {}).get("Name") not in GONE]
            if live:
                self.ec2.terminate_instances(InstanceIds=live)
            for inst in self.instances.values():
                if inst.exit_code is None:
                    self._end(inst, "reset between scenarios")
            self.events.clear()
            self.boot_failures.clear()
            self._pending = set()
            self.baseline = {i["InstanceId"] for i in self._describe()}

    def scenario_instances(self) -> list[dict[str, Any]]:
        """The emulator's view of the instances launched since the last reset."""
        return [i for i in self._describe() if i["InstanceId"] not in self.baseline]
