"""Build the deployable artifacts the Terraform root reads: Lambda zips and the EC2 worker bundle.

    python scripts/build_packages.py [--out build] [--check]

Each Lambda package holds the function's code and the wheels of its pinned requirements,
chosen for the function's runtime and architecture (CPython ABI and the glibc of the
runtime's Amazon Linux: python3.12+ run on AL2023, glibc 2.34; older ones on AL2, 2.26), so
a wheel that cannot load in Lambda is not installable here either. The EC2 worker bundle
holds the worker script, its requirements and their wheels, which the instance installs at
boot without reaching PyPI.

Reproducible: wheels are unpacked by this script (not by `pip install`, which writes
machine-specific launcher scripts and RECORD files), entries are sorted, timestamps and
permissions fixed; the same inputs give byte-identical zips. An artifact whose inputs did not
change is not rebuilt (the inputs' hash is kept beside it). `--check` rebuilds everything in
a temporary directory and fails if any zip differs from the one in --out.

This is the project's build, not the harness's: deploying to AWS (`make deploy`) runs it too.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging import tags
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # AWS's limit for a function and its layers
# The glibc of each Lambda runtime's Amazon Linux, which bounds the manylinux wheels it loads.
RUNTIME_GLIBC = {
    "python3.9": 26,
    "python3.10": 26,
    "python3.11": 26,
    "python3.12": 34,
    "python3.13": 34,
}
AL2023_GLIBC = 34  # the tracker's EC2 workers run on Amazon Linux 2023
COMMON = ["pipeline/__init__.py", "pipeline/common"]


@dataclass(frozen=True)
class Artifact:
    """One zip: code paths (files or directories under the repository root) and requirements."""

    name: str
    sources: tuple[str, ...]
    python: str  # "3.13"
    glibc_minor: int
    requirements: str | None = None
    # Where sources land in the zip: "package" keeps repository paths (pipeline/...),
    # "flat" puts each file at the top (the EC2 bundle runs sqs_worker.py by name).
    layout: str = "package"
    wheels_as_files: bool = False  # the EC2 bundle ships wheels; Lambdas ship them unpacked
    extra: dict[str, str] = field(default_factory=dict)  # zip path -> repository file


def lambda_package(group: str, runtime: str, code: list[str], requirements: str | None = None) -> Artifact:
    return Artifact(
        name=f"lambda/{group}.zip",
        sources=tuple(COMMON + code),
        python=runtime.removeprefix("python"),
        glibc_minor=RUNTIME_GLIBC[runtime],
        requirements=requirements,
        # The requirements file travels with the code, so a missing module can name it.
        extra={requirements: requirements} if requirements else {},
    )


# The runtime of each group is the one its functions declare in terraform/modules (python3.13).
ARTIFACTS = [
    lambda_package("refiner", "python3.13", ["pipeline/refiner"]),
    lambda_package("ingest", "python3.13", ["pipeline/ingest"], "pipeline/ingest/requirements.txt"),
    lambda_package("broker", "python3.13", ["pipeline/broker"], "pipeline/broker/requirements.txt"),
    lambda_package(
        "tracker",
        "python3.13",
        ["pipeline/tracker/__init__.py", "pipeline/tracker/orchestrator.py", "pipeline/tracker/user_data.py"],
    ),
    Artifact(
        name="ec2/rag-worker.zip",
        sources=("pipeline/tracker/sqs_worker.py",),
        python="3.11",
        glibc_minor=AL2023_GLIBC,
        requirements="pipeline/tracker/worker-requirements.txt",
        layout="flat",
        wheels_as_files=True,
        extra={"requirements.txt": "pipeline/tracker/worker-requirements.txt"},
    ),
]


class BuildError(RuntimeError):
    pass


def requirement_lines(path: Path) -> list[str]:
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    pins = [ln for ln in lines if ln]
    loose = [p for p in pins if "==" not in p]
    if loose:
        raise BuildError(f"{path.relative_to(ROOT)}: every requirement must be pinned with ==: {loose}")
    return pins


def source_files(artifact: Artifact) -> list[Path]:
    files: list[Path] = []
    for entry in artifact.sources:
        path = ROOT / entry
        if path.is_dir():
            files.extend(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        elif path.is_file():
            files.append(path)
        else:
            raise BuildError(f"{artifact.name}: source {entry} does not exist")
    files.extend(ROOT / f for f in artifact.extra.values())
    return sorted(set(files))


def inputs_hash(artifact: Artifact) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(
        json.dumps([artifact.name, artifact.python, artifact.glibc_minor, artifact.layout]).encode()
    )
    for path in source_files(artifact):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    if artifact.requirements:
        digest.update((ROOT / artifact.requirements).read_bytes())
    return digest.hexdigest()


def platforms(glibc_minor: int) -> list[str]:
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 16, -1)]
    return [*tags, "manylinux2014_x86_64"]


def download_wheels(artifact: Artifact, cache: Path) -> list[Path]:
    """The wheels of the artifact's pinned requirements for its Python and platform (cached)."""
    if not artifact.requirements:
        return []
    pins = requirement_lines(ROOT / artifact.requirements)
    where = cache / f"cp{artifact.python.replace('.', '')}-glibc2.{artifact.glibc_minor}"
    where.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    argv += [
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        artifact.python,
    ]
    for tag in platforms(artifact.glibc_minor):
        argv += ["--platform", tag]
    argv += ["-d", str(where), *pins]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(ln for ln in done.stderr.splitlines() if "WARNING: Location" not in ln)[-1500:]
        raise BuildError(
            f"{artifact.name}: no wheels of {artifact.requirements} for CPython {artifact.python} "
            f"on glibc 2.{artifact.glibc_minor} x86_64:\n{tail}"
        )
    chosen: list[Path] = []
    for pin in pins:
        name, _, version = pin.partition("==")
        stem = name.split("[")[0].lower().replace("-", "_").replace(".", "_")
        found = [
            w
            for w in where.glob("*.whl")
            if w.name.lower().startswith(f"{stem}-{version.lower()}-") and _loads_on(w, artifact)
        ]
        if not found:
            raise BuildError(f"{artifact.name}: pip downloaded no usable wheel for {pin}")
        chosen.append(sorted(found)[0])
    return chosen


def _loads_on(wheel: Path, artifact: Artifact) -> bool:
    """Whether CPython `artifact.python` on the artifact's glibc would install this wheel."""
    version = tuple(int(part) for part in artifact.python.split("."))
    supported = {
        *tags.cpython_tags(version, platforms=platforms(artifact.glibc_minor)),
        *tags.compatible_tags(version, platforms=platforms(artifact.glibc_minor)),
    }
    _, _, _, wheel_tags = parse_wheel_filename(wheel.name)
    return bool(supported & set(wheel_tags))


def wheel_entries(wheel: Path) -> list[tuple[str, bytes]]:
    """A wheel's files as installed into site-packages (its .data/purelib|platlib moved up,
    scripts and headers dropped: a Lambda package has no bin/)."""
    entries: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            parts = name.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                name = "/".join(parts[2:])
            elif parts[0].endswith(".dist-info") and parts[-1] == "RECORD":
                continue  # lists the installer's paths; nothing at run time reads it
            entries.append((name, archive.read(info)))
    return entries


def zip_entries(artifact: Artifact, wheels: list[Path]) -> list[tuple[str, bytes]]:
    entries: dict[str, bytes] = {}
    extra_sources = {ROOT / f for f in artifact.extra.values()}
    for path in source_files(artifact):
        if path in extra_sources:
            continue
        arcname = path.name if artifact.layout == "flat" else str(path.relative_to(ROOT))
        entries[arcname] = path.read_bytes()
    for arcname, source in artifact.extra.items():
        entries[arcname] = (ROOT / source).read_bytes()
    for wheel in wheels:
        if artifact.wheels_as_files:
            entries[f"wheels/{wheel.name}"] = wheel.read_bytes()
            continue
        for name, data in wheel_entries(wheel):
            if name in entries and entries[name] != data:
                raise BuildError(f"{artifact.name}: {name} comes from two wheels with different content")
            entries[name] = data
    return sorted(entries.items())


def write_zip(dest: Path, entries: list[tuple[str, bytes]]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=6)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(dest)


def build(artifact: Artifact, out: Path, cache: Path, force: bool = False) -> tuple[Path, bool]:
    """Build one artifact into `out`; returns its path and whether it was (re)built."""
    dest = out / artifact.name
    stamp = dest.with_name(dest.name + ".inputs")
    key = inputs_hash(artifact)
    if not force and dest.exists() and stamp.exists() and stamp.read_text() == key:
        return dest, False
    entries = zip_entries(artifact, download_wheels(artifact, cache))
    unzipped = sum(len(data) for _, data in entries)
    if artifact.name.startswith("lambda/") and unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise BuildError(f"{artifact.name}: {unzipped / 2**20:.0f} MB unzipped, over Lambda's 250 MB limit")
    write_zip(dest, entries)
    stamp.write_text(key)
    return dest, True


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--cache", type=Path, default=None, help="wheel cache (default: OUT/.wheels)")
    parser.add_argument("--check", action="store_true", help="rebuild elsewhere and compare byte for byte")
    args = parser.parse_args(argv)
    cache = args.cache or args.out / ".wheels"
    try:
        for artifact in ARTIFACTS:
            dest, built = build(artifact, args.out, cache)
            size = dest.stat().st_size / 2**20
            print(f"{'built' if built else 'up to date'}: {dest.relative_to(args.out)} ({size:.1f} MB)")
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                differ = []
                for artifact in ARTIFACTS:
                    again, _ = build(artifact, Path(tmp), cache, force=True)
                    if sha256(again) != sha256(args.out / artifact.name):
                        differ.append(artifact.name)
                if differ:
                    print(f"not reproducible: {', '.join(differ)}", file=sys.stderr)
                    return 1
                print(f"reproducible: {len(ARTIFACTS)} artifacts rebuilt byte-identical")
    except BuildError as exc:
        print(f"build_packages: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(args.out / ".tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
