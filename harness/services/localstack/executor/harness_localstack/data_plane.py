"""Patches that keep LocalStack a pure data plane and let several instances share one host.

Each one is applied where LocalStack would otherwise do work the harness owns, or touch state
outside its own FILESYSTEM_ROOT/TMPDIR:

- Event-source mappings are kept as records. LocalStack's ESM worker would poll the SQS queue
  (or DynamoDB stream) itself, receive messages, try to invoke the function and, because the
  harness executor refuses, leave them to be redelivered: every receive would raise
  ApproximateReceiveCount and race the harness's own poller to the dead-letter queue. The
  worker still moves through Creating/Enabled/Disabled/Deleting, so Terraform and the API see
  a normal mapping; its poller just never reads the source.
- S3 object storage goes to `<TMPDIR>/localstack-s3-storage` instead of the hard-coded
  `/tmp/localstack-s3-storage` that every LocalStack on the host would share. Object bytes
  live in per-process spooled files, but bucket directories in that root are created and
  `rmtree`d by name, so one instance deleting bucket `x` would pull the directory out from
  under another instance's large (>512 KiB) objects in its own bucket `x`.
- Helper processes (DynamoDB Local's JVM, the kinesis mock behind DynamoDB Streams) stay in
  LocalStack's process group. LocalStack starts them with `start_new_session=True`, so a
  SIGKILL of LocalStack's group would orphan them; in one group, one `killpg` stops all, and
  the harness's sweep of dead runs finds them too.
- EC2 RunInstances finds instance profiles in LocalStack's own IAM store. Since LocalStack
  2026.3 keeps instance profiles there instead of in moto's IAM backend, while its EC2 (still
  moto) validates `IamInstanceProfile` against moto's backend: every RunInstances with a
  profile fails with NoSuchEntity although Terraform created the profile.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

LOG = logging.getLogger(__name__)

#: Set by the harness when it starts LocalStack; without it the plugins change nothing.
ENABLE_ENV = "HARNESS_DATA_PLANE"


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "") == "1"


def private_s3_storage_dir() -> str:
    # tempfile honours TMPDIR, which the harness points into the run directory.
    return os.path.join(tempfile.gettempdir(), "localstack-s3-storage")


class RecordOnlyPoller:
    """Stands in for an ESM poller: reports an empty source on every poll, reads nothing."""

    def __init__(self, wrapped: Any, source_arn: str) -> None:
        self._wrapped = wrapped
        self._source_arn = source_arn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def poll_events(self) -> None:
        from localstack.services.lambda_.event_source_mapping.pollers.poller import (
            EmptyPollResultsException,
        )

        # "Empty" makes the worker back off (up to 10 s) and wake promptly on disable/delete.
        raise EmptyPollResultsException(service="harness", source_arn=self._source_arn)

    def close(self) -> None:
        self._wrapped.close()


def make_event_source_mappings_records_only() -> None:
    from localstack.services.lambda_.event_source_mapping.esm_worker_factory import (
        EsmWorkerFactory,
    )

    original = EsmWorkerFactory.get_esm_worker
    if getattr(original, "harness_patched", False):
        return

    def get_esm_worker(self: Any) -> Any:
        worker = original(self)
        source = worker.esm_config.get("EventSourceArn") or ""
        worker.poller = RecordOnlyPoller(worker.poller, source)
        return worker

    get_esm_worker.harness_patched = True  # type: ignore[attr-defined]
    EsmWorkerFactory.get_esm_worker = get_esm_worker
    LOG.info("harness: event-source mappings are records only (the harness polls)")


def keep_helper_processes_in_group() -> None:
    import localstack.utils.run as ls_run

    # `run()` is the only user of these names in that module: it adds start_new_session=True
    # on Linux and macOS. Reporting "neither" leaves helpers in LocalStack's process group.
    ls_run.is_linux = lambda: False
    ls_run.is_mac_os = lambda: False


class _ProfileRef:
    """What moto's EC2 reads of an instance profile: its ARN, id and name."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.arn = profile.get("Arn", "")
        self.id = profile.get("InstanceProfileId", "")
        self.name = profile.get("InstanceProfileName", "")


def ec2_instance_profiles_from_iam_store() -> None:
    import moto.ec2.models.iam_instance_profile as ec2_profiles
    import moto.ec2.responses.instances as ec2_instances
    import moto.ec2.utils as ec2_utils
    from moto.iam.exceptions import NotFoundException

    original = ec2_utils.filter_iam_instance_profiles
    if getattr(original, "harness_patched", False):
        return

    def from_localstack(account_id: str, arn: str | None, name: str | None) -> Any:
        from localstack.services.iam.models import iam_stores

        # Instance profiles are a cross-region attribute: any region sees them all.
        store = iam_stores[account_id]["us-east-1"]
        for entity in store.INSTANCE_PROFILES.values():
            profile = entity.instance_profile
            if (not arn or profile.get("Arn") == arn) and (
                not name or profile.get("InstanceProfileName") == name
            ):
                return _ProfileRef(profile)
        return None

    def filter_iam_instance_profiles(
        account_id: str,
        partition: str,
        iam_instance_profile_arn: str | None,
        iam_instance_profile_name: str | None,
    ) -> Any:
        try:
            return original(account_id, partition, iam_instance_profile_arn, iam_instance_profile_name)
        except NotFoundException:
            found = from_localstack(account_id, iam_instance_profile_arn, iam_instance_profile_name)
            if found is None:
                raise
            return found

    filter_iam_instance_profiles.harness_patched = True  # type: ignore[attr-defined]
    # Both callers imported the name, so each module's binding is replaced.
    for module in (ec2_utils, ec2_instances, ec2_profiles):
        module.filter_iam_instance_profiles = filter_iam_instance_profiles  # type: ignore[attr-defined]
    LOG.info("harness: EC2 finds instance profiles in LocalStack's IAM store")
