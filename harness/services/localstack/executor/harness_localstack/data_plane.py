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
- Lambda's CreateFunction resolves the VPC of a `vpc_config` subnet in the EC2 that holds it:
  with the harness, EC2 (and every VPC, subnet and security group Terraform created) is
  served by the moto companion beside LocalStack (HARNESS_EC2_ENDPOINT), because the RDS,
  EFS and ElastiCache control planes that live there validate their subnets in it. LocalStack
  would look in its own EC2 and refuse every VPC function with InvalidSubnetID.NotFound.
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


def lambda_vpc_from_companion() -> None:
    endpoint = os.environ.get("HARNESS_EC2_ENDPOINT")
    if not endpoint:
        return
    import boto3
    from botocore.exceptions import ClientError
    from localstack.aws.api.lambda_ import InvalidParameterValueException
    from localstack.services.lambda_.provider import LambdaProvider

    def resolve_vpc_id(self: Any, account_id: str, region_name: str, subnet_id: str) -> str:
        ec2 = boto3.client(
            "ec2",
            endpoint_url=endpoint,
            region_name=region_name,
            aws_access_key_id=account_id,
            aws_secret_access_key="test",
        )
        try:
            return str(ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["VpcId"])
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise InvalidParameterValueException(
                f"Error occurred while DescribeSubnets. EC2 Error Code: {error.get('Code')}. "
                f"EC2 Error Message: {error.get('Message')}",
                Type="User",
            ) from None

    LambdaProvider._resolve_vpc_id = resolve_vpc_id
    LOG.info("harness: Lambda resolves VPC subnets in the EC2 at %s", endpoint)
