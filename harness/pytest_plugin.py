"""pytest plugin: every `scenarios/**/*.yaml` file is a test item.

One HarnessSession per process (so each pytest-xdist worker has its own emulator and
stack) is started at the first scenario and stopped at the end of the run, also on Ctrl-C.
Scenario tags become pytest markers (`-m refiner`). Failures print the scenario's own
message (file:line for a malformed file; expected vs actual plus the timeline tail for a
failed expectation), not a Python traceback.
"""

from __future__ import annotations

import atexit
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExpectationFailed, HarnessError, ScenarioError
from harness.paths import REPO_ROOT
from harness.scenario.model import Scenario, load_scenarios
from harness.scenario.runner import run_scenario
from harness.session import HarnessSession

SCENARIO_DIR = REPO_ROOT / "scenarios"


class _SessionHolder:
    session: HarnessSession | None = None
    error: BaseException | None = None
    timings: list[tuple[str, float]] = []

    @classmethod
    def get(cls, config: pytest.Config) -> HarnessSession:
        if cls.error is not None:
            raise cls.error
        if cls.session is None:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            backend = config.getoption("harness_backend", default=None)
            reporter = config.pluginmanager.get_plugin("terminalreporter")

            def say(text: str) -> None:
                if reporter is not None and worker == "main":
                    reporter.write_line(text)

            try:
                cls.session = HarnessSession(backend, label=f"pytest-{worker}", say=say).start()
            except BaseException as exc:
                cls.error = exc
                raise
        return cls.session

    @classmethod
    def stop(cls) -> None:
        if cls.session is not None:
            session, cls.session = cls.session, None
            session.stop()


def shared_session(config: pytest.Config) -> HarnessSession:
    """The session the scenarios of this process use (started on first use): chaos tests run
    in the same pytest process as the scenarios so that they share its Terraform apply."""
    return _SessionHolder.get(config)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        dest="harness_backend",
        default=None,
        help="AWS emulator for scenarios: moto (default) or localstack; also HARNESS_BACKEND",
    )


def pytest_configure(config: pytest.Config) -> None:
    atexit.register(_SessionHolder.stop)
    if hasattr(signal, "SIGTERM"):
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:
            _SessionHolder.stop()
            if callable(previous):
                previous(signum, frame)
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SessionHolder.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SessionHolder.timings:
        terminalreporter.write_sep("-", "scenario wall times")
        for name, seconds in _SessionHolder.timings:
            terminalreporter.write_line(f"{seconds:7.2f}s  {name}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.is_relative_to(SCENARIO_DIR):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenarios = load_scenarios(self.path)
        except ScenarioError as exc:
            yield BrokenScenarioItem.from_parent(self, name=self.path.stem, error=exc)
            return
        for scenario in scenarios:
            name = f"{scenario.name}[{scenario.case}]" if scenario.case else scenario.name
            item = ScenarioItem.from_parent(self, name=name, scenario=scenario)
            for tag in [scenario.header.flow, *scenario.header.tags]:
                marker = tag.replace("-", "_")
                self.config.addinivalue_line("markers", f"{marker}: scenario tag")
                item.add_marker(marker)
            yield item


class BrokenScenarioItem(pytest.Item):
    def __init__(self, *, error: ScenarioError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.error.line, f"scenario file {self.path.name}"


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        session = _SessionHolder.get(self.config)
        started = time.monotonic()
        try:
            run_scenario(self.scenario, session)
        except (ExpectationFailed, HarnessError, TimeoutError) as exc:
            self.bundle = self._write_bundle(session, exc)
            raise
        finally:
            _SessionHolder.timings.append((self.name, time.monotonic() - started))

    def _write_bundle(self, session: HarnessSession, exc: BaseException) -> Path | None:
        from harness.chaos.bundle import write_bundle

        try:
            return write_bundle(
                session,
                session.run_dir.path / "bundles",
                f"{self.path.stem}-{self.scenario.case or 'run'}",
                self.scenario.header.model_dump(by_alias=True, exclude_defaults=True, exclude={"matrix"}),
                str(exc),
                self.scenario.header.flow,
            )
        except Exception as problem:  # noqa: BLE001 - the failure itself matters more
            print(f"harness: could not write a replay bundle: {problem}")
            return None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        error = excinfo.value
        if isinstance(error, ExpectationFailed):
            session = _SessionHolder.session
            tail = session.timeline.tail(25) if session is not None else ""
            header = f"{self.path}: scenario {self.scenario.name!r} failed"
            bundle = getattr(self, "bundle", None)
            replay = f"\n\nreplay bundle: {bundle} (harness replay {bundle})" if bundle else ""
            return f"{header}\n{error}\n\nlast timeline events:\n{tail}{replay}"
        if isinstance(error, HarnessError):
            return f"{self.path}: {error}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"scenario: {self.scenario.name}"
