"""The `run_task` step: run an ECS task definition now, as `aws ecs run-task` would."""

from __future__ import annotations

from pydantic import Field

from harness.errors import HarnessError
from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


@step
class RunTask(Step):
    """Run an ECS task definition's containers to completion, with environment overrides."""

    keyword = "run_task"
    shorthand = "task_definition"
    task_definition: str
    container: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    command: list[str] | None = None

    def run(self, ctx: ScenarioContext) -> None:
        if ctx.session.ecs is None:
            raise HarnessError("run_task needs a deployed stack")
        try:
            task = ctx.session.stack.resolve_task_definition(self.task_definition)
        except KeyError as exc:
            raise HarnessError(f"run_task: {exc.args[0]}") from None
        name = self.container or task.containers[0].name
        override: dict[str, object] = {
            "name": name,
            "environment": [{"name": k, "value": v} for k, v in self.environment.items()],
        }
        if self.command:
            override["command"] = self.command
        ctx.session.ecs.run(task, overrides={"containerOverrides": [override]}, started_by="scenario")
        ctx.session.await_quiet(timeout=300)
