"""The process that hosts one Lambda function, like a warm Lambda sandbox.

Started by `FunctionWorker` with exactly the function's environment. Reads one JSON request
per line on stdin, writes one JSON response per line on a private copy of stdout. Whatever
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
    return {
        "ok": False,
        "kind": kind,
        "error_type": type(exc).__name__,
        "error_message": str(exc),
        "stack_trace": traceback.format_exception(exc),
        "logs": logs,
    }


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
            try:
                result = handler(request["event"], context)
                json.dumps(result)
                response = {"ok": True, "result": result, "logs": output.take()}
            except BaseException as exc:  # noqa: BLE001 - a handler error is a result, not a crash
                response = _error(exc, output.take())
        protocol.write(json.dumps(response, default=str) + "\n")


if __name__ == "__main__":
    main()
