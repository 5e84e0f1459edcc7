"""Error types the harness raises for user-facing problems.

Each carries enough context (component, file, line) for the CLI and the pytest plugin
to print one clear message instead of a traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class: a problem the user can act on; printed without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ServiceStartError(HarnessError):
    """A backend service (emulator, broker, cache, database) failed to start or get ready."""

    def __init__(self, component: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"[{component}] {message}", hint=hint)
        self.component = component


class MissingBinaryError(ServiceStartError):
    """A program the harness needs is not installed."""


class PortInUseError(ServiceStartError):
    """A port the harness wanted is already taken by another process."""


class DeployError(HarnessError):
    """Terraform failed; the message carries the file and line Terraform named."""


class ScenarioError(HarnessError):
    """A scenario file is malformed; carries file, line and column."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = file
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.file = file
        self.line = line
        self.column = column


class ExpectationFailed(AssertionError):
    """A scenario expectation did not hold; the text shows expected and actual values."""
