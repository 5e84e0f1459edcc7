"""The harness's configuration: `harness.toml`, or `[tool.harness]` in `pyproject.toml`.

Found from the working directory upward; paths in it are relative to the file's directory
(the project directory). One typed `Config` comes out, so the rest of the harness never
reads files or environment variables for its settings.

    [terraform]
    root = "terraform/stack"                          # the root that deploys to AWS, applied unchanged
    build = ["python", "scripts/build_packages.py"]   # run before every apply ("python": the harness's)
    vars = { bucket_suffix = "" }                     # -var values for the root's variables
    var_files = []                                    # -var-file paths
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError

CONFIG_FILE = "harness.toml"


class ConfigError(HarnessError):
    """harness.toml is missing, unreadable or wrong; names the file and the key."""


class TerraformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: Path = Field(description="The Terraform root directory, relative to the project directory.")
    build: list[str] = Field(default_factory=list, description="Command run before each apply.")
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
    var_files: list[Path] = Field(default_factory=list)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_dir: Path
    source: Path | None = None
    terraform: TerraformSettings

    @property
    def root(self) -> Path:
        return (self.project_dir / self.terraform.root).resolve()

    @property
    def var_files(self) -> list[Path]:
        return [(self.project_dir / f).resolve() for f in self.terraform.var_files]

    def with_root(self, root: Path) -> Config:
        """The same project (and its build) with another Terraform root (test roots, `--terraform`);
        the variables were the other root's and are dropped."""
        settings = self.terraform.model_copy(update={"root": root.resolve(), "vars": {}, "var_files": []})
        return self.model_copy(update={"terraform": settings})


def _find(start: Path) -> tuple[Path, dict[str, Any]] | None:
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate, _read(candidate)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            tool = _read(pyproject).get("tool", {})
            if isinstance(tool, dict) and "harness" in tool:
                return pyproject, dict(tool["harness"])
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _describe(error: ValidationError, source: Path) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        lines.append(f"{source}: [{where}] {item['msg']}")
    return "\n".join(lines)


def load(start: Path | None = None) -> Config:
    """The configuration that applies to `start` (default: $HARNESS_CONFIG, else the cwd)."""
    explicit = os.environ.get("HARNESS_CONFIG")
    if explicit:
        path = Path(explicit).resolve()
        if not path.is_file():
            raise ConfigError(f"HARNESS_CONFIG names {path}, which does not exist")
        found: tuple[Path, dict[str, Any]] | None = (path, _read(path))
    else:
        found = _find((start or Path.cwd()).resolve())
    if found is None:
        raise ConfigError(
            f"no {CONFIG_FILE} found in {start or Path.cwd()} or any parent directory",
            hint='create one with [terraform] root = "path/to/your/root" (see README, Configuration)',
        )
    source, document = found
    try:
        config = Config(project_dir=source.parent, source=source, **document)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if not config.root.is_dir():
        raise ConfigError(
            f"{source}: [terraform.root] {config.terraform.root} is not a directory",
            hint=f"the path is relative to {config.project_dir}",
        )
    return config
