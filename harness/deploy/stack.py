"""The typed view of an applied stack, read from `terraform show -json`.

This is how the harness learns what to run: which handler and environment each function
has, which queue feeds which function with which batch size, which rules route where.
Nothing here is configured twice: every field comes from the Terraform state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Function:
    name: str
    arn: str
    handler: str | None
    runtime: str | None
    package_type: str
    filename: str | None
    image_uri: str | None
    environment: dict[str, str]
    timeout: int
    memory_size: int
    role: str
    address: str
    s3_bucket: str | None = None
    s3_key: str | None = None
    s3_object_version: str | None = None
    code_sha256: str | None = None
    layers: tuple[str, ...] = ()
    architecture: str = "x86_64"


@dataclass(frozen=True)
class EventSourceMapping:
    uuid: str
    function_name: str
    function_arn: str
    source_arn: str
    batch_size: int
    enabled: bool
    report_batch_item_failures: bool
    maximum_batching_window: int
    address: str


@dataclass(frozen=True)
class RedrivePolicy:
    dead_letter_target_arn: str
    max_receive_count: int


@dataclass(frozen=True)
class Queue:
    name: str
    arn: str
    url: str
    visibility_timeout: int
    redrive: RedrivePolicy | None
    fifo: bool
    address: str


@dataclass(frozen=True)
class Rule:
    name: str
    arn: str
    bus: str
    event_pattern: dict[str, Any] | None
    schedule_expression: str | None
    enabled: bool
    address: str


@dataclass(frozen=True)
class Target:
    rule: str
    bus: str
    target_id: str
    arn: str
    input: str | None
    input_path: str | None
    address: str


@dataclass(frozen=True)
class Bus:
    name: str
    arn: str


@dataclass(frozen=True)
class Bucket:
    name: str
    arn: str
    eventbridge: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    arn: str
    hash_key: str
    range_key: str | None
    stream_arn: str | None
    global_secondary_indexes: tuple[str, ...]
    address: str


@dataclass(frozen=True)
class Topic:
    name: str
    arn: str
    address: str


@dataclass(frozen=True)
class Subscription:
    topic_arn: str
    protocol: str
    endpoint: str
    address: str


@dataclass(frozen=True)
class MountPoint:
    volume: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...]
    environment: dict[str, str]
    mount_points: tuple[MountPoint, ...] = ()
    stop_timeout: int = 30


@dataclass(frozen=True)
class TaskDefinition:
    """An ECS task definition (or, where the emulator has no ECS, its recorded stand-in)."""

    family: str
    arn: str
    containers: tuple[Container, ...]
    task_role_arn: str
    address: str
    #: volume name -> EFS file system id (or the volume's own name for other kinds)
    volumes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EcsService:
    """A long-running ECS service (or its recorded stand-in): desired_count copies of a task."""

    name: str
    cluster: str
    task_definition: str
    desired_count: int
    address: str


@dataclass(frozen=True)
class Pipe:
    """An EventBridge Pipe from a DynamoDB stream (or its recorded stand-in)."""

    name: str
    arn: str
    source: str
    target: str
    starting_position: str
    batch_size: int
    filters: tuple[str, ...]
    address: str


@dataclass(frozen=True)
class MetricAlarm:
    name: str
    arn: str
    namespace: str | None
    metric_name: str | None
    dimensions: dict[str, str]
    statistic: str | None
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    treat_missing_data: str
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]
    description: str
    address: str


@dataclass(frozen=True)
class ScheduleTarget:
    arn: str
    role_arn: str
    input: str | None
    maximum_retry_attempts: int
    dead_letter_arn: str | None
    ecs_task_definition_arn: str | None


@dataclass(frozen=True)
class Schedule:
    """An EventBridge Scheduler schedule."""

    name: str
    group: str
    expression: str
    timezone: str
    start_date: str | None
    end_date: str | None
    flexible_window_minutes: int
    enabled: bool
    target: ScheduleTarget
    address: str


@dataclass(frozen=True)
class LayerVersion:
    arn: str
    filename: str | None
    s3_bucket: str | None
    s3_key: str | None
    s3_object_version: str | None
    address: str


@dataclass(frozen=True)
class Repository:
    """An ECR repository; its `Dockerfile` tag names the file its images are built from."""

    name: str
    url: str
    tags: dict[str, str]
    address: str


@dataclass(frozen=True)
class ManagedStore:
    """A managed data store an emulator only records (RDS, Amazon MQ, ElastiCache): bound to a
    local server by its endpoint attributes."""

    kind: str  # postgres | rabbitmq | redis
    name: str
    host: str
    port: int
    address: str
    #: what the client needs beyond the endpoint: database name, secret ARN, TLS, username
    details: dict[str, str] = field(default_factory=dict)
    #: (username, password) pairs the state holds (MQ users, a Redis AUTH token as ("", token))
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)


class AmbiguousNameError(KeyError):
    """A name given as a suffix matches more than one resource."""

    def __init__(self, message: str, matches: list[str] | None = None) -> None:
        super().__init__(message)
        self.matches = matches or []

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownNameError(KeyError):
    """No resource of that kind has that name or suffix."""

    def __init__(self, message: str, known: list[str] | None = None) -> None:
        super().__init__(message)
        self.known = known or []

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


R = TypeVar("R")


def resolve_name(kind: str, name: str, items: dict[str, R], where: str = "in the stack") -> R:
    """An item by exact name, or by a unique suffix; a clear KeyError otherwise."""
    if name in items:
        return items[name]
    matches = sorted(n for n in items if n.endswith(name))
    if len(matches) == 1:
        return items[matches[0]]
    if not matches:
        known = sorted(items)
        listed = ", ".join(known) or "none"
        raise UnknownNameError(f"no {kind} named {name!r} {where} ({kind}s: {listed})", known)
    raise AmbiguousNameError(f"{kind} name {name!r} is ambiguous (matches {matches})", matches)


@dataclass
class Stack:
    functions: dict[str, Function] = field(default_factory=dict)
    event_source_mappings: list[EventSourceMapping] = field(default_factory=list)
    queues: dict[str, Queue] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    buses: dict[str, Bus] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    topics: dict[str, Topic] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    task_definitions: dict[str, TaskDefinition] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    ecs_services: dict[str, EcsService] = field(default_factory=dict)
    alarms: dict[str, MetricAlarm] = field(default_factory=dict)
    pipes: dict[str, Pipe] = field(default_factory=dict)
    #: objects Terraform itself manages (aws_s3_object): infrastructure, kept across resets
    managed_objects: set[tuple[str, str]] = field(default_factory=set)
    layers: dict[str, LayerVersion] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)
    stores: list[ManagedStore] = field(default_factory=list)
    #: every managed resource type in the state, with its count (for the coverage report)
    resource_types: dict[str, int] = field(default_factory=dict)
    #: the directory Terraform ran in: relative paths in the state are relative to it
    root_dir: Path | None = None

    def path_in_root(self, path: str) -> Path:
        """A path from the state (e.g. a Lambda `filename`), resolved against the root."""
        candidate = Path(path)
        if candidate.is_absolute() or self.root_dir is None:
            return candidate
        return self.root_dir / candidate

    def queue_by_arn(self, arn: str) -> Queue | None:
        return next((q for q in self.queues.values() if q.arn == arn), None)

    def function_by_arn(self, arn: str) -> Function | None:
        base = arn.split(":function:")[-1].split(":")[0] if ":function:" in arn else arn
        return self.functions.get(base)

    def resolve_queue(self, name: str) -> Queue:
        """A queue by exact name, or by a unique suffix (`RefinerInput-dlq`)."""
        return resolve_name("queue", name, self.queues)

    def resolve_function(self, name: str) -> Function:
        """A function by exact name, or by a unique suffix (`refiner`)."""
        return resolve_name("function", name, self.functions)

    def resolve_table(self, name: str) -> Table:
        """A DynamoDB table by exact name, or by a unique suffix."""
        return resolve_name("table", name, self.tables)

    def resolve_topic(self, name: str) -> Topic:
        """An SNS topic by exact name, or by a unique suffix."""
        return resolve_name("topic", name, self.topics)

    def resolve_task_definition(self, name_or_arn: str) -> TaskDefinition:
        """By family (or unique suffix) or by ARN, with or without its revision."""
        for task in self.task_definitions.values():
            if name_or_arn in (task.arn, task.arn.rsplit(":", 1)[0]):
                return task
        family = name_or_arn.split("task-definition/")[-1].split(":")[0]
        return resolve_name("task definition", family, self.task_definitions)

    def resolve_ecs_service(self, name: str) -> EcsService:
        """An ECS service by exact name, or by a unique suffix (`worker`)."""
        return resolve_name("ECS service", name, self.ecs_services)

    def resolve_alarm(self, name: str) -> MetricAlarm:
        return resolve_name("alarm", name, self.alarms)

    def subscriptions_of(self, topic_arn: str) -> list[Subscription]:
        return [s for s in self.subscriptions if s.topic_arn == topic_arn]


def all_resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from all_resources(child)


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    return json.loads(text)


def _env(values: dict[str, Any]) -> dict[str, str]:
    blocks = values.get("environment") or []
    if not blocks:
        return {}
    return {str(k): str(v) for k, v in (blocks[0].get("variables") or {}).items()}


def _add(stack: Stack, rtype: str, v: dict[str, Any], address: str) -> None:
    if rtype == "aws_lambda_function":
        stack.functions[v["function_name"]] = Function(
            name=v["function_name"],
            arn=v["arn"],
            handler=v.get("handler"),
            runtime=v.get("runtime"),
            package_type=v.get("package_type") or "Zip",
            filename=v.get("filename"),
            image_uri=v.get("image_uri") or None,
            environment=_env(v),
            timeout=int(v.get("timeout") or 3),
            memory_size=int(v.get("memory_size") or 128),
            role=v.get("role", ""),
            address=address,
            s3_bucket=v.get("s3_bucket") or None,
            s3_key=v.get("s3_key") or None,
            s3_object_version=v.get("s3_object_version") or None,
            code_sha256=v.get("code_sha256") or v.get("source_code_hash") or None,
            layers=tuple(v.get("layers") or ()),
            architecture=(v.get("architectures") or ["x86_64"])[0],
        )
    elif rtype == "aws_lambda_layer_version":
        stack.layers[v["arn"]] = LayerVersion(
            arn=v["arn"],
            filename=v.get("filename") or None,
            s3_bucket=v.get("s3_bucket") or None,
            s3_key=v.get("s3_key") or None,
            s3_object_version=v.get("s3_object_version") or None,
            address=address,
        )
    elif rtype == "aws_lambda_event_source_mapping":
        stack.event_source_mappings.append(
            EventSourceMapping(
                uuid=v.get("uuid") or v["id"],
                function_name=v["function_name"],
                function_arn=v.get("function_arn") or v["function_name"],
                source_arn=v["event_source_arn"],
                batch_size=int(v.get("batch_size") or 10),
                enabled=bool(v.get("enabled", True)),
                report_batch_item_failures="ReportBatchItemFailures"
                in (v.get("function_response_types") or []),
                maximum_batching_window=int(v.get("maximum_batching_window_in_seconds") or 0),
                address=address,
            )
        )
    elif rtype == "aws_sqs_queue":
        redrive = _json_or_none(v.get("redrive_policy"))
        stack.queues[v["name"]] = Queue(
            name=v["name"],
            arn=v["arn"],
            url=v.get("url") or v["id"],
            visibility_timeout=int(v.get("visibility_timeout_seconds") or 30),
            redrive=RedrivePolicy(redrive["deadLetterTargetArn"], int(redrive["maxReceiveCount"]))
            if redrive
            else None,
            fifo=bool(v.get("fifo_queue")),
            address=address,
        )
    elif rtype == "aws_cloudwatch_event_rule":
        stack.rules.append(
            Rule(
                name=v["name"],
                arn=v["arn"],
                bus=v.get("event_bus_name") or "default",
                event_pattern=_json_or_none(v.get("event_pattern")),
                schedule_expression=v.get("schedule_expression") or None,
                enabled=(v.get("state") or "ENABLED") == "ENABLED",
                address=address,
            )
        )
    elif rtype == "aws_cloudwatch_event_target":
        stack.targets.append(
            Target(
                rule=v["rule"],
                bus=v.get("event_bus_name") or "default",
                target_id=v["target_id"],
                arn=v["arn"],
                input=v.get("input") or None,
                input_path=v.get("input_path") or None,
                address=address,
            )
        )
    elif rtype == "aws_cloudwatch_event_bus":
        stack.buses[v["name"]] = Bus(v["name"], v["arn"])
    elif rtype == "aws_dynamodb_table":
        stack.tables[v["name"]] = Table(
            name=v["name"],
            arn=v.get("arn") or "",
            hash_key=v.get("hash_key") or "",
            range_key=v.get("range_key") or None,
            stream_arn=v.get("stream_arn") or None,
            global_secondary_indexes=tuple(
                sorted(str(g["name"]) for g in (v.get("global_secondary_index") or []) if g.get("name"))
            ),
            address=address,
        )
    elif rtype == "aws_sns_topic":
        stack.topics[v["name"]] = Topic(name=v["name"], arn=v.get("arn") or "", address=address)
    elif rtype == "aws_sns_topic_subscription":
        stack.subscriptions.append(
            Subscription(
                topic_arn=v.get("topic_arn") or "",
                protocol=v.get("protocol") or "",
                endpoint=v.get("endpoint") or "",
                address=address,
            )
        )
    elif rtype == "aws_s3_bucket":
        stack.buckets[v["bucket"]] = Bucket(v["bucket"], v["arn"])
    elif rtype == "aws_s3_bucket_notification" and v.get("eventbridge"):
        name = v["bucket"]
        if name in stack.buckets:
            stack.buckets[name] = Bucket(name, stack.buckets[name].arn, eventbridge=True)


def _containers(definitions: str) -> tuple[Container, ...]:
    return tuple(
        Container(
            name=str(c["name"]),
            image=str(c.get("image", "")),
            command=tuple(str(part) for part in c.get("command") or ()),
            environment={str(e["name"]): str(e["value"]) for e in c.get("environment") or []},
            mount_points=tuple(
                MountPoint(str(m["sourceVolume"]), str(m["containerPath"]), bool(m.get("readOnly")))
                for m in c.get("mountPoints") or []
            ),
            stop_timeout=int(c.get("stopTimeout") or 30),
        )
        for c in json.loads(definitions or "[]")
    )


def _volumes(blocks: list[dict[str, Any]]) -> dict[str, str]:
    volumes: dict[str, str] = {}
    for block in blocks:
        efs = (block.get("efs_volume_configuration") or [{}])[0]
        volumes[str(block["name"])] = str(efs.get("file_system_id") or block["name"])
    return volumes


def _alarm(v: dict[str, Any], address: str) -> MetricAlarm:
    return MetricAlarm(
        name=v["alarm_name"],
        arn=v.get("arn") or "",
        namespace=v.get("namespace") or None,
        metric_name=v.get("metric_name") or None,
        dimensions={str(k): str(x) for k, x in (v.get("dimensions") or {}).items()},
        statistic=v.get("statistic") or v.get("extended_statistic") or None,
        period=int(v.get("period") or 60),
        evaluation_periods=int(v.get("evaluation_periods") or 1),
        threshold=float(v.get("threshold") or 0),
        comparison=v.get("comparison_operator") or "GreaterThanThreshold",
        treat_missing_data=v.get("treat_missing_data") or "missing",
        alarm_actions=tuple(v.get("alarm_actions") or ()),
        ok_actions=tuple(v.get("ok_actions") or ()),
        description=v.get("alarm_description") or "",
        address=address,
    )


def _add_compute(stack: Stack, rtype: str, v: dict[str, Any], address: str) -> None:
    """Schedules and ECS task definitions (kept apart from _add to keep each readable)."""
    if rtype == "aws_ecs_task_definition":
        stack.task_definitions[v["family"]] = TaskDefinition(
            family=v["family"],
            arn=v["arn"],
            containers=_containers(v.get("container_definitions") or "[]"),
            task_role_arn=v.get("task_role_arn") or "",
            address=address,
            volumes=_volumes(v.get("volume") or []),
        )
    elif rtype == "aws_ecs_service":
        stack.ecs_services[v["name"]] = EcsService(
            name=v["name"],
            cluster=v.get("cluster") or "",
            task_definition=v.get("task_definition") or "",
            desired_count=int(v.get("desired_count") or 0),
            address=address,
        )
    elif rtype == "aws_cloudwatch_metric_alarm":
        stack.alarms[v["alarm_name"]] = _alarm(v, address)
    elif rtype == "aws_s3_object":
        stack.managed_objects.add((str(v["bucket"]), str(v["key"])))
    elif rtype == "aws_pipes_pipe":
        params = (v.get("source_parameters") or [{}])[0]
        stream = (params.get("dynamodb_stream_parameters") or [{}])[0]
        criteria = (params.get("filter_criteria") or [{}])[0]
        stack.pipes[v["name"]] = Pipe(
            name=v["name"],
            arn=v.get("arn") or "",
            source=v.get("source") or "",
            target=v.get("target") or "",
            starting_position=stream.get("starting_position") or "LATEST",
            batch_size=int(stream.get("batch_size") or 1),
            filters=tuple(str(f["pattern"]) for f in criteria.get("filter") or [] if f.get("pattern")),
            address=address,
        )
    elif rtype == "aws_ecr_repository":
        stack.repositories[v["name"]] = Repository(
            name=v["name"],
            url=v.get("repository_url") or "",
            tags={str(k): str(x) for k, x in (v.get("tags_all") or v.get("tags") or {}).items()},
            address=address,
        )
    elif rtype in _STORES:
        store = _STORES[rtype](v, address)
        if store is not None:
            stack.stores.append(store)
    elif rtype == "aws_scheduler_schedule":
        target = (v.get("target") or [{}])[0]
        retry = (target.get("retry_policy") or [{}])[0]
        dead_letter = (target.get("dead_letter_config") or [{}])[0]
        ecs = (target.get("ecs_parameters") or [{}])[0]
        window = (v.get("flexible_time_window") or [{}])[0]
        stack.schedules[v["name"]] = Schedule(
            name=v["name"],
            group=v.get("group_name") or "default",
            expression=v["schedule_expression"],
            timezone=v.get("schedule_expression_timezone") or "UTC",
            start_date=v.get("start_date") or None,
            end_date=v.get("end_date") or None,
            flexible_window_minutes=int(window.get("maximum_window_in_minutes") or 0)
            if window.get("mode") == "FLEXIBLE"
            else 0,
            enabled=(v.get("state") or "ENABLED") == "ENABLED",
            target=ScheduleTarget(
                arn=target.get("arn") or "",
                role_arn=target.get("role_arn") or "",
                input=target.get("input") or None,
                maximum_retry_attempts=int(retry.get("maximum_retry_attempts", 185)),
                dead_letter_arn=dead_letter.get("arn") or None,
                ecs_task_definition_arn=ecs.get("task_definition_arn") or None,
            ),
            address=address,
        )


def _postgres(v: dict[str, Any], address: str) -> ManagedStore | None:
    if not str(v.get("engine", "")).startswith(("postgres", "aurora-postgresql")):
        return None
    secret = (v.get("master_user_secret") or [{}])[0]
    return ManagedStore(
        kind="postgres",
        name=v.get("identifier") or v.get("cluster_identifier") or "",
        host=v.get("address") or v.get("endpoint") or "",
        port=int(v.get("port") or 5432),
        address=address,
        details={
            "db_name": v.get("db_name") or v.get("database_name") or "",
            "username": v.get("username") or v.get("master_username") or "",
            "secret_arn": secret.get("secret_arn") or "",
        },
    )


def _rabbitmq(v: dict[str, Any], address: str) -> ManagedStore | None:
    if v.get("engine_type") != "RabbitMQ":
        return None
    endpoints = [e for i in v.get("instances") or [] for e in i.get("endpoints") or []]
    parts = urlsplit(endpoints[0]) if endpoints else None
    return ManagedStore(
        kind="rabbitmq",
        name=v.get("broker_name") or "",
        host=parts.hostname or "" if parts else "",
        port=parts.port or 5671 if parts else 5671,
        address=address,
        details={"usernames": ",".join(u.get("username", "") for u in v.get("user") or [])},
        credentials=tuple(
            (str(u.get("username", "")), str(u.get("password", ""))) for u in v.get("user") or []
        ),
    )


def _redis(v: dict[str, Any], address: str) -> ManagedStore | None:
    if v.get("engine", "redis") not in ("redis", "valkey"):
        return None
    return ManagedStore(
        kind="redis",
        name=v.get("replication_group_id") or "",
        host=v.get("primary_endpoint_address") or v.get("configuration_endpoint_address") or "",
        port=int(v.get("port") or 6379),
        address=address,
        details={"tls": str(bool(v.get("transit_encryption_enabled"))).lower()},
        credentials=(("", str(v["auth_token"])),) if v.get("auth_token") else (),
    )


_STORES = {
    "aws_db_instance": _postgres,
    "aws_rds_cluster": _postgres,
    "aws_mq_broker": _rabbitmq,
    "aws_elasticache_replication_group": _redis,
}


def stack_from_show_json(show: dict[str, Any], root_dir: Path | None = None) -> Stack:
    values = show.get("values") or {}
    stack = Stack(
        outputs={k: o.get("value") for k, o in (values.get("outputs") or {}).items()}, root_dir=root_dir
    )
    resources = [r for r in all_resources(values.get("root_module") or {}) if r.get("mode") == "managed"]
    # Buckets first, so notifications can mark them.
    resources.sort(key=lambda r: r["type"] != "aws_s3_bucket")
    for resource in resources:
        stack.resource_types[resource["type"]] = stack.resource_types.get(resource["type"], 0) + 1
        _add(stack, resource["type"], resource.get("values") or {}, resource["address"])
        _add_compute(stack, resource["type"], resource.get("values") or {}, resource["address"])
    return stack
