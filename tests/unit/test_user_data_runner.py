"""harness.runtime.user_data: EC2 user data checked (bash -n, shellcheck) and carried out on the
host inside the instance's root: the worker runs from the bundle's wheels, in a venv of the
Python the script installs, and lines the harness does not understand are refused by number."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from harness.runtime import user_data as runner
from harness.runtime.user_data import UserDataError, UserDataRunner
from pipeline.tracker.user_data import WorkerBootstrap, build

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = build(
    WorkerBootstrap("us-east-1", "http://q", "files", "5", "tracker-data", "scripts/rag-worker.zip")
)


def bundle(
    worker: str = "import boto3, sys\nprint('worker on', sys.version_info[:2], boto3.__version__)\n",
) -> bytes:
    """A bundle like build_packages.py makes, with the real wheels of the worker's requirements."""
    built = ROOT / "build" / "ec2" / "rag-worker.zip"
    if not built.is_file():
        pytest.skip("build/ec2/rag-worker.zip missing: run `make package`")
    out = io.BytesIO()
    with zipfile.ZipFile(built) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, worker if name == "sqs_worker.py" else source.read(name))
    return out.getvalue()


def test_the_orchestrators_user_data_passes_the_checks() -> None:
    assert runner.check(SCRIPT) == []


def test_a_script_bash_cannot_parse_is_refused() -> None:
    with pytest.raises(UserDataError, match="does not parse"):
        runner.check("#!/bin/bash\nif then fi\n")


def test_shellcheck_errors_are_refused() -> None:
    with pytest.raises(UserDataError, match="shellcheck finds errors"):
        runner.check('#!/bin/bash\nexport A=1\n[[ $A = 1 ]] && echo "$(( 1 + ))"\n')


def test_the_worker_runs_from_the_bundle_in_the_venv_its_script_builds(tmp_path: Path) -> None:
    fetched: list[tuple[str, str]] = []
    data = bundle()

    def fetch(bucket: str, key: str) -> bytes:
        fetched.append((bucket, key))
        return data

    boot = UserDataRunner(tmp_path / "root", fetch, "instance i-1").run(SCRIPT)
    assert fetched == [("tracker-data", "scripts/rag-worker.zip")]
    assert (tmp_path / "root" / "opt/rag-worker/wheels").is_dir()
    assert boot.log == tmp_path / "root/var/log/rag-worker/sqs_worker.log"
    assert boot.env["LOG_FILE"] == "/var/log/rag-worker/sqs_worker.log"
    done = subprocess.run(boot.argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "worker on (3, 11) 1.43.11" in done.stdout  # AL2023's python3.11, the bundle's boto3
    # Only what the requirements list is installed: the harness's own packages are absent.
    missing = subprocess.run([boot.argv[0], "-c", "import pydantic"], capture_output=True, text=True)
    assert "No module named 'pydantic'" in missing.stderr


def test_an_unknown_command_is_refused_with_its_line(tmp_path: Path) -> None:
    script = SCRIPT.replace("dnf install -y python3.11\n", "dnf install -y python3.11\ncurl -o x https://e\n")
    with pytest.raises(UserDataError, match=r"user data line 14 \(curl -o x https://e\): `curl` is not"):
        UserDataRunner(tmp_path, lambda b, k: bundle(), "instance i-2").run(script)


def test_a_python_that_was_never_installed_is_refused(tmp_path: Path) -> None:
    script = SCRIPT.replace("dnf install -y python3.11\n", "")
    with pytest.raises(UserDataError, match=r"python3.11 is used but never installed"):
        UserDataRunner(tmp_path, lambda b, k: bundle(), "instance i-3").run(script)


def test_a_script_that_starts_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserDataError, match="starts no process"):
        UserDataRunner(tmp_path, lambda b, k: b"", "instance i-4").run("#!/bin/bash\nexport A=1\n")


def test_expand_follows_shell_quoting() -> None:
    env = {"A": "x y", "B": "it's"}
    assert runner.expand("echo \"$A\" '$A' ${B}", env) == "echo \"x y\" '$A' 'it'\"'\"'s'"
    with pytest.raises(UserDataError, match=r"\$C is used before it is exported"):
        runner.expand("echo $C", env)


def test_instances_share_one_environment_for_the_same_bundle(tmp_path: Path) -> None:
    """Each instance has a root of its own; the environment is keyed by what the files hold."""
    data = bundle()
    first = UserDataRunner(tmp_path / "a", lambda b, k: data, "instance i-a").run(SCRIPT)
    second = UserDataRunner(tmp_path / "b", lambda b, k: data, "instance i-b").run(SCRIPT)
    assert first.argv[0] == second.argv[0]
    assert first.argv[1] != second.argv[1]  # each runs its own copy of the script
