"""The Python interpreters the stack's compute asks for: `python3.12` for a Lambda runtime,
`python:3.11-slim` for an image, `dnf install python3.11` in EC2 user data.

Found on PATH (`python3.12`), else among pyenv's installed versions, else named by
$HARNESS_PYTHON_3_12; the interpreter must report the wanted major.minor. A missing one is
one error naming what asked for it and how to install it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from harness.errors import HarnessError


class MissingPythonError(HarnessError):
    """The Python version a runtime, image or user data needs is not installed here."""


def parse_version(text: str) -> str | None:
    """`3.12` from `python3.12`, `3.12.1`, `python:3.12-slim` or `3.12`; None if none."""
    match = re.search(r"(?<![\d.])(3)\.(\d{1,2})(?![\d])", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _reports(path: str, version: str) -> bool:
    try:
        done = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == version


def _candidates(version: str) -> list[str]:
    found: list[str] = []
    explicit = os.environ.get(f"HARNESS_PYTHON_{version.replace('.', '_')}")
    if explicit:
        found.append(explicit)
    # pyenv's real interpreters before its shims (a shim runs bash, and fails for a version
    # that is installed but not selected).
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for directory in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        found.append(str(directory / "bin" / f"python{version}"))
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    for prefix in ("/usr/bin", "/usr/local/bin"):
        found.append(f"{prefix}/python{version}")
    return found


@functools.cache
def find(version: str) -> str | None:
    """The path of a Python `version` (major.minor) interpreter, or None."""
    for candidate in _candidates(version):
        if os.access(candidate, os.X_OK) and _reports(candidate, version):
            return str(Path(candidate).resolve())
    return None


def require(version: str, wanted_by: str) -> str:
    """The interpreter for `version`, or a MissingPythonError naming `wanted_by`."""
    path = find(version)
    if path is None:
        raise MissingPythonError(
            f"{wanted_by} needs Python {version}, which is not installed on this machine",
            hint=f"install it (e.g. `pyenv install {version}` or `apt-get install python{version}`), "
            f"or set HARNESS_PYTHON_{version.replace('.', '_')} to its interpreter",
        )
    return path
