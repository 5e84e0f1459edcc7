"""Apply the configured Terraform root, unchanged, to the local backend; read back the Stack.

The steps, each in its own module: run the project's build (the artifacts the root uploads),
mirror the root into the run directory (workspace.py), generate the override that points it
at the emulator (override.py), check the variables (variables.py), init and apply with a
private data dir and state (terraform.py), and read the applied state (stack.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import Config
from harness.deploy import coverage, override, variables
from harness.deploy.stack import Stack, stack_from_show_json
from harness.deploy.terraform import Terraform
from harness.deploy.workspace import Workspace
from harness.errors import DeployError


@dataclass
class Deployment:
    config: Config
    work_dir: Path
    routes: Mapping[str, str]
    default_url: str
    region: str = "us-east-1"
    say: Callable[[str], None] = print
    timings: dict[str, float] = field(default_factory=dict)
    terraform: Terraform = field(init=False)
    #: resource types and triggers nothing runs or binds (reported, never silent)
    unattended: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)

    @property
    def shown_root(self) -> str:
        root = self.config.root
        return (
            str(root.relative_to(self.config.project_dir))
            if root.is_relative_to(self.config.project_dir)
            else str(root)
        )

    def build(self) -> None:
        """The project's build command (Lambda zips and other artifacts the root reads)."""
        command = list(self.config.terraform.build)
        if not command:
            return
        if command[0] == "python":
            command[0] = sys.executable
        started = time.monotonic()
        log = self.work_dir / "build.log"
        try:
            done = subprocess.run(command, cwd=self.config.project_dir, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise DeployError(
                f"the build command {command[0]!r} (harness.toml [terraform] build) does not exist: {exc}"
            ) from None
        log.write_text(done.stdout + done.stderr)
        self.timings["build"] = time.monotonic() - started
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DeployError(
                f"the build ({' '.join(self.config.terraform.build)}) failed "
                f"with exit code {done.returncode}:\n{tail}",
                hint=f"full output: {log}",
            )

    def apply(self) -> tuple[Stack, Terraform]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.build()
        workspace = Workspace.for_root(self.config.root, self.config.project_dir, self.work_dir)
        directory = workspace.prepare()
        terraform = Terraform(directory, self.work_dir, shown=self.shown_root)
        override.write(
            directory, self.config.root, self.routes, self.default_url, terraform.state_path, self.region
        )
        source = str(self.config.source or "harness.toml")
        arguments = variables.arguments(
            self.config.root, self.config.terraform.vars, self.config.var_files, source
        )
        try:
            terraform.init()
            terraform.apply(arguments)
            show = terraform.show_json()
            stack = stack_from_show_json(show, directory)
        except DeployError as exc:
            raise DeployError(workspace.real_path(exc.message), hint=exc.hint) from None
        self.timings.update(terraform.timings)
        self.terraform, self.arguments = terraform, arguments
        self.unattended = coverage.unattended(show)
        if self.unattended:
            self.say(
                "harness: WARNING: nothing runs or binds these (a scenario cannot test them): "
                + "; ".join(self.unattended)
            )
        return stack, terraform

    def planned_changes(self) -> list[str]:
        """What a second plan of the applied root would change (nothing, for a faithful backend)."""
        return self.terraform.planned_changes(self.arguments)
