"""The one Terraform root (terraform/stack): valid, clean under checkov, emulator-free, needing no
local-only input, its packages reproducible, its images buildable, and a Lambda whose zip lacks
a module failing its scenario with the module and the requirements file named."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import config
from harness.deploy import bind
from harness.deploy.deployment import Deployment
from harness.deploy.terraform import cli_config_file, terraform_binary
from harness.deploy.workspace import Workspace
from harness.errors import ExpectationFailed
from harness.paths import REPO_ROOT
from harness.scenario.model import load_scenarios
from harness.scenario.runner import run_scenario
from harness.services.docker import docker_available
from harness.services.moto_server import MotoService
from harness.services.process import RunDirectory
from harness.session import HarnessSession

STACK = REPO_ROOT / "terraform" / "stack"
CHECKOV = REPO_ROOT / ".harness" / "tools" / "checkov" / "bin" / "checkov"
# What no file of the root may know about: it is the root that deploys to AWS.
EMULATOR_WORDS = re.compile(
    r"\b(moto|localstack|emulator|tflocal)\b|(?<!pipeline-)\bharness\b|127\.0\.0\.1|localhost", re.I
)


def terraform(directory: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work),
        "TF_CLI_CONFIG_FILE": str(cli_config_file()),
        "TF_DATA_DIR": str(work / ".terraform"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    return subprocess.run(
        [terraform_binary(), f"-chdir={directory}", *args, "-no-color"],
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("root")
    directory = Workspace.for_root(STACK, REPO_ROOT, work).prepare()
    done = terraform(directory, work, "init", "-backend=false", "-input=false")
    assert done.returncode == 0, done.stdout + done.stderr
    yield directory


def test_fmt_and_validate(mirror: Path) -> None:
    fmt = subprocess.run([terraform_binary(), "fmt", "-check", "-recursive", str(REPO_ROOT / "terraform")])
    assert fmt.returncode == 0, "terraform fmt -check -recursive terraform"
    done = terraform(mirror, mirror.parent.parent.parent, "validate")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_file_of_the_root_knows_about_emulators() -> None:
    findings = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sorted((REPO_ROOT / "terraform").rglob("*.tf"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if EMULATOR_WORDS.search(line)
    ]
    assert findings == []
    assert not (REPO_ROOT / "terraform" / "envs").exists()


def test_it_applies_without_local_input_and_a_second_plan_changes_nothing(tmp_path: Path) -> None:
    """With the override's test credentials and no -var at all, the root applies on moto; the
    emulator then reads back what Terraform wrote, as AWS does, and the rebuilt packages are
    byte-identical: a second plan changes nothing. (Before the harness takes compute over:
    disabling the emulator's mappings and alarm actions is the harness's own change.)"""
    run = RunDirectory.create("root-replan")
    moto = MotoService(run)
    moto.start()
    try:
        moto.wait_ready()
        body = json.dumps(bind.emulator_bindings("127.0.9.1", set(bind.KINDS))).encode()
        request = urllib.request.Request(
            f"{moto.endpoint.url}/moto-api/harness/bindings", data=body, method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()
        deployment = Deployment(config.load(REPO_ROOT), tmp_path, routes={}, default_url=moto.endpoint.url)
        stack, _ = deployment.apply()
        assert len(stack.functions) == 6 and len(stack.stores) == 3
        assert deployment.unattended == []  # every resource is run, bound, data or configuration
        assert deployment.planned_changes() == []
    finally:
        moto.stop()


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed (make checkov)")
def test_checkov_finds_nothing_and_every_skip_says_why() -> None:
    done = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(REPO_ROOT / "terraform"),
            "--framework",
            "terraform",
            "--compact",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", done.stdout)
    assert summary is not None, done.stdout[-2000:] + done.stderr[-2000:]
    assert summary.group(2) == "0", done.stdout[-6000:]
    skips = [
        line.strip()
        for path in (REPO_ROOT / "terraform").rglob("*.tf")
        for line in path.read_text().splitlines()
        if "checkov:skip=" in line
    ]
    assert skips and all(re.search(r"checkov:skip=CKV2?_AWS_\d+: \S.{15,}", s) for s in skips), skips


def test_the_packages_are_reproducible() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_packages.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproducible: 5 artifacts rebuilt byte-identical" in done.stdout
    with zipfile.ZipFile(REPO_ROOT / "build" / "lambda" / "ingest.zip") as archive:
        names = archive.namelist()
    assert "pipeline/ingest/requirements.txt" in names  # named when a module is missing
    assert any(n.startswith("pyarrow/") and n.endswith(".so") for n in names)  # the platform wheel
    assert not any(n.startswith(("bin/", "boto3/")) for n in names)  # no launchers; the SDK is the runtime's


@pytest.mark.skipif(not docker_available(), reason="no Docker daemon answers: the Dockerfiles are not built")
@pytest.mark.parametrize("image", ["batch-processor", "broker-worker"])
def test_the_dockerfiles_build(image: str) -> None:
    dockerfile = REPO_ROOT / "containers" / image / "Dockerfile"
    done = subprocess.run(
        [
            "docker",
            "build",
            "-f",
            str(dockerfile),
            "-t",
            f"pipeline-harness-test/{image}:test",
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


BROKEN_ROOT = """
provider "aws" {
  region = "us-east-1"
}
module "needs_yaml" {
  source       = "MODULES/lambda_function"
  name         = "needs-yaml"
  handler      = "app.handler"
  package_path = "${path.module}/app.zip"
}
"""


def test_a_lambda_whose_zip_lacks_a_module_fails_its_scenario(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(BROKEN_ROOT.replace("MODULES", str(REPO_ROOT / "terraform" / "modules")))
    with zipfile.ZipFile(root / "app.zip", "w") as archive:
        archive.writestr(
            "app.py", "import yaml\n\ndef handler(event, context):\n    return yaml.safe_dump(event)\n"
        )
        archive.writestr("requirements.txt", "boto3==1.43.11\n")
    scenario = tmp_path / "broken.yaml"
    scenario.write_text(
        textwrap.dedent(
            """\
            name: a handler whose package lacks PyYAML
            flow: refiner
            steps:
              - invoke: {function: needs-yaml, payload: {a: 1}}
            expect:
              - invocations: {function: needs-yaml, count: 1}
            """
        )
    )
    [loaded] = load_scenarios(scenario)
    session = HarnessSession("moto", label="broken-zip", support_services=False, config_dir=root)
    with session, pytest.raises(ExpectationFailed) as failed:
        run_scenario(loaded, session)
    message = str(failed.value)
    assert "function needs-yaml cannot import its handler: module 'yaml'" in message
    assert "add it to requirements.txt (the requirements file in the package)" in message
    shutil.rmtree(root)
