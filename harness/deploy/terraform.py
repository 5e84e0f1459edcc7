"""Run Terraform for one stack: project-owned CLI config, private data dir and state.

Never touches the user's home: the CLI config (provider mirror at /opt/tf-plugins) lives in
the harness state directory and is passed with TF_CLI_CONFIG_FILE; `.terraform` goes to a
per-stack TF_DATA_DIR, so parallel stacks do not collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import DeployError, MissingBinaryError
from harness.paths import state_root

PROVIDER_MIRROR = Path(os.environ.get("HARNESS_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
#: Longer than any healthy apply of a stack (minutes); a hung one is stopped and named.
STEP_TIMEOUT_S = float(os.environ.get("HARNESS_TERRAFORM_TIMEOUT", "1800"))
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cli_config_file() -> Path:
    path = state_root() / "terraform.tfrc"
    text = (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{PROVIDER_MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
    )
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def terraform_binary() -> str:
    """The terraform program: $HARNESS_TERRAFORM, else `terraform` on PATH."""
    configured = os.environ.get("HARNESS_TERRAFORM")
    found = configured if configured and os.access(configured, os.X_OK) else None
    if not configured:
        found = shutil.which("terraform")
    if not found:
        raise MissingBinaryError(
            "terraform",
            f"`{configured or 'terraform'}` is not installed or not executable",
            hint="install Terraform >= 1.5 and put it on PATH, or set HARNESS_TERRAFORM to its path",
        )
    return found


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def summarize_error(output: str) -> str:
    """The `Error:` blocks of Terraform's output (with their `on file line N` lines)."""
    # Coloured output draws a box (╷ │ ╵) around each diagnostic: drop it first.
    lines = [re.sub(r"^\s*[│╷╵]\s?", "", line).rstrip() for line in _ANSI.sub("", output).splitlines()]
    text = "\n".join(lines)
    blocks = re.findall(r"^Error: .*?(?=^Error: |^Warning: |\Z)", text, flags=re.S | re.M)
    kept = ["\n".join(ln.strip() for ln in block.splitlines() if ln.strip()) for block in blocks]
    kept = kept or [text.strip()[-2000:]]
    return "\n\n".join(dict.fromkeys(kept))


@dataclass
class Terraform:
    """Terraform in one workspace directory (the mirrored root), with private data dir and logs."""

    directory: Path
    work_dir: Path
    shown: str = ""

    def __post_init__(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.work_dir / "terraform.tfstate"
        self.timings: dict[str, float] = {}
        self.shown = self.shown or str(self.directory)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "TF_CLI_CONFIG_FILE": str(cli_config_file()),
                "TF_DATA_DIR": str(self.work_dir / ".terraform"),
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "CHECKPOINT_DISABLE": "1",
            }
        )
        # Terraform's AWS calls go to the emulator with the override's test credentials: no
        # profile, token or real credential of the user's may leak into them.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(name, None)
        return env

    def _run(self, step: str, *args: str, capture_json: bool = False) -> str:
        """Run one Terraform command, its output streamed to `<step>.log` (stdout returned for
        JSON commands). A command that outlives STEP_TIMEOUT_S is killed with its provider
        processes and named, with the resources it was still waiting on."""
        argv = [terraform_binary(), f"-chdir={self.directory}", *args]
        started = time.monotonic()
        log_path = self.work_dir / f"{step}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                argv,
                env=self._env(),
                stdout=subprocess.PIPE if capture_json else log,
                stderr=log if capture_json else subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own group: the provider plugins go with it
            )
            try:
                stdout, _ = process.communicate(timeout=STEP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                waiting = sorted(set(re.findall(r"^(\S+): Still \w+\.\.\.", log_path.read_text(), re.M)))
                raise DeployError(
                    f"terraform {step} did not finish within {STEP_TIMEOUT_S / 60:.0f} min in {self.shown}"
                    + (f"; still waiting on {', '.join(waiting[-5:])}" if waiting else ""),
                    hint=f"output so far: {log_path}; set HARNESS_TERRAFORM_TIMEOUT (seconds) to wait longer",
                ) from None
            except BaseException:
                _kill_group(process)  # Ctrl-C: the group is ours, it does not get the signal
                raise
        self.timings[step] = time.monotonic() - started
        if process.returncode != 0:
            raise DeployError(
                f"terraform {step} failed in {self.shown}:\n{summarize_error(log_path.read_text())}",
                hint=f"full output: {log_path}",
            )
        return stdout or ""

    def init(self) -> None:
        self._run("init", "init", "-no-color", "-input=false")

    def apply(self, arguments: list[str]) -> None:
        self._run(
            "apply", "apply", "-no-color", "-input=false", "-auto-approve", "-parallelism=20", *arguments
        )

    def planned_changes(self, arguments: list[str]) -> list[str]:
        """What a plan of the applied root would change: `address: action (attributes)` each."""
        plan_file = self.work_dir / "replan.tfplan"
        self._run("plan", "plan", "-no-color", "-input=false", "-lock=false", f"-out={plan_file}", *arguments)
        shown = json.loads(self._run("show-plan", "show", "-json", str(plan_file), capture_json=True))
        changes: list[str] = []
        for change in shown.get("resource_changes") or []:
            actions = change.get("change", {}).get("actions") or []
            if actions in (["no-op"], ["read"]):
                continue
            before = change["change"].get("before") or {}
            after = change["change"].get("after") or {}
            differ = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes.append(f"{change['address']}: {'/'.join(actions)} ({', '.join(differ)})")
        return changes

    def show_json(self) -> dict[str, Any]:
        out = self._run("show", "show", "-json", capture_json=True)
        return dict(json.loads(out))

    def output_json(self) -> dict[str, Any]:
        out = self._run("output", "output", "-json", capture_json=True)
        return {k: v["value"] for k, v in json.loads(out).items()}
