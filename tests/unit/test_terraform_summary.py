"""harness.deploy.terraform.summarize_error on Terraform's real error output shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.deploy.terraform import summarize_error
from harness.errors import DeployError

RED, BOLD, RESET, GREY = "\x1b[31m", "\x1b[1m", "\x1b[0m", "\x1b[90m"

# What `terraform apply` prints with colours on (captured from Terraform 1.11).
COLOURED = (
    f"{RESET}{BOLD}{RED}Planning failed.{RESET}{BOLD} "
    f"Terraform encountered an error while generating this plan.{RESET}\n"
    "\n"
    f"{RESET}{RED}╷{RESET}{RESET}\n"
    f"{RED}│{RESET} {RESET}{BOLD}{RED}Error: {RESET}{RESET}{BOLD}Unsupported argument{RESET}\n"
    f"{RED}│{RESET} {RESET}\n"
    f'{RED}│{RESET} {RESET}{RESET}  on main.tf line 12, in resource "aws_sqs_queue" "input":\n'
    f"{RED}│{RESET} {RESET}  12:   {BOLD}visibility_timeout{RESET} = 30{RESET}\n"
    f"{RED}│{RESET} {RESET}\n"
    f'{RED}│{RESET} {RESET}An argument named "visibility_timeout" is not expected here.\n'
    f"{RED}╵{RESET}{RESET}\n"
)

# The same with -no-color, as the harness runs it (Terraform drops the box then).
NO_COLOR = """
Planning failed. Terraform encountered an error while generating this plan.


Error: Invalid function argument

  on main.tf line 14, in output "y":
  14:   value = tonumber(var.x)
    ├────────────────
    │ while calling tonumber(v)
    │ var.x is "a"

Invalid value for "v" parameter: cannot convert "a" to number; given string
must be a decimal representation of a number.

Error: Missing required argument

  on modules/queue/main.tf line 3, in resource "aws_sqs_queue" "dlq":
   3: resource "aws_sqs_queue" "dlq" {

The argument "name" is required, but no definition was found.

Error: Missing required argument

  on modules/queue/main.tf line 3, in resource "aws_sqs_queue" "dlq":
   3: resource "aws_sqs_queue" "dlq" {

The argument "name" is required, but no definition was found.
"""


def test_coloured_output_keeps_the_error_line_without_ansi() -> None:
    summary = summarize_error(COLOURED)
    assert "\x1b" not in summary
    assert summary.splitlines()[0] == "Error: Unsupported argument"
    assert "Planning failed" not in summary


def test_coloured_output_keeps_the_location_line() -> None:
    summary = summarize_error(COLOURED)
    assert 'on main.tf line 12, in resource "aws_sqs_queue" "input":' in summary
    assert "│" not in summary and "╷" not in summary and "╵" not in summary


def test_no_color_output_keeps_errors_and_locations() -> None:
    summary = summarize_error(NO_COLOR)
    lines = summary.splitlines()
    assert lines[0] == "Error: Invalid function argument"
    assert 'on main.tf line 14, in output "y":' in lines
    assert "Error: Missing required argument" in lines
    assert 'on modules/queue/main.tf line 3, in resource "aws_sqs_queue" "dlq":' in lines
    assert "Planning failed" not in summary
    # Identical blocks (Terraform repeats some) appear once.
    assert summary.count("Error: Missing required argument") == 1
    assert summary.count("Error: ") == 2


def test_output_without_error_blocks_falls_back_to_its_tail() -> None:
    text = "something odd happened\n" + "x" * 3000 + "\nlast line\n"
    summary = summarize_error(text)
    assert summary.endswith("last line")
    assert len(summary) <= 2000
    assert summarize_error(f"{RED}plain failure{RESET}\n") == "plain failure"


def test_a_hung_terraform_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An apply that never ends (a provider retrying forever) is killed with its group, and the
    error names the resources it was still waiting on."""
    import harness.deploy.terraform as tf

    fake = tmp_path / "terraform"
    fake.write_text(
        "#!/bin/bash\n"
        "echo 'module.a.aws_sqs_queue.this: Creating...'\n"
        "echo 'module.a.aws_sqs_queue.this: Still creating... [10s elapsed]'\n"
        "sleep 60 &\nwait\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("HARNESS_TERRAFORM", str(fake))
    monkeypatch.setattr(tf, "STEP_TIMEOUT_S", 1.0)
    runner = tf.Terraform(tmp_path, tmp_path / "work", shown="terraform/stack")
    with pytest.raises(
        DeployError, match=r"did not finish within 0 min .*still waiting on module.a.aws_sqs_queue.this"
    ):
        runner.apply([])
    assert "Still creating" in (tmp_path / "work" / "apply.log").read_text()
