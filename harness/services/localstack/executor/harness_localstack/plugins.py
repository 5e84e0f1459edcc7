"""LocalStack plugins (plux entry points) that the harness selects through environment variables.

- `localstack.lambda.runtime_executor` `harness`: selected by `LAMBDA_RUNTIME_EXECUTOR=harness`;
  see `harness_localstack.executor`. Loading it also makes event-source mappings records only.
- `localstack.aws.provider` `s3:harness`: selected by `PROVIDER_OVERRIDE_S3=harness`; LocalStack's
  own S3 provider with its object storage under this instance's TMPDIR.
- `localstack.hooks.on_infra_start` `harness_data_plane`: process-wide patches that must be in
  place before any helper process starts or any request is served.

This module is imported while LocalStack discovers plugins, so it imports only what LocalStack
has already loaded by then.
"""

from __future__ import annotations

from typing import Any

from localstack.runtime import hooks
from localstack.services.lambda_.invocation.plugins import (
    RuntimeExecutorPlugin,
)
from localstack.services.plugins import Service, aws_provider

from . import data_plane


class HarnessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "harness"

    def load(self, *args: Any, **kwargs: Any) -> type:
        from .executor import HarnessRuntimeExecutor

        # The Lambda provider loads its executor in on_after_init, before it can create any
        # event-source mapping worker: the one place to patch ESMs without importing the Lambda
        # modules at start-up (about a second) or overriding the whole Lambda provider.
        if data_plane.enabled():
            data_plane.make_event_source_mappings_records_only()
            data_plane.lambda_vpc_from_companion()
        return HarnessRuntimeExecutor


@aws_provider(api="s3", name="harness")
def s3_harness() -> Any:
    from localstack.services.s3.provider import S3Provider
    from localstack.services.s3.storage.ephemeral import (
        EphemeralS3ObjectStore,
    )

    if not data_plane.enabled():
        return Service.for_provider(S3Provider())
    storage = EphemeralS3ObjectStore(data_plane.private_s3_storage_dir())
    return Service.for_provider(S3Provider(storage_backend=storage))


@hooks.on_infra_start()
def harness_data_plane() -> None:
    if data_plane.enabled():
        data_plane.keep_helper_processes_in_group()
