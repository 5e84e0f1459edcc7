"""The `put_object` step: upload an inline body or a fixture file."""

from __future__ import annotations

from pydantic import model_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.vocabulary import Step, step


@step
class PutObject(Step):
    """Upload an object: an inline `body`, or a `file` from fixtures/."""

    keyword = "put_object"
    bucket: str
    key: str
    body: str | None = None
    file: str | None = None
    content_type: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PutObject:
        if (self.body is None) == (self.file is None):
            raise ValueError("give exactly one of `body` or `file`")
        return self

    def run(self, ctx: ScenarioContext) -> None:
        data = self.body.encode() if self.body is not None else ctx.fixture(str(self.file)).read_bytes()
        extra = {"ContentType": self.content_type} if self.content_type else {}
        ctx.session.client("s3").put_object(Bucket=self.bucket, Key=self.key, Body=data, **extra)
        ctx.session.timeline.add(
            "put_object", ctx.session.clock.iso(), bucket=self.bucket, key=self.key, bytes=len(data)
        )
