"""A LocalStack Lambda runtime executor for a harness that runs Lambda code itself.

LocalStack's only community executor starts a Docker container per execution environment and
its `prepare_version` pulls a runtime image; without Docker a function ends in state `Failed`
and Terraform's create waits and errors. In this project LocalStack is a data plane only: the
harness reads the Terraform state and runs every Lambda handler itself, with its own clock,
fault injection and event-source mappings.

Choice: LocalStack never executes code. `prepare_version` does nothing, so a function reaches
state `Active` as soon as LocalStack has stored it. If LocalStack itself is asked to run a
function (a direct Invoke against the emulator, an EventBridge/SNS/S3 target, an async retry),
the invocation fails with function error `HarnessOwnsCompute` and a message that says so.
Running the handler here as well would execute it twice (once by LocalStack, once by the
harness) with a different clock and no fault plan, which would make scenarios lie.

So that the harness can still see those pushes, each refused invocation is appended as one JSON
line to the file named by `HARNESS_LAMBDA_INVOCATION_LOG` (when set): time, function ARN,
qualifier, request id and the payload LocalStack wanted to deliver.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime

from localstack import config
from localstack.services.lambda_.invocation.lambda_models import (
    FunctionVersion,
    InvocationResult,
)
from localstack.services.lambda_.invocation.runtime_executor import (
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)

INVOCATION_LOG_ENV = "HARNESS_LAMBDA_INVOCATION_LOG"
ERROR_TYPE = "HarnessOwnsCompute"

_log_lock = threading.Lock()


def refusal_message(function_arn: str) -> str:
    return (
        f"LocalStack does not run Lambda code in this harness: {function_arn} is executed by the "
        "pipeline harness from the Terraform state. This invocation was sent to LocalStack itself "
        "(a direct Invoke, an EventBridge/SNS/S3 target, or a retry); it was recorded, not run. "
        "Invoke functions through the harness runtime instead."
    )


def record_invocation(function_version: FunctionVersion, payload: dict[str, str]) -> None:
    """Append the refused invocation to the harness's JSON-lines log, if one is configured."""
    path = os.environ.get(INVOCATION_LOG_ENV)
    if not path:
        return
    entry = {
        "time": datetime.now(UTC).isoformat(),
        "function_name": function_version.id.function_name,
        "function_arn": function_version.id.unqualified_arn(),
        "qualifier": function_version.id.qualifier,
        "request_id": payload.get("invoke-id"),
        "invoked_function_arn": payload.get("invoked-function-arn"),
        "payload": payload.get("payload"),
    }
    line = json.dumps(entry, sort_keys=True) + "\n"
    # Several execution environments may refuse at once; keep lines whole.
    with _log_lock, open(path, "a", encoding="utf-8") as handle:
        handle.write(line)


class HarnessRuntimeExecutor(RuntimeExecutor):
    """An execution environment with no process behind it: ready at once, refuses to invoke."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)

    def start(self, env_vars: dict[str, str]) -> None:
        # Nothing to boot: the environment is "ready" so that LocalStack reaches invoke() and
        # returns a clear function error instead of a start-up timeout.
        return None

    def stop(self) -> None:
        return None

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://127.0.0.1:{port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        arn = self.function_version.qualified_arn
        record_invocation(self.function_version, payload)
        LOG.warning("Refused to run %s inside LocalStack: the harness owns Lambda compute", arn)
        body = {"errorType": ERROR_TYPE, "errorMessage": refusal_message(arn)}
        return InvocationResult(
            request_id=payload.get("invoke-id", ""),
            payload=json.dumps(body).encode(),
            is_error=True,
            logs=f"{ERROR_TYPE}: {body['errorMessage']}\n",
        )

    def get_logs(self) -> str:
        return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        # No image to pull and no code to unpack: this is what makes functions go Active.
        return None

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        return None

    @classmethod
    def validate_environment(cls) -> bool:
        return True
