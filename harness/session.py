"""A harness session: services up, Terraform applied once, compute running, data resettable.

One session serves many scenarios: infrastructure is applied once per run, and between
scenarios only data (objects, messages, invocation records, the clock) is reset. Each
pytest-xdist worker owns a session, so parallel workers never share an emulator.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from harness import backends
from harness import config as harness_config
from harness.chaos.aws_proxy import AwsFaultProxy
from harness.chaos.delivery import DeliveryFaults
from harness.chaos.tcp_proxy import TcpFaultProxy
from harness.clock import VirtualClock
from harness.deploy import bind, takeover
from harness.deploy.deployment import Deployment
from harness.deploy.stack import Stack
from harness.errors import DeployError, HarnessError
from harness.paths import REPO_ROOT
from harness.report.subjects import subjects
from harness.report.timeline import Timeline
from harness.runtime import data_reset, dlq
from harness.runtime.alarms import AlarmEvaluator
from harness.runtime.ec2_instances import Ec2InstanceRunner, InstanceEvent
from harness.runtime.ecs_services import EcsServiceSupervisor, TaskEvent
from harness.runtime.ecs_tasks import EcsTaskRunner, TaskRun
from harness.runtime.images import ImageResolver
from harness.runtime.lambda_code import CodeStore
from harness.runtime.lambda_runtime import Invocation, LambdaRuntime, RuntimeSettings
from harness.runtime.pipes import DynamoDBStreamPipe, emulator_matcher, moto_matcher
from harness.runtime.poller import QueuePoller
from harness.runtime.rule_targets import EventBridgeLambdaTarget
from harness.runtime.scheduler import Scheduler
from harness.runtime.sqs_event_source import SqsEventSourceMapping
from harness.services import service_address, tls
from harness.services.base import Service
from harness.services.outages import Outages
from harness.services.process import RunDirectory
from harness.services.rabbitmq_admin import RabbitAdmin

REGION = "us-east-1"
RABBIT_SETTLE_S = 1.0


@dataclass
class SessionTimings:
    services: dict[str, float] = field(default_factory=dict)
    services_total: float = 0.0
    build: float = 0.0
    terraform_init: float = 0.0
    terraform_apply: float = 0.0
    bind: float = 0.0
    takeover: float = 0.0


def _stop_quietly(service: Service) -> None:
    try:
        service.stop()
    except Exception as exc:  # noqa: BLE001 - stopping the others matters more
        print(f"harness: stopping {service.name} failed: {exc}")


class HarnessSession:
    def __init__(
        self,
        backend: str | None = None,
        *,
        label: str = "session",
        support_services: bool = True,
        config: harness_config.Config | None = None,
        config_dir: Path | None = None,
        deploy: bool = True,
        say: Callable[[str], None] = print,
    ) -> None:
        """`config` (default: harness.toml from the working directory up) names the root;
        `config_dir` applies another root instead (test stacks), without build or variables."""
        self._config = config
        self.config_dir = config_dir
        self.want_deploy = deploy
        self.backend = backends.selected_backend(backend)
        self.label = label
        self.want_support = support_services
        self.say = say
        self.run_dir = RunDirectory.create(label)
        self.timeline = Timeline()
        self.clock = VirtualClock(self.run_dir.path / "clock.txt")
        self.timings = SessionTimings()
        self.emulator: Service | None = None
        self.support: dict[str, Service] = {}
        self.stack = Stack()
        self.runtime: LambdaRuntime | None = None
        self.ecs: EcsTaskRunner | None = None
        self.scheduler: Scheduler | None = None
        self.ecs_services: EcsServiceSupervisor | None = None
        self.alarms: AlarmEvaluator | None = None
        self.ec2: Ec2InstanceRunner | None = None
        self.pipes: list[DynamoDBStreamPipe] = []
        self.outages = Outages({})
        self.consumed_rabbit_queues: set[str] = set()
        self.seed = 0
        #: the loopback address where managed stores are bound (127.0.N.1), and what is bound
        self.service_address = ""
        self.bindings: list[bind.Binding] = []
        self.deployment: Deployment | None = None
        self.tls: tls.TlsFiles | None = None
        self.mappings: list[SqsEventSourceMapping] = []
        self.sns_taps: dict[str, str] = {}
        self.taps: list[EventBridgeLambdaTarget] = []
        self._clients: dict[str, Any] = {}
        #: fault injection points: AWS calls of the compute, its Redis/PostgreSQL traffic,
        #: and the deliveries of the SQS event-source mappings
        self.aws_proxy: AwsFaultProxy | None = None
        self.tcp_proxies: dict[str, TcpFaultProxy] = {}
        self.delivery_faults = DeliveryFaults()

    @property
    def config(self) -> harness_config.Config:
        if self._config is None:
            base = self.config_dir
            loaded = harness_config.load(REPO_ROOT if base is not None else None)
            self._config = loaded.with_root(base) if base is not None else loaded
        return self._config

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> HarnessSession:
        try:
            self._start_services()
            if self.want_deploy:
                self._deploy()
                self._start_compute()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_services(self) -> None:
        started = time.monotonic()
        self.emulator = backends.make_emulator(self.backend, self.run_dir)
        services: dict[str, Service] = {"emulator": self.emulator}
        if self.want_support:
            docker = backends.use_docker()
            # One private loopback address per session for the bound stores, and a certificate
            # for it: the managed services' stand-ins speak TLS, as in AWS.
            self.service_address = service_address.reserve()
            self.tls = tls.make(self.run_dir.sub("tls"), ["127.0.0.1", "localhost", self.service_address])
            self.support = backends.make_support_services(self.run_dir, docker, self.tls)
            services.update(self.support)
        kinds = ", ".join(f"{name}={svc.name}/{svc.kind}" for name, svc in services.items())
        self.say(f"harness: backend {self.backend}; services: {kinds}; run dir {self.run_dir.path}")

        def bring_up(item: tuple[str, Service]) -> tuple[str, float]:
            name, service = item
            t0 = time.monotonic()
            service.start()
            service.wait_ready()
            return name, time.monotonic() - t0

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(services)) as pool:
            futures = [pool.submit(bring_up, item) for item in services.items()]
            errors: list[BaseException] = []
            for future in futures:
                try:
                    name, seconds = future.result()
                    self.timings.services[name] = seconds
                except BaseException as exc:  # noqa: BLE001 - report every failed service
                    errors.append(exc)
            if errors:
                raise errors[0]
        self.outages = Outages(self.support)
        self._start_fault_proxies()
        self.timings.services_total = time.monotonic() - started

    def _start_fault_proxies(self) -> None:
        """The one interception point per kind of traffic the pipeline's compute sends.

        The harness itself (data resets, expectations, Terraform) talks to the services
        directly, so a fault never blinds the checks that are to find its consequences. The
        TCP proxies listen where the bound stores' endpoints point (the service address and
        the AWS port of each) and forward to the TLS port of the harness's own server.
        """
        assert self.emulator is not None
        self.aws_proxy = AwsFaultProxy(self.emulator.endpoint.url, routes=self.api_routes).start()
        for port, _key, name in bind.KINDS.values():
            service = self.support.get(name)
            if service is None:
                continue
            endpoint = service.endpoint
            upstream = int(endpoint.extras.get("tls_port") or endpoint.port)
            proxy = TcpFaultProxy(name, endpoint.host, upstream, host=self.service_address, port=port)
            self.tcp_proxies[name] = proxy.start()

    @property
    def api_routes(self) -> dict[str, str]:
        """Service -> URL for the AWS APIs a backend sends elsewhere (LocalStack: to moto)."""
        assert self.emulator is not None
        return backends.api_routes(self.backend, self.emulator)

    @property
    def endpoint_url(self) -> str:
        assert self.emulator is not None
        return self.emulator.endpoint.url

    @property
    def compute_endpoint_url(self) -> str:
        """Where the pipeline's own AWS clients go: the fault proxy in front of the emulator."""
        return self.aws_proxy.url if self.aws_proxy is not None else self.endpoint_url

    def database_url(self) -> str:
        """The harness's own (superuser) connection to the database the stack's RDS instance is
        bound to; the support service's default database when nothing is bound."""
        service = self.support["postgres"]
        databases = [b.store.details.get("db_name", "") for b in self.bindings if b.store.kind == "postgres"]
        admin_url = getattr(service, "admin_url", None)
        if admin_url is None:
            return service.endpoint.url
        return str(admin_url(databases[0])) if databases and databases[0] else str(admin_url())

    def clear_faults(self, kind: str = "all") -> None:
        """Remove the faults in force: all, or one kind (aws, network, handler, delivery)."""
        if kind in ("all", "aws") and self.aws_proxy is not None:
            self.aws_proxy.clear()
        if kind in ("all", "network"):
            for proxy in self.tcp_proxies.values():
                proxy.clear()
        if kind in ("all", "handler") and self.runtime is not None:
            self.runtime.fault_hooks.clear()
        if kind in ("all", "delivery"):
            self.delivery_faults.clear()

    def _deploy(self) -> None:
        self._bind_emulator()
        deployment = Deployment(
            self.config,
            self.run_dir.sub("terraform"),
            routes=self.api_routes,
            default_url=self.endpoint_url,
            region=REGION,
            say=self.say,
        )
        self.say(f"harness: terraform apply of {deployment.shown_root} on {self.backend} ...")
        self.stack, _ = deployment.apply()
        self.deployment = deployment
        self.timings.build = deployment.timings.get("build", 0.0)
        self.timings.terraform_init = deployment.timings.get("init", 0.0)
        self.timings.terraform_apply = deployment.timings.get("apply", 0.0)
        st = self.stack
        self.say(
            f"harness: applied in {self.timings.terraform_apply:.1f}s: {len(st.functions)} functions, "
            f"{len(st.queues)} queues, {len(st.rules)} rules, {len(st.buckets)} buckets"
        )
        t0 = time.monotonic()
        self.bindings = bind.bind_stores(
            self.stack,
            self.support,
            self.service_address,
            lambda arn: str(self.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]),
            self._describe_server,
        )
        self.timings.bind = time.monotonic() - t0
        for binding in self.bindings:
            self.say(f"harness: bound {binding.describe()}")

    def _describe_server(self, name: str) -> str:
        service = self.support[name]
        endpoint = service.endpoint
        return f"{name} {endpoint.host}:{endpoint.extras.get('tls_port') or endpoint.port} (TLS)"

    def _bind_emulator(self) -> None:
        """Tell the emulator that holds RDS, MQ and ElastiCache where their endpoints are."""
        if not self.service_address or self.emulator is None:
            return
        url = backends.control_plane_url(self.backend, self.emulator)
        body = json.dumps(bind.emulator_bindings(self.service_address, set(self.support))).encode()
        request = urllib.request.Request(
            f"{url}/moto-api/harness/bindings",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except OSError as exc:
            raise DeployError(f"the emulator at {url} did not accept the service bindings: {exc}") from None

    def runtime_settings(self) -> RuntimeSettings:
        """What every process of the compute gets: the gateway, the region, the virtual clock,
        and the local CA the bound stores' TLS certificates come from."""
        extra = {"SSL_CERT_FILE": str(self.tls.ca)} if self.tls is not None else {}
        return RuntimeSettings(
            endpoint_url=self.compute_endpoint_url, region=REGION, clock_file=self.clock.file, extra_env=extra
        )

    def _start_compute(self) -> None:
        t0 = time.monotonic()
        done = takeover.take_over_compute(
            self.stack, {n: self.client(n) for n in ("lambda", "events", "sqs", "cloudwatch", "sns")}
        )
        self.timings.takeover = time.monotonic() - t0
        self.timeline.add("takeover", self.clock.iso(), summary=json.loads(takeover.describe(done)))
        settings = self.runtime_settings()
        self.runtime = LambdaRuntime(
            self.stack.functions,
            settings,
            self.run_dir.sub("lambda"),
            virtual_now=self.clock.iso,
            on_invocation=self._record_invocation,
            code=CodeStore(self.stack, lambda: self.client("s3"), self.run_dir.sub("lambda-code")),
        )
        for mapping in self.stack.event_source_mappings:
            queue = self.stack.queue_by_arn(mapping.source_arn)
            if queue is None:
                raise HarnessError(
                    f"event-source mapping {mapping.address} reads {mapping.source_arn}, "
                    "which is not a queue of this stack"
                )
            source = SqsEventSourceMapping(
                mapping, queue, self.client("sqs"), self.runtime, REGION, self.compress_wait
            )
            source.delivery = self.delivery_faults
            self.mappings.append(source)
        self.taps = [
            EventBridgeLambdaTarget(tap, self.client("sqs"), self.runtime) for tap in done.lambda_taps
        ]
        self.sns_taps = done.sns_taps
        self.ecs = EcsTaskRunner(
            settings,
            ImageResolver(self.stack, self.config.project_dir),
            self.run_dir.sub("ecs"),
            virtual_now=self.clock.iso,
            on_run=self._record_task,
        )
        self.scheduler = Scheduler(
            self.stack,
            done.schedule_targets,
            self.clock,
            self.timeline,
            self.runtime,
            self.ecs,
            self.client("sqs"),
            REGION,
            quiet=lambda: self.await_quiet(timeout=300, settle=self.firing_settle),
        )
        self.alarms = AlarmEvaluator(self.stack, self.client, REGION, self.clock.iso)
        matcher = moto_matcher() if self.backend == "moto" else emulator_matcher(self.client("events"))
        self.pipes = [
            DynamoDBStreamPipe(
                pipe,
                self.stack,
                self.client("dynamodbstreams"),
                self.client("sqs"),
                matcher,
                self._record_pipe,
            )
            for pipe in self.stack.pipes.values()
        ]
        for poller in self._pollers():
            poller.start()
        self.ec2 = Ec2InstanceRunner(
            self.client("ec2"),
            self.client("s3"),
            settings,
            self.run_dir.sub("ec2"),
            self.clock.iso,
            self._record_instance,
        )
        self.ec2.start()
        self.ecs_services = EcsServiceSupervisor(
            self.stack, self.ecs, self.run_dir.sub("ecs-services"), self.clock.iso, self._record_service_task
        )
        self.ecs_services.start()

    def stop(self) -> None:
        if self.ec2 is not None:
            with contextlib.suppress(Exception):
                self.ec2.stop()
        if self.ecs_services is not None:
            with contextlib.suppress(Exception):
                self.ecs_services.stop()
        for poller in self._pollers():
            with contextlib.suppress(Exception):
                poller.stop()
        if self.runtime is not None:
            self.runtime.stop()
        proxies: list[TcpFaultProxy | AwsFaultProxy] = [*self.tcp_proxies.values()]
        if self.aws_proxy is not None:
            proxies.append(self.aws_proxy)
        for proxy in proxies:
            with contextlib.suppress(Exception):
                proxy.stop()
        self.tcp_proxies, self.aws_proxy = {}, None
        services = [*self.support.values(), *([self.emulator] if self.emulator else [])]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            list(pool.map(_stop_quietly, services))
        self.mappings, self.taps, self.pipes, self.support, self.emulator = [], [], [], {}, None

    def __enter__(self) -> HarnessSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients and events -------------------------------------------------------------

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.session.Session().client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.api_routes.get(service, self.endpoint_url),
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
            )
        return self._clients[service]

    def _record_invocation(self, invocation: Invocation) -> None:
        self.timeline.add(
            "invoke",
            invocation.virtual_time,
            function=invocation.function,
            source=invocation.source,
            outcome=invocation.outcome,
            ms=round(invocation.duration_ms, 1),
            subjects=subjects(invocation.event),
            **(
                {"error": f"{invocation.error_type}: {invocation.error_message}"} if not invocation.ok else {}
            ),
        )

    def _record_task(self, run: TaskRun) -> None:
        self.timeline.add(
            "ecs.task",
            run.virtual_time,
            family=run.family,
            container=run.container,
            started_by=run.started_by,
            exit_code=run.exit_code,
            ms=round(run.duration_ms, 1),
        )

    def _record_pipe(self, pipe: object, read: int, kept: int) -> None:
        self.timeline.add(
            "pipe", self.clock.iso(), pipe=getattr(pipe, "name", ""), records=read, delivered=kept
        )

    def _record_instance(self, event: InstanceEvent) -> None:
        self.timeline.add(
            f"ec2.instance.{event.kind}", event.virtual_time, instance=event.instance_id, detail=event.detail
        )

    def _record_service_task(self, event: TaskEvent) -> None:
        self.timeline.add(
            f"ecs.service.task.{event.kind}",
            event.virtual_time,
            service=event.service,
            slot=event.slot,
            task=event.task_arn.rsplit("/", 1)[-1][:12],
            **({"exit_code": event.exit_code, "reason": event.reason} if event.kind == "stopped" else {}),
        )

    def compress_wait(self, delta: timedelta, reason: str) -> None:
        self.clock.advance(delta)
        self.timeline.add("clock.compress", self.clock.iso(), seconds=delta.total_seconds(), reason=reason)

    # -- data ---------------------------------------------------------------------------

    def _pollers(self) -> list[QueuePoller]:
        return [*self.mappings, *self.taps, *self.pipes]

    def reset_data(
        self,
        clock_start: datetime | None = None,
        seed: int = 0,
        flow: str | None = None,
        flows: frozenset[str] = frozenset(),
    ) -> None:
        """Empty every bucket, queue, table and store of the stack; keep the infrastructure.

        With `flow`, only that flow's schedules (and those of no flow) fire as the clock moves.
        """
        self.clear_faults("all")
        if self.aws_proxy is not None:
            self.aws_proxy.reseed(seed)
            self.aws_proxy.clear_log()  # a replay bundle holds the requests of its own scenario
        restored = self.outages.restore_all()
        if restored:
            self.say(f"harness: restored {', '.join(restored)} after the previous scenario")
        self._drain_rabbit()
        if self.ec2 is not None:
            self.ec2.reset()
        for poller in self._pollers():
            poller.pause()
        try:
            s3 = self.client("s3")
            for bucket in self.stack.buckets:
                self._empty_bucket(s3, bucket)
            self._reset_stores()
            urls = [q.url for q in self.stack.queues.values()] + [t.queue_url for t in self.taps]
            urls += list(self.sns_taps.values())
            for url in urls:
                self._empty_queue(url)
            if self.runtime is not None:
                self.runtime.reset_records()
            if self.ecs is not None:
                self.ecs.reset_records()
            if self.ecs_services is not None:
                self.ecs_services.reset_records()
            self.timeline.clear()
            self.clock.set(clock_start or datetime.now().astimezone().replace(microsecond=0))
            if self.scheduler is not None:
                self.scheduler.reset(self.clock.now(), seed, flow, flows)
            if self.alarms is not None:
                self.alarms.reset()
            for pipe in self.pipes:  # the reset's own deletions are history, not news
                pipe.seek("LATEST")
        finally:
            for poller in self._pollers():
                poller.resume()

    def _drain_rabbit(self) -> None:
        """Purge RabbitMQ, let jobs already in a worker's hands finish, purge again: nothing of
        the last scenario reaches the next one."""
        admin = self.rabbit_admin
        if admin is None or not self.want_deploy:
            return
        self.note_rabbit_consumers()
        admin.purge_all()
        deadline = time.monotonic() + 30
        while any(q.unacked for q in admin.queues()) and time.monotonic() < deadline:
            time.sleep(0.1)
        admin.purge_all()

    def note_rabbit_consumers(self) -> None:
        """Remember which RabbitMQ queues have consumers now, so their waiting messages count
        as work even while the consumers are away (a broker restart, a replaced task)."""
        admin = self.rabbit_admin
        if admin is None:
            return
        with contextlib.suppress(OSError):
            admin.busy_queues(self.consumed_rabbit_queues)

    def _reset_stores(self) -> None:
        """DynamoDB items, PostgreSQL rows, Redis keys and RabbitMQ messages of the last scenario."""
        if not self.want_deploy:
            return
        dynamodb = self.client("dynamodb")
        for table in self.stack.tables.values():
            data_reset.empty_table(dynamodb, table)
        if "postgres" in self.support:
            data_reset.truncate_postgres(self.database_url())
        if "redis" in self.support:
            data_reset.flush_redis(self.support["redis"].endpoint.url)

    @property
    def rabbit_admin(self) -> RabbitAdmin | None:
        service = self.support.get("rabbitmq")
        if service is None or "metrics_url" not in service.endpoint.extras:
            return None
        return RabbitAdmin(service.endpoint)

    def evaluate_alarms(self) -> None:
        """Evaluate the queue-depth alarms now (the emulators keep no SQS metrics)."""
        if self.alarms is None:
            return
        for alarm, state in self.alarms.evaluate():
            self.timeline.add(
                "alarm", self.clock.iso(), alarm=alarm.name, state=state.state, value=state.value
            )

    def _empty_bucket(self, s3: Any, bucket: str) -> None:
        keep = {key for name, key in self.stack.managed_objects if name == bucket}
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            entries = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                if v["Key"] not in keep  # Terraform's own objects (a worker script) are infrastructure
            ]
            for start in range(0, len(entries), 1000):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": entries[start : start + 1000], "Quiet": True}
                )

    def _empty_queue(self, url: str) -> None:
        sqs = self.client("sqs")
        try:
            sqs.purge_queue(QueueUrl=url)
        except sqs.exceptions.PurgeQueueInProgress:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
                "Messages", []
            )
            if not messages and self.queue_depth(url) == 0:
                return
            for m in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def queue_depth(self, url: str) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def peek_messages(self, url: str) -> list[dict[str, Any]]:
        """A queue's messages without receiving them (so receive counts stay untouched)."""
        return dlq.peek_messages(self.endpoint_url, self.backend, url)

    # -- quiescence ---------------------------------------------------------------------

    def in_flight(self) -> list[str]:
        """What is still moving: running invocations, busy pollers, messages on consumed queues."""
        busy: list[str] = []
        if self.runtime is not None and self.runtime.busy:
            busy.append("invocation running")
        if self.ecs is not None and self.ecs.busy:
            busy.append("ECS task running")
        if self.ecs_services is not None and self.ecs_services.busy:
            busy.append("ECS service task being replaced")
        if self.ec2 is not None:
            with contextlib.suppress(Exception):  # its own thread records emulator errors
                self.ec2.sync()  # an instance launched a moment ago must not look quiet
            if self.ec2.starting:
                busy.append("EC2 instance starting")
            for instance in self.ec2.running():
                depth = self.queue_depth(instance.queue_url) if instance.queue_url else 0
                if depth:
                    busy.append(f"{depth} message(s) for EC2 worker {instance.instance_id}")
        admin = self.rabbit_admin
        if admin is not None and self.ecs_services is not None and "rabbitmq" not in self.outages.down:
            try:
                busy.extend(admin.busy_queues(self.consumed_rabbit_queues))
            except OSError as exc:  # up as far as the harness knows, so it is coming back
                busy.append(f"RabbitMQ metrics unavailable ({exc})")
        for poller in self._pollers():
            if poller.in_flight:
                busy.append("poller busy")
        for mapping in self.mappings:
            depth = self.queue_depth(mapping.queue.url)
            if depth:
                busy.append(f"{depth} message(s) on {mapping.queue.name}")
        for tap in self.taps:
            depth = self.queue_depth(tap.queue_url)
            if depth:
                busy.append(f"{depth} event(s) for {tap.tap.function_name}")
        return busy

    @property
    def firing_settle(self) -> float:
        """Settle time after a scheduled firing: LocalStack delivers events asynchronously."""
        return 0.0 if self.backend == "moto" else 0.5

    def advance_to(self, moment: datetime, timeout: float = 300.0) -> int:
        """Move the virtual clock, firing every schedule due on the way; returns the firings."""
        if self.scheduler is None:
            self.clock.set(moment)
            return 0
        return self.scheduler.advance_to(moment)

    def await_quiet(self, timeout: float = 30.0, settle: float | None = None) -> float:
        """Block until nothing is in flight for a settle period; returns the seconds it took."""
        if settle is None:
            settle = 0.3 if self.backend == "moto" else 1.0
        if self.consumed_rabbit_queues:
            # RabbitMQ's metrics trail a publish by 0.25 s when idle and more under load (a
            # CI run declared quiet before the workers saw the jobs): wait past that.
            settle = max(settle, RABBIT_SETTLE_S)
        started = time.monotonic()
        quiet_since: float | None = None
        while True:
            busy = self.in_flight()
            now = time.monotonic()
            if not busy:
                quiet_since = quiet_since or now
                if now - quiet_since >= settle:
                    return now - started
            else:
                quiet_since = None
            if now - started > timeout:
                raise TimeoutError(f"not quiet after {timeout:.0f}s: {', '.join(busy)}")
            time.sleep(0.05)
