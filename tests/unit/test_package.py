"""harness.deploy.package.build_lambda_package: a reproducible zip of the pipeline package."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from harness.deploy.package import build_lambda_package
from harness.paths import REPO_ROOT


def _source_copy(tmp_path: Path) -> Path:
    """A private copy of pipeline/ (others may edit the tree meanwhile), with build litter added."""
    source = tmp_path / "src" / "pipeline"
    shutil.copytree(REPO_ROOT / "pipeline", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cache = source / "refiner" / "__pycache__"
    cache.mkdir()
    (cache / "handler.cpython-311.pyc").write_bytes(b"\x00compiled")
    (source / "common" / "stray.pyc").write_bytes(b"\x00")
    return source


def test_build_is_reproducible(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    first = build_lambda_package(tmp_path / "a" / "lambda.zip", source)
    (source / "refiner" / "handler.py").touch()  # a newer mtime must not change the zip
    second = build_lambda_package(tmp_path / "b" / "lambda.zip", source)
    assert first.read_bytes() == second.read_bytes()


def test_contents(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    dest = build_lambda_package(tmp_path / "out" / "lambda.zip", source)
    with zipfile.ZipFile(dest) as archive:
        names = archive.namelist()
        assert "pipeline/refiner/handler.py" in names
        assert "pipeline/__init__.py" in names
        assert archive.read("pipeline/refiner/handler.py") == (source / "refiner" / "handler.py").read_bytes()
        assert names == sorted(names)
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        infos = archive.infolist()
        assert {i.date_time for i in infos} == {(2020, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in infos} == {0o644}
    expected = sorted(
        str(p.relative_to(source.parent))
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    assert names == expected


def test_content_change_changes_the_zip(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    before = build_lambda_package(tmp_path / "lambda.zip", source).read_bytes()
    (source / "refiner" / "handler.py").write_text("# changed\n")
    after = build_lambda_package(tmp_path / "lambda.zip", source).read_bytes()
    assert before != after
    assert not (tmp_path / "lambda.tmp").exists()


def test_rebuild_in_place_leaves_no_temp_file(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    dest = tmp_path / "lambda.zip"
    build_lambda_package(dest, source)
    data = dest.read_bytes()
    assert build_lambda_package(dest, source) == dest
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lambda.zip", "src"]


def test_default_source_is_the_repository_pipeline(tmp_path: Path) -> None:
    dest = build_lambda_package(tmp_path / "lambda.zip")
    with zipfile.ZipFile(dest) as archive:
        names = archive.namelist()
    assert "pipeline/refiner/handler.py" in names
    assert "pipeline/common/idempotency.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
