"""Container images, reproduced from their Dockerfiles for ECS tasks run as local processes.

A task definition names an image URI; the ECR repository it belongs to carries the
Dockerfile it is built from (the repository's `Dockerfile` tag, relative to the project
directory, which is also the build context). Without Docker, the harness does what that
Dockerfile does, as far as a process can:
- FROM python:X.Y[...]: the container's Python is a local Python X.Y;
- COPY/ADD of build-context files: copied into the image's root directory, at the same
  paths below it;
- RUN pip install ...: run with the image's Python, with the same arguments, into the
  image's environment (so only what the Dockerfile installs is importable);
- ENV, WORKDIR, CMD, ENTRYPOINT: the process's environment, directory and command.
Other RUN lines (apt-get, useradd, ...) cannot be reproduced by a process: each is listed
in `skipped`, and the session reports them. Images are cached by the content of the
Dockerfile and of everything it copies.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dockerfile_parse import DockerfileParser

from harness.deploy.stack import Stack
from harness.errors import HarnessError
from harness.paths import state_root
from harness.runtime import environments, pythons

DEFAULT_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageError(HarnessError):
    """An image the harness cannot reproduce without Docker, or cannot find the Dockerfile of."""


@dataclass
class Image:
    """An image reproduced on the host: its Python environment, files and defaults."""

    uri: str
    dockerfile: Path
    python: Path
    root: Path  # the image's filesystem, for the paths it copied
    workdir: str
    env: dict[str, str]
    command: list[str]
    skipped: list[str] = field(default_factory=list)

    def local_path(self, container_path: str) -> Path:
        """Where a path of the image's filesystem lies on the host."""
        return self.root / PurePosixPath(container_path).relative_to("/")

    @property
    def local_workdir(self) -> Path:
        return self.local_path(self.workdir)

    def executable(self, program: str) -> str:
        """`python`, `python3` and pip name the image's environment; other programs the host's."""
        if program in ("python", "python3", f"python{self.python_version}", "pip", "pip3"):
            return str(self.python.parent / ("pip" if program.startswith("pip") else "python"))
        if program.startswith("/"):
            local = self.local_path(program)
            return str(local) if local.exists() else program
        return program

    @property
    def python_version(self) -> str:
        return pythons.parse_version(self.python.parent.parent.name) or ""


def _json_or_shell(value: str) -> list[str]:
    try:
        parsed = json.loads(value)
    except ValueError:
        return ["/bin/sh", "-c", value]
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return list(parsed)
    return ["/bin/sh", "-c", value]


@dataclass
class _Recipe:
    base: str = ""
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    #: (build-context source, destination, destination is a directory)
    copies: list[tuple[str, str, bool]] = field(default_factory=list)
    pip: list[list[str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _resolve(workdir: str, path: str) -> str:
    return str(PurePosixPath(workdir) / path) if not path.startswith("/") else path


def read_recipe(dockerfile: Path) -> _Recipe:
    parser = DockerfileParser(path=str(dockerfile))
    recipe = _Recipe()
    stages = 0
    for item in parser.structure:
        instruction, value, line = item["instruction"], item["value"].strip(), item["startline"] + 1
        where = f"{dockerfile}:{line}"
        if instruction == "FROM":
            stages += 1
            if stages > 1:
                raise ImageError(f"{where}: multi-stage builds are not reproduced without Docker")
            recipe.base = value.split()[0]
        elif instruction == "WORKDIR":
            recipe.workdir = _resolve(recipe.workdir, value)
        elif instruction == "ENV":
            recipe.env.update(_env_pairs(value))
        elif instruction in ("COPY", "ADD"):
            words = [w for w in shlex.split(value) if not w.startswith("--")]
            if len(words) < 2 or any("://" in w for w in words):
                raise ImageError(f"{where}: {instruction} {value} is not a copy of build-context files")
            *sources, dest = words
            into_directory = len(sources) > 1 or dest.endswith("/")
            for source in sources:
                recipe.copies.append((source, _resolve(recipe.workdir, dest), into_directory))
        elif instruction == "RUN":
            words = shlex.split(value)
            if words[:2] in (["pip", "install"], ["pip3", "install"]) or words[:4] == [
                "python",
                "-m",
                "pip",
                "install",
            ]:
                args = words[words.index("install") :]
                recipe.pip.append(
                    [_resolve(recipe.workdir, a) if a.startswith(("./", "/")) else a for a in args]
                )
            else:
                recipe.skipped.append(f"{where}: RUN {value}")
        elif instruction == "CMD":
            recipe.cmd = _json_or_shell(value)
        elif instruction == "ENTRYPOINT":
            recipe.entrypoint = _json_or_shell(value)
    if not recipe.base:
        raise ImageError(f"{dockerfile}: no FROM line")
    return recipe


def _env_pairs(value: str) -> dict[str, str]:
    words = shlex.split(value)
    if words and "=" not in words[0]:  # legacy `ENV NAME value with spaces`
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words if "=" in word)


def _copy_sources(context: Path, source: str, where: str) -> list[Path]:
    matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
    if not matches or not all(m.exists() for m in matches):
        raise ImageError(f"{where}: COPY source {source} does not exist in the build context {context}")
    for match in matches:
        if not match.resolve().is_relative_to(context.resolve()):
            raise ImageError(f"{where}: COPY source {source} is outside the build context")
    return matches


class ImageResolver:
    """Finds and reproduces the images a stack's task definitions name."""

    def __init__(self, stack: Stack, project_dir: Path) -> None:
        self.stack = stack
        self.project_dir = project_dir
        self._images: dict[str, Image] = {}

    def dockerfile_for(self, uri: str, wanted_by: str) -> Path:
        for repo in self.stack.repositories.values():
            if repo.url and (uri.startswith(repo.url + ":") or uri.startswith(repo.url + "@")):
                name = repo.tags.get("Dockerfile")
                if not name:
                    raise ImageError(
                        f"{wanted_by} runs {uri}, but ECR repository {repo.name} has no Dockerfile tag",
                        hint=f'tag {repo.address} with Dockerfile = "path/to/Dockerfile" (relative to '
                        f"{self.project_dir})",
                    )
                path = self.project_dir / name
                if not path.is_file():
                    raise ImageError(f"{wanted_by}: the Dockerfile {name} of {repo.name} does not exist")
                return path
        raise ImageError(
            f"{wanted_by} runs {uri}, which is not in an ECR repository of this stack",
            hint="the harness reproduces images of the stack's own repositories from their Dockerfiles",
        )

    def image(self, uri: str, wanted_by: str) -> Image:
        if uri not in self._images:
            self._images[uri] = self._build(uri, self.dockerfile_for(uri, wanted_by), wanted_by)
        return self._images[uri]

    def _build(self, uri: str, dockerfile: Path, wanted_by: str) -> Image:
        recipe = read_recipe(dockerfile)
        image_name = recipe.base.split("/")[-1]
        version = pythons.parse_version(image_name) if image_name.startswith("python:") else None
        if version is None:
            raise ImageError(
                f"{dockerfile}: FROM {recipe.base}: without Docker the harness runs python:X.Y images only",
                hint="start a Docker daemon, or build the image from a python:X.Y base",
            )
        context = self.project_dir
        files: list[tuple[Path, str, bool]] = []
        for source, dest, into_directory in recipe.copies:
            for match in _copy_sources(context, source, str(dockerfile)):
                files.append((match, dest, into_directory))
        digest = hashlib.sha256(dockerfile.read_bytes())
        for match, dest, _ in files:
            for path in sorted(match.rglob("*")) if match.is_dir() else [match]:
                if path.is_file() and "__pycache__" not in path.parts:
                    digest.update(f"{path.relative_to(context)}>{dest}".encode() + path.read_bytes())
        home = state_root() / "images" / digest.hexdigest()[:20]
        root = home / "root"
        home.mkdir(parents=True, exist_ok=True)
        with environments.locked(home / ".lock"):
            if not (home / ".complete").exists():
                shutil.rmtree(root, ignore_errors=True)
                for match, dest, into_directory in files:
                    self._copy(match, dest, root, into_directory)
                (home / ".complete").touch()
        commands = [[_local_arg(a, root) for a in args] for args in recipe.pip]
        env_dir = environments.build(
            version,
            commands,
            inputs=[root],
            wanted_by=f"{wanted_by} (image {uri}, {dockerfile.relative_to(self.project_dir)})",
            cwd=root / PurePosixPath(recipe.workdir).relative_to("/"),
        )
        return Image(
            uri=uri,
            dockerfile=dockerfile,
            python=environments.python_of(env_dir),
            root=root,
            workdir=recipe.workdir,
            env=recipe.env,
            command=[*recipe.entrypoint, *recipe.cmd],
            skipped=recipe.skipped,
        )

    @staticmethod
    def _copy(source: Path, dest: str, root: Path, into_directory: bool) -> None:
        target = root / PurePosixPath(dest).relative_to("/")
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=ignore)
        else:
            if into_directory:
                target = target / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _local_arg(arg: str, root: Path) -> str:
    """A pip argument naming a file of the image, moved into the image's root directory."""
    if arg.startswith("/"):
        return str(root / PurePosixPath(arg).relative_to("/"))
    return arg
