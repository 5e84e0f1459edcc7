"""Bad input gets one clear message naming what and where, and leaves nothing running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import DeployError, MissingBinaryError
from harness.paths import REPO_ROOT
from harness.session import HarnessSession

BROKEN_TF = """
terraform {
  backend "s3" {
    bucket = "a-real-state-bucket"
    key    = "stack.tfstate"
  }
}
provider "aws" {
  region = "us-east-1"
}

resource "aws_sqs_queue" "q" {
  name = "broken"
  visibility_timeout_seconds = "not a number
}
"""


def _emulator_stopped(session: HarnessSession) -> bool:
    return not list((session.run_dir.path / "pids").glob("*.json"))


def test_broken_terraform_names_file_and_line_and_stops_the_emulator(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(BROKEN_TF)
    session = HarnessSession("moto", label="broken-tf", support_services=False, config_dir=tmp_path)
    with pytest.raises(DeployError) as caught:
        session.start()
    message = str(caught.value)
    assert "main.tf" in message and "line 14" in message, message
    assert str(session.run_dir.path) not in message  # the user's path, not the mirror's
    assert _emulator_stopped(session)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.tf"]  # nothing written into the root


def test_missing_terraform_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TERRAFORM", str(tmp_path / "no-terraform-here"))
    session = HarnessSession("moto", label="no-tf", support_services=False)
    with pytest.raises(MissingBinaryError) as caught:
        session.start()
    assert "no-terraform-here" in str(caught.value)
    assert _emulator_stopped(session)


def _write_bad_scenario(directory: Path) -> Path:
    path = directory / "bad.yaml"
    path.write_text("name: bad\nflow: refiner\nsteps:\n  - put_object: {bucket: b, kee: k, body: x}\n")
    return path


def test_validate_reports_file_line_without_traceback(tmp_path: Path) -> None:
    bad = _write_bad_scenario(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"{bad}:4:" in done.stderr and "did you mean `key`?" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_run_reports_a_malformed_scenario_without_traceback(tmp_path: Path) -> None:
    scenario_dir = REPO_ROOT / "scenarios" / "_bad_input_test"
    scenario_dir.mkdir(exist_ok=True)
    try:
        bad = _write_bad_scenario(scenario_dir)
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", str(bad)],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
        )
    finally:
        for file in scenario_dir.glob("*"):
            file.unlink()
        scenario_dir.rmdir()
    assert done.returncode == 1
    assert "bad.yaml:4:" in done.stdout and "unknown key `kee`" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_unknown_backend_is_rejected() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "up", "--backend", "azure"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid choice" in done.stderr
