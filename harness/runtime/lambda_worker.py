"""The process that hosts one Lambda function, like a warm Lambda sandbox.

Started by `FunctionWorker` as a standalone script on the function's runtime Python (it is
Lambda's bootstrap, not part of the function's code), with exactly the function's
environment. Reads one JSON request per line on stdin, writes one JSON response per line on
a private copy of stdout. Whatever
the handler prints or logs is captured per invocation and returned with the response.
This module runs inside the function's process, so it imports nothing from the harness.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import time
import traceback
from typing import Any


class _InvocationOutput(io.TextIOBase):
    """stdout/stderr stand-in: collects what the current invocation writes."""

    def __init__(self) -> None:
        self.buffer_text: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buffer_text.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self.buffer_text)
        self.buffer_text.clear()
        return text


class LambdaContext:
    def __init__(self, request_id: str, deadline: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("HARNESS_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException, logs: str, kind: str = "Unhandled") -> dict[str, Any]:
    response = {
        "ok": False,
        "kind": kind,
        "error_type": type(exc).__name__,
        "error_message": str(exc),
        "stack_trace": traceback.format_exception(exc),
        "logs": logs,
    }
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        response["module"] = exc.name  # the harness names it, and the requirements file to fix
    return response


def _arm_fault(fault: dict[str, Any] | None, protocol: Any) -> None:
    """A handler fault that lands mid-work: right after the handler's Nth AWS API call has
    returned (its side effect is real), the process exits (`crash`) or hangs until the
    runtime kills it for overrunning (`timeout`). Counting calls, not time, makes it land
    at the same point on every run."""
    if not fault:
        return
    from botocore.client import BaseClient

    # Patched on the class: every client the handler creates, now or later, is counted.
    original = getattr(BaseClient, "_harness_original_call", None) or getattr(BaseClient, "_make_api_call")  # noqa: B009
    setattr(BaseClient, "_harness_original_call", original)  # noqa: B010
    remaining = [int(fault["after_calls"])]

    def counted(self: Any, operation_name: str, api_params: Any) -> Any:
        result = original(self, operation_name, api_params)
        remaining[0] -= 1
        if remaining[0] == 0:
            if fault["kind"] == "crash":
                os._exit(137)
            protocol.write('{"hung": true}\n')
            while True:
                time.sleep(3600)
        return result

    setattr(BaseClient, "_make_api_call", counted)  # noqa: B010


def _disarm_fault() -> None:
    try:
        from botocore.client import BaseClient
    except ImportError:
        return
    original = getattr(BaseClient, "_harness_original_call", None)
    if original is not None:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # output written below Python (C extensions) goes to the worker log
    output = _InvocationOutput()
    sys.stdout = output
    sys.stderr = output

    handler: Any = None
    init_error: BaseException | None = None
    module_name, _, func_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except BaseException as exc:  # noqa: BLE001 - reported on every invocation, as Lambda does
        init_error = exc
    init_logs = output.take()

    for line in sys.stdin:
        request = json.loads(line)
        if init_error is not None:
            response = _error(init_error, init_logs, kind="Runtime.ImportModuleError")
        else:
            deadline = time.monotonic() + float(request["timeout"])
            context = LambdaContext(request["request_id"], deadline)
            _arm_fault(request.get("fault"), protocol)
            try:
                result = handler(request["event"], context)
                json.dumps(result)
                response = {"ok": True, "result": result, "logs": output.take()}
            except BaseException as exc:  # noqa: BLE001 - a handler error is a result, not a crash
                response = _error(exc, output.take())
            finally:
                _disarm_fault()
        protocol.write(json.dumps(response, default=str) + "\n")


if __name__ == "__main__":
    main()
