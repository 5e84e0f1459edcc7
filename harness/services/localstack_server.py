"""LocalStack on the host (no Docker) as the harness's second AWS emulator backend.

It runs `localstack.runtime.main` from the Python 3.13 venv that `localstack_setup` prepares,
as a pure data plane: S3, SQS, EventBridge, DynamoDB + Streams, IAM, Secrets Manager, SNS, Logs,
and Lambda/Scheduler *records*. The harness runs Lambda code itself, so the harness executor
plugin only makes functions go Active and refuses (and records) invocations LocalStack would
run; event-source mappings are kept as records and never poll (see executor/harness_localstack).

Community LocalStack has no ECS, ECR, MQ, RDS, ElastiCache, Pipes or EFS (501). Those
services go to a moto server running beside it (the "companion", in the same account),
together with what their control planes must share with them: EC2 (subnets and security
groups that RDS, EFS and ElastiCache validate; instance profiles RunInstances looks up),
IAM (those profiles and roles) and Secrets Manager (RDS keeps its managed master secret in
its own account's Secrets Manager). `routes` names them; the override, the harness's own
clients and the gateway send each service where it lives.

Each instance gets a private FILESYSTEM_ROOT, HOME and TMPDIR under the run directory, with the
offline pieces linked in where LocalStack looks for them (DynamoDB Local, Java, the kinesis mock
behind DynamoDB Streams), so two instances on one host share no state, S3 object storage
included (LocalStack hard-codes /tmp/localstack-s3-storage; the plugin moves it under TMPDIR).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import MissingBinaryError, PortInUseError, ServiceStartError
from harness.services import localstack_setup
from harness.services.base import Endpoint, Service
from harness.services.localstack_setup import LocalStackInstall
from harness.services.ports import free_port, port_in_use
from harness.services.process import ManagedProcess, RunDirectory
from harness.services.readiness import http_ok, wait_until

COMPONENT = "localstack"
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
#: AWS APIs served by the moto companion (boto3 and Terraform endpoint names agree for these).
COMPANION_SERVICES = (
    "ec2", "iam", "rds", "mq", "elasticache", "efs", "ecs", "ecr", "pipes", "secretsmanager", "ssm",
)  # fmt: skip
#: Inherited from the caller's environment; everything else LocalStack reads is set explicitly,
#: so a stray DEBUG, PERSISTENCE or PYTHONPATH in the user's shell cannot change the emulator.
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
#: LocalStack's install layout: <var_libs>/<package>/<version>; see localstack.packages.
DYNAMODB_LOCAL_VERSION_DIR = Path("dynamodb-local") / "2"
JAVA_VERSION_DIR = Path("java") / "21"  # what DynamoDB Local's installer asks for; Java 17 works


def aws_client(service: str, endpoint_url: str, **kwargs: Any) -> Any:
    """A boto3 client for this emulator with dummy credentials and quick, bounded retries."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
        **kwargs,
    )


def prepare_filesystem_root(install: LocalStackInstall, base: Path) -> Path:
    """Lay out `<base>/fs` so LocalStack finds DynamoDB Local, Java, kinesis-local and its
    prebuilt service catalog, offline.

    Only links: the heavy files stay in the shared install. Each package gets its own link
    (not one link for all of lib/) so anything LocalStack installs at run time lands in this
    instance's directory, not in the shared one.
    """
    fs_root = base / "fs"
    libs = fs_root / "var" / "lib" / "localstack" / "lib"
    ddb = libs / DYNAMODB_LOCAL_VERSION_DIR
    ddb.mkdir(parents=True, exist_ok=True)
    links = {
        ddb / "DynamoDBLocal.jar": install.dynamodb_local_jar,
        ddb / "DynamoDBLocal_lib": install.dynamodb_local_lib,
        ddb / localstack_setup.AGENT_JAR_NAME: install.agent_jar,
        libs / JAVA_VERSION_DIR: install.java_home,
        libs / "kinesis-local" / localstack_setup.KINESIS_LOCAL_VERSION: install.npm_prefix,
    }
    static_libs = fs_root / "usr" / "lib" / "localstack"
    for prebuilt in install.static_libs.iterdir():  # the service-catalog index
        links[static_libs / prebuilt.name] = prebuilt
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return fs_root


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the parenthesised command name (which may contain spaces): state, ppid, ...
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[19]


def _descendants(root_pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every live process below `root_pid`, nearest first."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found: list[tuple[int, str]] = []
    queue = [root_pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child[0])
    return found


class LocalStackService(Service):
    """LocalStack community 2026.3.0 as a host process on 127.0.0.1:PORT."""

    name = "localstack"
    kind = "native"

    def __init__(
        self,
        run_dir: RunDirectory,
        port: int | None = None,
        *,
        auto_install: bool = True,
        warm_dynamodb: bool = True,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """`auto_install=False` refuses to install (an error names the setup command) instead
        of running the ~90 s first-time setup inside start(). `warm_dynamodb` makes wait_ready
        start DynamoDB Local and read one stream record, so the first real table does not pay
        for the JVM's start and a broken DynamoDB fails here, at start, with the log."""
        self.run_dir = run_dir
        self.requested_port = port
        self.port = port or 0
        self.auto_install = auto_install
        self.warm_dynamodb = warm_dynamodb
        self.extra_env = dict(extra_env or {})
        self.process: ManagedProcess | None = None
        self.base_dir: Path | None = None
        self.timings: dict[str, float] = {}
        self._started_at = 0.0
        from harness.services.moto_server import MotoService

        self.companion = MotoService(run_dir, extra_env={"MOTO_ACCOUNT_ID": ACCOUNT_ID})

    @property
    def routes(self) -> dict[str, str]:
        """Service -> URL of the services this backend sends to its moto companion."""
        return {service: self.companion.endpoint.url for service in COMPANION_SERVICES}

    # -- Service -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        if not self.port:
            raise ServiceStartError(COMPONENT, "endpoint asked for before start()")
        url = f"http://127.0.0.1:{self.port}"
        return Endpoint(host="127.0.0.1", port=self.port, url=url, extras={"region": REGION})

    @property
    def invocation_log(self) -> Path | None:
        """JSON lines of Lambda invocations LocalStack wanted to run and the executor refused."""
        return self.base_dir / "lambda-invocations.jsonl" if self.base_dir else None

    def start(self) -> None:
        if self.process is not None:
            return
        # The port first: it is cheap, and a taken port must not wait for a first-time install.
        if self.requested_port is not None and port_in_use(self.requested_port):
            raise PortInUseError(
                COMPONENT,
                f"port {self.requested_port} on 127.0.0.1 is already taken",
                hint="stop whatever listens there, or let the harness pick a free port (port=None)",
            )
        install = self._install()
        self.port = self.requested_port or free_port()
        self.base_dir = self.run_dir.sub(f"localstack-{self.port}")
        fs_root = prepare_filesystem_root(install, self.base_dir)
        env = self._environment(fs_root)
        self.process = ManagedProcess(
            f"localstack-{self.port}",
            [str(install.python), "-m", "localstack.runtime.main"],
            run_dir=self.run_dir,
            env=env,
            cwd=self.base_dir,
        )
        self._started_at = time.monotonic()
        self.process.start()
        self.companion.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        process = self._require_process()
        deadline = time.monotonic() + timeout
        url = self.endpoint.url
        common: dict[str, Any] = {
            "component": COMPONENT,
            "alive": process.alive,
            "log_tail": process.log_tail,
        }
        wait_until(
            http_ok(f"{url}/_localstack/health"),
            timeout=timeout,
            what="answering /_localstack/health",
            **common,
        )
        self.timings["health"] = time.monotonic() - self._started_at
        wait_until(
            self._aws_answers,
            timeout=max(1.0, deadline - time.monotonic()),
            interval=0.2,
            what="serving S3 and SQS",
            **common,
        )
        self.timings["ready"] = time.monotonic() - self._started_at
        self._load_providers()
        self.timings["providers"] = time.monotonic() - self._started_at
        self.companion.wait_ready(timeout=max(5.0, deadline - time.monotonic()))
        if self.warm_dynamodb:
            self._warm_dynamodb(max(5.0, deadline - time.monotonic()))
            self.timings["dynamodb_warm"] = time.monotonic() - self._started_at

    def stop(self) -> None:
        self.companion.stop()
        if self.process is None:
            return
        pid = self.process.pid
        # LocalStack's helpers are in its group (harness plugin), but walk the tree too: a
        # helper that escaped the group must not outlive the emulator.
        helpers = _descendants(pid) if pid else []
        started = time.monotonic()
        self.process.stop(grace=6.0)
        for helper, start_time in helpers:
            stat = _proc_stat(helper)
            if stat is None or stat[1] != start_time:  # gone, or the pid now belongs to another process
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(helper, signal.SIGKILL)
        self.timings["stop"] = time.monotonic() - started
        self.process = None

    # -- helpers -------------------------------------------------------------------------------

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client pointed at this instance."""
        return aws_client(service, self.endpoint.url, **kwargs)

    def companion_client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client pointed at the moto companion (the services in `routes`)."""
        return aws_client(service, self.companion.endpoint.url, **kwargs)

    def _install(self) -> LocalStackInstall:
        if self.auto_install:
            return localstack_setup.ensure_localstack()
        install = localstack_setup.installed()
        if install is None:
            raise MissingBinaryError(
                COMPONENT,
                "LocalStack is not installed (or its inputs changed since setup)",
                hint=f"run `{localstack_setup.SETUP_COMMAND}` (or `harness setup localstack`) once",
            )
        return install

    def _require_process(self) -> ManagedProcess:
        if self.process is None:
            raise ServiceStartError(COMPONENT, "wait_ready() called before start()")
        return self.process

    def _environment(self, fs_root: Path) -> dict[str, str]:
        assert self.base_dir is not None
        home = self.base_dir / "home"
        tmp = self.base_dir / "tmp"
        home.mkdir(exist_ok=True)
        tmp.mkdir(exist_ok=True)
        env = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
        env.update(
            {
                "HOME": str(home),
                "TMPDIR": str(tmp),
                # The machine has /.dockerenv; without this LocalStack believes it is in a container.
                "OVERRIDE_IN_DOCKER": "0",
                "FILESYSTEM_ROOT": str(fs_root),
                "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
                "LOCALSTACK_HOST": f"localhost:{self.port}",
                # `path` or `domain` queue URLs break Terraform's SQS resources.
                "SQS_ENDPOINT_STRATEGY": "off",
                "DISABLE_EVENTS": "1",  # no analytics calls home
                "SKIP_SSL_CERT_DOWNLOAD": "1",
                "DNS_ADDRESS": "0",
                "LS_LOG": "warn",
                "EAGER_SERVICE_LOADING": "0",
                "PERSISTENCE": "0",
                "DYNAMODB_IN_MEMORY": "1",
                # Native DynamoDB Local streams. The default (v1) copies records into a Node
                # kinesis mock and silently drops those written while its stream is ENABLING:
                # measured, 0 of 2 records for items put right after a table went ACTIVE.
                "PROVIDER_OVERRIDE_DYNAMODBSTREAMS": "v2",
                "KINESIS_LATENCY": "0",  # for Kinesis proper: streams ACTIVE at once
                "KINESIS_PERSISTENCE": "0",
                # The harness plugins (executor/harness_localstack): no Docker, records only.
                "LAMBDA_RUNTIME_EXECUTOR": "harness",
                "PROVIDER_OVERRIDE_S3": "harness",
                "HARNESS_DATA_PLANE": "1",
                "HARNESS_LAMBDA_INVOCATION_LOG": str(self.base_dir / "lambda-invocations.jsonl"),
                # Where the VPCs live: Lambda's CreateFunction looks its subnets up there.
                "HARNESS_EC2_ENDPOINT": self.companion.endpoint.url,
            }
        )
        env.update(self.extra_env)
        return env

    def _load_providers(self) -> None:
        """One call per service, one at a time, before anything calls them in parallel.

        LocalStack loads a service's provider (and the moto modules behind it) on the first
        request. Terraform's first wave sends twenty at once; concurrent first imports of
        `moto.events` deadlocked (measured: `deadlock detected by _ModuleLock('moto.events')`
        on every EventBridge call from then on, the apply hanging on its rules)."""
        calls = {
            "events": lambda c: c.list_event_buses(),
            "scheduler": lambda c: c.list_schedules(),
            "lambda": lambda c: c.list_functions(),
            "logs": lambda c: c.describe_log_groups(),
            "cloudwatch": lambda c: c.describe_alarms(),
            "sns": lambda c: c.list_topics(),
            "sts": lambda c: c.get_caller_identity(),
        }
        for service, call in calls.items():
            call(self.client(service))

    def _aws_answers(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client("s3").list_buckets()
            self.client("sqs").list_queues()
        except (BotoCoreError, ClientError):
            return False
        return True

    def _warm_dynamodb(self, timeout: float) -> None:
        """Start DynamoDB Local and prove a stream delivers: create a table with a stream, write
        an item, read its record back, drop the table. The first DynamoDB call pays the JVM's
        start (~2-4 s); better here than inside the first Terraform apply or scenario step."""
        process = self._require_process()
        ddb = self.client("dynamodb")
        streams = self.client("dynamodbstreams")
        table = f"harness-warmup-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + timeout

        def check_alive() -> None:
            if not process.alive():
                raise ServiceStartError(COMPONENT, "exited while warming DynamoDB:\n" + process.log_tail())
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    COMPONENT,
                    f"DynamoDB Streams delivered no record for {table} within {timeout:.0f}s;"
                    f" last log lines:\n{process.log_tail()}",
                )

        try:
            description = ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            stream_arn = description["TableDescription"]["LatestStreamArn"]
            ddb.get_waiter("table_exists").wait(
                TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
            )
            # Items written while a stream is still ENABLING never reach it (LocalStack drops
            # them silently), so wait for ENABLED, as any writer that needs the record must.
            while (
                streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["StreamStatus"]
                != "ENABLED"
            ):
                check_alive()
                time.sleep(0.1)
            ddb.put_item(TableName=table, Item={"pk": {"S": "warmup"}})
            while not _stream_records(streams, stream_arn):
                check_alive()
                time.sleep(0.1)
        finally:
            from botocore.exceptions import BotoCoreError, ClientError

            # Best effort: the instance is private and short-lived.
            with contextlib.suppress(BotoCoreError, ClientError):
                ddb.delete_table(TableName=table)


def _stream_records(streams: Any, stream_arn: str) -> int:
    """How many records all shards of a stream hold right now (from TRIM_HORIZON)."""
    total = 0
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"].get("Shards", [])
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        total += len(streams.get_records(ShardIterator=iterator)["Records"])
    return total
