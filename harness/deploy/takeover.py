"""Hand compute from the emulator to the harness, after Terraform has applied.

The emulator is only a data plane. Left alone, it would try to run compute itself and
break the flows (measured; shared/notes/emulators.md):
- an enabled SQS event-source mapping makes moto invoke the function inside SendMessage
  (through Docker, which fails and *consumes a receive*) and makes LocalStack poll the
  queue itself: the harness disables every mapping in the emulator and runs them itself;
- a rule with a Lambda target makes moto's PutEvents fail (500) and drop S3 deliveries,
  and makes LocalStack invoke through its own executor: the harness re-points each Lambda
  target at a private "tap" queue and invokes the function from there (asynchronously,
  with Lambda's two retries), so routing stays the emulator's and compute stays ours;
- a schedule rule (no event pattern) would match every event in moto and fire on the wall
  clock in LocalStack: its targets are removed from the emulator and the harness's
  scheduler fires them on the virtual clock.
It also subscribes one private SQS queue of its own to every SNS topic (an "SNS tap"), so
scenarios can see what each topic published without the root declaring a subscription
for tests.
Terraform state is untouched: the Stack still describes the real configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.deploy.stack import Rule, Stack, Target


@dataclass(frozen=True)
class LambdaTap:
    """A rule's Lambda target, re-pointed at a tap queue the harness drains."""

    rule: Rule
    target: Target
    function_name: str
    queue_url: str
    queue_arn: str


@dataclass
class Takeover:
    disabled_mappings: list[str] = field(default_factory=list)
    lambda_taps: list[LambdaTap] = field(default_factory=list)
    schedule_targets: list[Target] = field(default_factory=list)
    alarm_actions_disabled: int = 0
    #: topic ARN -> URL of the harness's queue subscribed to it
    sns_taps: dict[str, str] = field(default_factory=dict)


def _tap_queue_name(rule: Rule, target: Target) -> str:
    return f"harness-tap-{rule.bus}-{rule.name}-{target.target_id}"[:80].replace("/", "-")


def _tap_topic(name: str, arn: str, sqs: Any, sns: Any) -> str:
    queue = f"harness-sns-{name}"[:80]
    url = str(sqs.create_queue(QueueName=queue)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return url


def take_over_compute(stack: Stack, clients: dict[str, Any]) -> Takeover:
    lam, events, sqs = clients["lambda"], clients["events"], clients["sqs"]
    done = Takeover()

    for mapping in stack.event_source_mappings:
        lam.update_event_source_mapping(UUID=mapping.uuid, Enabled=False)
        done.disabled_mappings.append(mapping.uuid)

    # Alarm actions are the harness's (it evaluates queue-depth alarms itself); left on, an
    # emulator that evaluates alarms would publish its own, metric-less verdicts.
    if stack.alarms and "cloudwatch" in clients:
        clients["cloudwatch"].disable_alarm_actions(AlarmNames=sorted(stack.alarms))
        done.alarm_actions_disabled = len(stack.alarms)

    if "sns" in clients:
        for topic in stack.topics.values():
            done.sns_taps[topic.arn] = _tap_topic(topic.name, topic.arn, sqs, clients["sns"])

    rules = {(r.bus, r.name): r for r in stack.rules}
    for target in stack.targets:
        rule = rules.get((target.bus, target.rule))
        if rule is None:
            continue
        if rule.schedule_expression and not rule.event_pattern:
            events.remove_targets(Rule=rule.name, EventBusName=rule.bus, Ids=[target.target_id])
            done.schedule_targets.append(target)
            continue
        if ":lambda:" in target.arn and ":function:" in target.arn:
            function = stack.function_by_arn(target.arn)
            if function is None:
                continue
            name = _tap_queue_name(rule, target)
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            replacement: dict[str, Any] = {"Id": target.target_id, "Arn": arn}
            if target.input:
                replacement["Input"] = target.input
            if target.input_path:
                replacement["InputPath"] = target.input_path
            events.put_targets(Rule=rule.name, EventBusName=rule.bus, Targets=[replacement])
            done.lambda_taps.append(LambdaTap(rule, target, function.name, url, arn))
    return done


def describe(done: Takeover) -> str:
    return json.dumps(
        {
            "disabled_event_source_mappings": len(done.disabled_mappings),
            "lambda_targets_tapped": [f"{t.rule.name}->{t.function_name}" for t in done.lambda_taps],
            "schedule_targets_held": [f"{t.rule}:{t.target_id}" for t in done.schedule_targets],
            "sns_taps": len(done.sns_taps),
        }
    )
