"""harness.runtime.lambda_runtime: real worker subprocesses running handlers from a zip, on the
Python their runtime names, with nothing but the zip, its layers and the runtime's SDK."""

from __future__ import annotations

import dataclasses
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.deploy.stack import Function
from harness.errors import HarnessError
from harness.runtime.lambda_runtime import Invocation, LambdaRuntime, RuntimeSettings

APP = textwrap.dedent(
    """
    import logging
    import os
    import time

    LOG = logging.getLogger("app")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    print("cold start of", os.environ["AWS_LAMBDA_FUNCTION_NAME"])


    def ok(event, context):
        print("printed:", event["value"])
        LOG.warning("logged: %s", event["value"])
        return {"doubled": event["value"] * 2, "request_id": context.aws_request_id,
                "function_name": context.function_name}


    def pid(event, context):
        return os.getpid()


    def env(event, context):
        return dict(os.environ)


    def fail(event, context):
        print("about to fail")
        raise ValueError("bad input: " + str(event.get("value")))


    def slow(event, context):
        if event.get("sleep"):
            time.sleep(30)
        return os.getpid()


    def die(event, context):
        os._exit(3)


    def version(event, context):
        import sys
        return list(sys.version_info[:2])


    def sdk(event, context):
        import boto3
        return boto3.__version__


    def harness_packages(event, context):
        import pydantic  # the harness has it; a Lambda runtime does not
        return pydantic.VERSION
    """
)

BROKEN = "import no_such_module_anywhere\n\ndef handler(event, context):\n    return 1\n"


def make_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def function(
    name: str,
    handler: str,
    filename: Path,
    timeout: int = 10,
    env: dict[str, str] | None = None,
    runtime: str = "python3.13",
) -> Function:
    return Function(
        name=name,
        arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
        handler=handler,
        runtime=runtime,
        package_type="Zip",
        filename=str(filename),
        image_uri=None,
        environment=env or {},
        timeout=timeout,
        memory_size=256,
        role="arn:aws:iam::000000000000:role/r",
        address=f"aws_lambda_function.{name}",
    )


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaRuntime]:
    monkeypatch.setenv("UNIT_TEST_PARENT_SECRET", "must-not-leak")
    app = make_zip(tmp_path / "app.zip", {"app.py": APP})
    broken = make_zip(
        tmp_path / "broken.zip", {"app.py": BROKEN, "pipeline/x/requirements.txt": "pydantic==2.13.4\n"}
    )
    functions = {
        "ok": function("ok", "app.ok", app),
        "pid": function("pid", "app.pid", app),
        "env": function(
            "env", "app.env", app, env={"REFINER_OUTPUT_PREFIX": "/RefinerOutput/", "AWS_REGION": "eu-west-3"}
        ),
        "fail": function("fail", "app.fail", app),
        "slow": function("slow", "app.slow", app, timeout=1),
        "die": function("die", "app.die", app),
        "broken": function("broken", "app.handler", broken),
        "image": dataclasses.replace(function("image", "app.ok", app), package_type="Image", filename=None),
        "py313": function("py313", "app.version", app),
        "py311": function("py311", "app.version", app, runtime="python3.11"),
        "sdk": function("sdk", "app.sdk", app),
        "leak": function("leak", "app.harness_packages", app),
        "node": function("node", "app.ok", app, runtime="nodejs20.x"),
        "future": function("future", "app.ok", app, runtime="python3.99"),
    }
    work = tmp_path / "work"
    work.mkdir()
    rt = LambdaRuntime(functions, RuntimeSettings(endpoint_url="http://127.0.0.1:9"), work)
    try:
        yield rt
    finally:
        rt.stop()


def test_success_returns_the_result_and_captures_logs(runtime: LambdaRuntime) -> None:
    call = runtime.invoke("ok", {"value": 21})
    assert isinstance(call, Invocation)
    assert call.ok and call.outcome == "success"
    assert call.result == {"doubled": 42, "request_id": call.request_id, "function_name": "ok"}
    assert call.error_type is None and call.error_message is None
    assert "printed: 21" in call.logs
    assert "logged: 21" in call.logs
    assert "cold start" not in call.logs  # init output is not billed to the invocation
    assert call.function == "ok" and call.source == "direct" and call.event == {"value": 21}

    second = runtime.invoke("ok", {"value": 5}, source="sqs:RefinerInput")
    assert second.result["doubled"] == 10
    assert "printed: 5" in second.logs and "printed: 21" not in second.logs
    assert second.source == "sqs:RefinerInput"
    assert [c.seq for c in runtime.invocations] == [1, 2]
    assert runtime.busy is False


def test_handler_error(runtime: LambdaRuntime) -> None:
    call = runtime.invoke("fail", {"value": 7})
    assert call.outcome == "error" and not call.ok
    assert call.error_type == "ValueError"
    assert call.error_message == "bad input: 7"
    assert "about to fail" in call.logs
    # The process survives a handler error: the next call is warm and fails the same way.
    again = runtime.invoke("fail", {"value": 8})
    assert (again.outcome, again.error_message) == ("error", "bad input: 8")


def test_environment_is_terraform_plus_lambda_variables_only(runtime: LambdaRuntime) -> None:
    env = runtime.invoke("env", {}).result
    assert isinstance(env, dict)
    assert env["REFINER_OUTPUT_PREFIX"] == "/RefinerOutput/"
    assert env["AWS_REGION"] == "eu-west-3"  # Terraform's value wins over the harness default
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["_HANDLER"] == "app.env"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert env["HARNESS_FUNCTION_ARN"] == "arn:aws:lambda:us-east-1:000000000000:function:env"
    assert "UNIT_TEST_PARENT_SECRET" not in env
    assert "PIPELINE_CLOCK_FILE" not in env


def test_warm_worker_is_reused(runtime: LambdaRuntime) -> None:
    first = runtime.invoke("pid", {})
    second = runtime.invoke("pid", {})
    assert first.ok and second.ok
    assert isinstance(first.result, int)
    assert first.result == second.result


def test_timeout_kills_the_worker_and_the_next_call_starts_cold(runtime: LambdaRuntime) -> None:
    warm = runtime.invoke("slow", {})
    assert warm.ok
    timed_out = runtime.invoke("slow", {"sleep": True})
    assert timed_out.outcome == "timeout"
    assert timed_out.error_type == "Sandbox.Timedout"
    assert timed_out.error_message == "Task timed out after 1.00 seconds"
    after = runtime.invoke("slow", {})
    assert after.ok
    assert after.result != warm.result


def test_process_exit_is_a_crash(runtime: LambdaRuntime) -> None:
    call = runtime.invoke("die", {})
    assert call.outcome == "crash"
    assert call.error_type == "Runtime.ExitError"
    assert call.error_message == "the function's process exited with code 3"


def test_import_error_is_reported_on_every_invocation(runtime: LambdaRuntime) -> None:
    for _ in range(2):
        call = runtime.invoke("broken", {})
        assert call.outcome == "error"
        assert call.error_type == "ModuleNotFoundError"
        assert "no_such_module_anywhere" in (call.error_message or "")
    # A packaging error, once, naming the function, the module and the requirements file.
    assert len(runtime.packaging_errors) == 1
    message = str(runtime.packaging_errors[0])
    assert "function broken cannot import its handler" in message
    assert "'no_such_module_anywhere'" in message
    assert "pipeline/x/requirements.txt" in message
    runtime.reset_records()
    assert runtime.packaging_errors == []


def test_each_function_runs_on_its_runtime_python(runtime: LambdaRuntime) -> None:
    assert runtime.invoke("py313", {}).result == [3, 13]
    assert runtime.invoke("py311", {}).result == [3, 11]


def test_the_runtime_provides_the_sdk_and_nothing_of_the_harness(runtime: LambdaRuntime) -> None:
    sdk = runtime.invoke("sdk", {})
    assert sdk.ok and sdk.result == "1.43.11"
    leak = runtime.invoke("leak", {})
    assert leak.outcome == "error" and leak.error_type == "ModuleNotFoundError"
    assert [e.module for e in runtime.packaging_errors] == ["pydantic"]
    assert "the requirements the package is built from" in str(runtime.packaging_errors[0])


def test_runtimes_the_harness_cannot_run_are_named(runtime: LambdaRuntime) -> None:
    with pytest.raises(HarnessError, match=r"function node .* has runtime nodejs20.x; .*Python runtimes"):
        runtime.invoke("node", {})
    with pytest.raises(HarnessError, match=r"needs Python 3.99, which is not installed") as info:
        runtime.invoke("future", {})
    assert "HARNESS_PYTHON_3_99" in str(info.value)


def test_unknown_function_and_image_function(runtime: LambdaRuntime) -> None:
    with pytest.raises(HarnessError, match="no function named 'missing'"):
        runtime.invoke("missing", {})
    with pytest.raises(HarnessError, match="container image"):
        runtime.invoke("image", {})
    assert runtime.invocations == []


def test_on_invocation_callback_and_virtual_time(tmp_path: Path) -> None:
    app = make_zip(tmp_path / "app.zip", {"app.py": APP})
    seen: list[Invocation] = []
    rt = LambdaRuntime(
        {"pid": function("pid", "app.pid", app), "env": function("env", "app.env", app)},
        RuntimeSettings(endpoint_url="http://127.0.0.1:9", clock_file=tmp_path / "clock"),
        tmp_path / "work",
        virtual_now=lambda: "2026-01-15T08:00:00Z",
        on_invocation=seen.append,
    )
    try:
        call = rt.invoke("pid", {})
        env = rt.invoke("env", {}).result
    finally:
        rt.stop()
    assert seen[0] is call and len(seen) == 2
    assert env["PIPELINE_CLOCK_FILE"] == str(tmp_path / "clock")
    assert call.virtual_time == "2026-01-15T08:00:00Z"
    rt.reset_records()
    assert rt.invocations == []
