"""The base classes and registries of scenario steps and expectations.

A step or expectation is one small pydantic model with a `keyword` (its YAML key) and a
`run` or `check` method; registering it in the table is all it takes to add one.
A scalar written in place of the mapping fills the class's `shorthand` field
(`await_quiet: 20s`, `queue_empty: RefinerInput-dlq`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keyword: ClassVar[str]
    shorthand: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if cls.shorthand and not isinstance(value, dict):
            return {cls.shorthand: value}
        if value is None:
            return {}
        return value


class Step(Spec):
    def run(self, ctx: ScenarioContext) -> None:
        raise NotImplementedError


class Expectation(Spec):
    def check(self, ctx: ScenarioContext) -> None:
        """Raise ExpectationFailed with expected and actual values when it does not hold."""
        raise NotImplementedError


class Fault(Spec):
    """A failure injected for the whole scenario (the `faults:` block)."""

    def install(self, ctx: ScenarioContext) -> None:
        raise NotImplementedError


STEPS: dict[str, type[Step]] = {}
EXPECTATIONS: dict[str, type[Expectation]] = {}
FAULTS: dict[str, type[Fault]] = {}


S = TypeVar("S", bound=type[Step])
E = TypeVar("E", bound=type[Expectation])
F = TypeVar("F", bound=type[Fault])


def step(cls: S) -> S:
    STEPS[cls.keyword] = cls
    return cls


def expectation(cls: E) -> E:
    EXPECTATIONS[cls.keyword] = cls
    return cls


def fault(cls: F) -> F:
    FAULTS[cls.keyword] = cls
    return cls
