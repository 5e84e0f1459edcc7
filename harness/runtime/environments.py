"""Python environments built exactly as an artifact says, cached by the content of their inputs.

An environment is a virtual environment of one Python version into which the artifact's
own `pip install` commands were run, with the artifact's own arguments (a Dockerfile's
`RUN pip install --no-deps -r requirements.txt`, user data's `pip install --no-index
--find-links wheels -r requirements.txt`, the SDK a Lambda runtime provides). The key is a
hash of the Python version, the commands and the content of every file they read, so a warm
run reuses the environment and pays nothing, and any change of input builds a new one.
Builds are locked across processes (parallel test workers) and published atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import state_root
from harness.runtime import pythons

COMPLETE = ".complete"


class EnvironmentBuildError(HarnessError):
    """pip could not build an environment the way the artifact describes it."""


def root() -> Path:
    path = state_root() / "envs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest_path(digest: hashlib._Hash, path: Path) -> None:
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode() + b"\0" + child.read_bytes())
    elif path.is_file():
        digest.update(path.read_bytes())
    else:
        digest.update(b"<missing>")


def key(version: str, commands: Sequence[Sequence[str]], inputs: Sequence[Path]) -> str:
    digest = hashlib.sha256(json.dumps([version, [list(c) for c in commands]]).encode())
    for path in inputs:
        digest.update(b"\0" + str(path.name).encode() + b"\0")
        _digest_path(digest, path)
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def build(
    version: str,
    commands: Sequence[Sequence[str]],
    *,
    inputs: Sequence[Path] = (),
    wanted_by: str,
    cwd: Path | None = None,
    as_written: Sequence[Sequence[str]] | None = None,
) -> Path:
    """A venv of Python `version` after `pip <command>` for each command (cached).

    `as_written` are the commands as the artifact states them, when `commands` hold paths
    moved to where this run keeps the files: the key must not change with that place (each
    EC2 instance has a root directory of its own), only with what the files hold.
    """
    name = f"py{version}-{key(version, as_written or commands, inputs)}"
    dest = root() / name
    if (dest / COMPLETE).exists():
        return dest
    interpreter = pythons.require(version, wanted_by)
    with locked(root() / f"{name}.lock"):
        if (dest / COMPLETE).exists():
            return dest
        shutil.rmtree(dest, ignore_errors=True)
        log = root() / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        steps = [[interpreter, "-m", "venv", str(dest)]]
        steps += [[str(python_of(dest)), "-m", "pip", "--disable-pip-version-check", *c] for c in commands]
        with log.open("w") as out:
            for step in steps:
                out.write(f"$ {' '.join(step)}\n")
                out.flush()
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
                if done.returncode != 0:
                    shutil.rmtree(dest, ignore_errors=True)
                    tail = "\n".join(
                        ln for ln in log.read_text().splitlines()[-12:] if "WARNING: Location" not in ln
                    )
                    raise EnvironmentBuildError(
                        f"{wanted_by}: `{' '.join(step[3:] if step[1:3] == ['-m', 'pip'] else step)}` failed "
                        f"(exit {done.returncode}):\n{tail}",
                        hint=f"full log: {log}",
                    )
        done_marker = {"version": version, "commands": [list(c) for c in commands]}
        (dest / COMPLETE).write_text(json.dumps(done_marker))
    return dest
