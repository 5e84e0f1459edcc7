"""What a Lambda function runs from: its deployed zip, its layers, and its runtime's Python.

The code is exactly what Terraform deployed: the zip at the state's `filename` (relative to
the root), or the object at `s3_bucket`/`s3_key` (and version) in the emulator's S3. Each
zip is unpacked once per content hash. Layers are unpacked the same way and go on the path
where Lambda mounts them (/opt/python, /opt/python/lib/pythonX.Y/site-packages).

The runtime is an environment of the Python version the function's `runtime` names, holding
only what AWS's Python runtimes provide besides the standard library: the AWS SDK. Nothing
from the harness's own interpreter or packages is visible to the function, so a module the
zip lacks fails here as it fails in Lambda.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.deploy.stack import Function, LayerVersion, Stack
from harness.errors import HarnessError
from harness.runtime import environments, pythons

#: What AWS's Python runtimes bundle beyond the standard library (the SDK), pinned to the
#: project's SDK versions: a package that needs boto3 may rely on it, like in Lambda.
RUNTIME_SDK = [
    "boto3==1.43.11",
    "botocore==1.43.127",
    "s3transfer==0.17.1",
    "jmespath==1.1.0",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "urllib3==2.8.0",
]


class UnsupportedFunctionError(HarnessError):
    """A function the harness cannot run locally (an image, a non-Python runtime)."""


def runtime_version(function: Function) -> str:
    runtime = function.runtime or ""
    version = pythons.parse_version(runtime) if runtime.startswith("python") else None
    if version is None:
        raise UnsupportedFunctionError(
            f"function {function.name} ({function.address}) has runtime {runtime or 'none'}; "
            "the harness runs Python runtimes (python3.x) only"
        )
    return version


def runtime_environment(function: Function) -> Path:
    """The environment standing in for the function's Lambda runtime."""
    version = runtime_version(function)
    return environments.build(
        version,
        [["install", "--quiet", "--no-deps", *RUNTIME_SDK]],
        wanted_by=f"function {function.name} (runtime {function.runtime})",
    )


@dataclass(frozen=True)
class Code:
    """An unpacked zip: where it lies and where it came from (for messages)."""

    directory: Path
    source: str


class CodeStore:
    """Unpacks deployed zips once per content hash under `work_dir`."""

    def __init__(self, stack: Stack, s3: Callable[[], Any], work_dir: Path) -> None:
        self.stack = stack
        self.s3 = s3
        self.work_dir = work_dir

    def _zip_bytes(
        self,
        kind: str,
        name: str,
        filename: str | None,
        bucket: str | None,
        key: str | None,
        version: str | None,
    ) -> tuple[bytes, str]:
        if filename:
            path = self.stack.path_in_root(filename)
            if not path.is_file():
                raise HarnessError(f"{kind} {name}: its zip {filename} (resolved to {path}) does not exist")
            return path.read_bytes(), filename
        if bucket and key:
            params: dict[str, str] = {"Bucket": bucket, "Key": key}
            if version:
                params["VersionId"] = version
            try:
                body = self.s3().get_object(**params)["Body"].read()
            except Exception as exc:  # noqa: BLE001 - any failure means the deployed code is unreadable
                raise HarnessError(f"{kind} {name}: cannot read its zip s3://{bucket}/{key}: {exc}") from None
            return bytes(body), f"s3://{bucket}/{key}"
        raise HarnessError(f"{kind} {name}: the state holds no filename and no S3 location for its code")

    def _unpack(self, data: bytes, source: str) -> Code:
        digest = hashlib.sha256(data).hexdigest()[:20]
        directory = self.work_dir / digest
        if not (directory / ".complete").exists():
            tmp = directory.with_name(directory.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    archive.extractall(tmp)
            except zipfile.BadZipFile:
                shutil.rmtree(tmp, ignore_errors=True)
                raise HarnessError(f"{source} is not a zip file") from None
            (tmp / ".complete").touch()
            shutil.rmtree(directory, ignore_errors=True)
            tmp.replace(directory)
        return Code(directory, source)

    def function_code(self, function: Function) -> Code:
        data, source = self._zip_bytes(
            "function",
            function.name,
            function.filename,
            function.s3_bucket,
            function.s3_key,
            function.s3_object_version,
        )
        return self._unpack(data, source)

    def layer_paths(self, function: Function) -> list[Path]:
        """The layer directories on Lambda's path, in the function's layer order."""
        version = runtime_version(function)
        paths: list[Path] = []
        for arn in function.layers:
            layer: LayerVersion | None = self.stack.layers.get(arn)
            if layer is None:
                raise HarnessError(
                    f"function {function.name} uses layer {arn}, which is not in this stack's state",
                    hint="the harness runs layers that the same root deploys (aws_lambda_layer_version)",
                )
            data, source = self._zip_bytes(
                "layer", arn, layer.filename, layer.s3_bucket, layer.s3_key, layer.s3_object_version
            )
            root = self._unpack(data, source).directory
            paths += [root / "python", root / "python" / "lib" / f"python{version}" / "site-packages"]
        return paths


def requirements_files(code: Path) -> list[str]:
    """Requirements files shipped inside a package (named in missing-module messages)."""
    return sorted(str(p.relative_to(code)) for p in code.rglob("requirements*.txt"))
