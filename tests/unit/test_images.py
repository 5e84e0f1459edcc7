"""harness.runtime.images: an ECS task's image reproduced from its Dockerfile, without Docker.

The image's Python, its COPY'd files at their paths, its `pip install` with the Dockerfile's
own arguments, WORKDIR, ENV and CMD; what a process cannot reproduce is listed, never hidden.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.deploy.stack import Repository, Stack
from harness.runtime.images import ImageError, ImageResolver, read_recipe

ROOT = Path(__file__).resolve().parents[2]
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/broker/worker"


def resolver(project: Path, dockerfile: str | None) -> ImageResolver:
    tags = {"Dockerfile": dockerfile} if dockerfile else {}
    stack = Stack(repositories={"broker/worker": Repository("broker/worker", REPO, tags, "module.images.x")})
    return ImageResolver(stack, project)


def test_the_broker_worker_image_has_its_requirements_and_nothing_else() -> None:
    image = resolver(ROOT, "containers/broker-worker/Dockerfile").image(f"{REPO}:0123456789abcdef", "task w")
    assert image.workdir == "/app" and image.command == ["python", "-m", "pipeline.broker.worker"]
    assert image.env["PYTHONUNBUFFERED"] == "1"
    assert (image.local_path("/app/pipeline/broker/worker.py")).is_file()
    assert not list(image.root.rglob("__pycache__"))
    check = "import pika, boto3, sys; print(sys.version_info[:2], pika.__version__); import pipeline.broker.worker"  # noqa: E501
    done = subprocess.run(
        [image.executable("python"), "-c", check], capture_output=True, text=True, cwd=image.local_workdir
    )
    assert done.returncode == 0, done.stderr
    assert "(3, 11) 1.4.4" in done.stdout  # FROM python:3.11..., the pinned pika
    missing = subprocess.run(
        [image.executable("python"), "-c", "import pyarrow"], capture_output=True, text=True
    )
    assert "No module named 'pyarrow'" in missing.stderr  # the harness has it; the image does not


def test_what_a_process_cannot_do_is_listed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.12-slim\nWORKDIR /srv\nCOPY app.py ./\nRUN apt-get update && apt-get install -y curl\n"
        'ENV A=1 B="two words"\nENTRYPOINT ["python"]\nCMD ["app.py"]\n'
    )
    recipe = read_recipe(tmp_path / "Dockerfile")
    assert recipe.copies == [("app.py", "/srv", True)]  # `./` is the WORKDIR, a directory
    assert recipe.skipped == [f"{tmp_path / 'Dockerfile'}:4: RUN apt-get update && apt-get install -y curl"]
    assert recipe.env == {"A": "1", "B": "two words"}
    assert [*recipe.entrypoint, *recipe.cmd] == ["python", "app.py"]


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        (
            "FROM node:20\nCMD node app.js\n",
            r"FROM node:20: without Docker the harness runs python:X.Y images only",
        ),
        ("FROM python:3.12\nCOPY missing.txt /x\n", r"COPY source missing.txt does not exist"),
        ("FROM python:3.12 AS build\nFROM python:3.12\n", r"multi-stage builds"),
    ],
)
def test_unreproducible_images_are_one_clear_error(tmp_path: Path, dockerfile: str, message: str) -> None:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    with pytest.raises(ImageError, match=message):
        resolver(tmp_path, "Dockerfile").image(f"{REPO}:v1", "task t")


def test_an_image_without_a_known_dockerfile_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"ECR repository broker/worker has no Dockerfile tag"):
        resolver(tmp_path, None).image(f"{REPO}:v1", "task t")
    with pytest.raises(ImageError, match=r"runs public.ecr.aws/x/y:1, which is not in an ECR repository"):
        resolver(tmp_path, "Dockerfile").image("public.ecr.aws/x/y:1", "task t")
