"""The `logs` expectation: lines matching a pattern in a function's logs or a service's log file."""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

from pydantic import field_validator, model_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import CountMatcher, expect_match, fail, valid_count, valid_regex
from harness.scenario.expectations.invocations import function_invocations
from harness.scenario.vocabulary import Expectation, expectation

SHOWN_LINES = 20


@expectation
class LogLines(Expectation):
    """How many log lines match a regular expression: a function's invocations or a component's log.

    `function` searches the logs of every invocation of that function; `component` searches the
    run's `logs/<component>.log` (`moto`, or `rabbitmq`, `redis`, `postgres` for their
    `<name>-<port>.log`). A line matches when the pattern is found anywhere in it; `count`
    defaults to at least one.
    """

    keyword = "logs"
    function: str | None = None
    component: str | None = None
    pattern: str
    count: CountMatcher = {"$gte": 1}

    _valid_count = field_validator("count")(valid_count)

    _valid_regex = field_validator("pattern")(valid_regex)

    @field_validator("component")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or "\\" in value or value.startswith(".")):
            raise ValueError(f"a component is a log file's name under logs/ (like `moto`), not {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> LogLines:
        if (self.function is None) == (self.component is None):
            raise ValueError("give exactly one of `function` or `component`")
        return self

    def check(self, ctx: ScenarioContext) -> None:
        source, text = self._text(ctx)
        pattern = re.compile(self.pattern)
        lines = [line for line in text.splitlines() if pattern.search(line)]
        actual: dict[str, Any] = {"count": len(lines), "matching lines": lines[:SHOWN_LINES]}
        if not lines:
            actual["last lines"] = text.splitlines()[-SHOWN_LINES:]
        expect_match(f"lines matching /{self.pattern}/ in {source}", self.count, len(lines), actual)

    def _text(self, ctx: ScenarioContext) -> tuple[str, str]:
        if self.function is not None:
            name, calls = function_invocations(ctx, self.function)
            return f"the logs of {name} ({len(calls)} invocations)", "\n".join(i.logs for i in calls)
        assert self.component is not None
        path = component_log(ctx.session.run_dir.path, self.component)
        if path is None:
            logs = ctx.session.run_dir.path / "logs"
            known = sorted(p.stem for p in logs.glob("*.log")) if logs.is_dir() else []
            raise fail(
                f"log of component {self.component} exists",
                str(logs / f"{self.component}.log"),
                {"components": known},
            )
        return str(path), path.read_text(errors="replace")


def component_log(run_dir: Path, component: str) -> Path | None:
    """A component's log file, or None.

    `logs/<component>.log`, else the one `logs/<component>-<port>.log` (services whose log is
    named by their port), else a function worker's `lambda/<component>.log`.
    """
    logs = run_dir / "logs"
    exact = logs / f"{component}.log"
    if exact.is_file():
        return exact
    by_port = [
        p
        for p in logs.glob(f"{glob.escape(component)}-*.log")
        if re.fullmatch(r"\d+", p.stem[len(component) + 1 :])
    ]
    if len(by_port) == 1:
        return by_port[0]
    worker = run_dir / "lambda" / f"{component}.log"
    return worker if worker.is_file() else None
