"""Scenario structure: matrix cases, !include fragments, anchors, faults, `harness new`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.faults.fail_invocation import parse_attempts
from harness.scenario.model import load_scenarios
from harness.scenario.vocabulary import FAULTS, STEPS

HEADER = "name: n\nflow: refiner\n"


def write(directory: Path, text: str, name: str = "s.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_matrix_list_gives_one_scenario_per_case_with_typed_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + "matrix:\n  - {case: small, n: 1}\n  - {case: big, n: 50}\n"
        + "steps:\n  - put_object: {bucket: b, key: 'in/${matrix.case}.txt', body: x}\n"
        + "expect:\n  - objects: {bucket: b, prefix: out/, count: '${matrix.n}'}\n",
    )
    small, big = load_scenarios(path)
    assert (small.case, big.case) == ("small", "big")
    assert small.steps[0].key == "in/small.txt"  # type: ignore[attr-defined]
    assert big.expect[0].count == 50  # type: ignore[attr-defined]


def test_matrix_mapping_is_the_cartesian_product(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "matrix:\n  a: [1, 2]\n  b: [x, y, z]\n")
    cases = [s.case for s in load_scenarios(path)]
    assert cases == ["a=1-b=x", "a=1-b=y", "a=1-b=z", "a=2-b=x", "a=2-b=y", "a=2-b=z"]


def test_unknown_matrix_parameter_is_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER + "matrix:\n  - {case: one, n: 1}\nsteps:\n  - advance: '${matrix.m}s'\n",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path)
    assert caught.value.line == 6 and "unknown matrix parameter `m`" in caught.value.message


def test_matrix_cases_need_distinct_ids(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "matrix:\n  - {case: same}\n  - {case: same}\n")
    with pytest.raises(ScenarioError, match="distinct ids"):
        load_scenarios(path)


def test_include_brings_in_a_fragment(tmp_path: Path) -> None:
    write(tmp_path, "- await_quiet: 5s\n- advance: 1m\n", name="common.yaml")
    path = write(tmp_path, HEADER + "steps: !include common.yaml\n")
    (scenario,) = load_scenarios(path)
    assert [s.keyword for s in scenario.steps] == ["await_quiet", "advance"]


def test_include_errors_name_the_fragment(tmp_path: Path) -> None:
    write(tmp_path, "- await_quiet: 5s\n- [unclosed\n", name="broken.yaml")
    path = write(tmp_path, HEADER + "steps: !include broken.yaml\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path)
    assert caught.value.file.endswith("broken.yaml")


def test_include_cycle_is_bounded(tmp_path: Path) -> None:
    write(tmp_path, "a: !include loop.yaml\n", name="loop.yaml")
    path = write(tmp_path, HEADER + "description: !include loop.yaml\n")
    with pytest.raises(ScenarioError, match="deeper than"):
        load_scenarios(path)


def test_missing_include_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "steps: !include nowhere.yaml\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path)
    assert caught.value.line == 3 and "no file" in caught.value.message


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + "steps:\n  - put_object: &put {bucket: data-repository, key: a.txt, body: hi}\n"
        + "  - put_object: {<<: *put, key: b.txt}\n",
    )
    (scenario,) = load_scenarios(path)
    assert [s.key for s in scenario.steps] == ["a.txt", "b.txt"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [([1, 3], {1, 3}), ("1-2", {1, 2}), ("2,4-5", {2, 4, 5}), ("all", None), (" 7 ", {7})],
)
def test_fail_invocation_attempts(spec: list[int] | str, expected: set[int] | None) -> None:
    assert parse_attempts(spec) == expected


@pytest.mark.parametrize("spec", ["0", "3-1", "x", "1-", [0], [True]])
def test_bad_attempts_are_rejected(spec: list[int] | str) -> None:
    with pytest.raises(ValueError):
        parse_attempts(spec)  # type: ignore[arg-type]


def test_faults_parse_into_registered_classes(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEADER + "faults:\n  - fail_invocation: {function: refiner, attempts: '1-2', kind: crash}\n"
    )
    (scenario,) = load_scenarios(path)
    assert isinstance(scenario.faults[0], FAULTS["fail_invocation"])
    assert scenario.faults[0].kind == "crash"  # type: ignore[attr-defined]


def test_harness_new_writes_a_valid_starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import cli

    monkeypatch.setattr(cli, "SCENARIOS", tmp_path)
    assert cli.main(["new", "refiner", "Drop Two Files!"]) == 0
    target = tmp_path / "refiner" / "drop_two_files.yaml"
    (scenario,) = load_scenarios(target)
    assert scenario.name == "Drop Two Files!" and isinstance(scenario.steps[0], STEPS["put_object"])
    assert cli.main(["new", "refiner", "Drop Two Files!"]) == 1  # never overwrites


def test_validate_reports_every_error_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, "name: a\nflow: refinr\n", name="a.yaml")
    write(tmp_path, "name: b\nflow: refiner\nstepz: []\n", name="b.yaml")
    write(tmp_path, HEADER, name="c.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "a.yaml:2:7" in done.stderr and "b.yaml:3:1" in done.stderr
    assert "1 valid, 2 invalid of 3" in done.stdout
