"""harness/services/moto_managed.py against a real `harness.services.moto_main` server.

One server process serves the module (the corrections are applied inside it, exactly as the
harness runs moto); every test starts from empty backends and no bindings.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.services.moto_managed import Binding, BindingError, full_engine_version, parse_bindings
from harness.services.moto_server import MotoService
from harness.services.process import RunDirectory

ROOT = Path(__file__).resolve().parents[2]
BINDINGS = {
    "rds": {"host": "127.0.0.1", "port": 41234},
    "elasticache": {"host": "127.0.0.1", "port": 41235},
    "mq": {"host": "127.0.0.1", "port": 41236},
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One `harness.services.moto_main` server, started the way the harness starts moto."""
    with MotoService(RunDirectory.create("moto-managed-test")) as moto:
        yield moto.endpoint.url


def call(endpoint: str, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{endpoint}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def clients(endpoint: str) -> dict[str, Any]:
    session = boto3.session.Session()
    return {
        name: session.client(
            name,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        for name in ("elasticache", "rds", "mq")
    }


@pytest.fixture
def aws(endpoint: str, clients: dict[str, Any]) -> dict[str, Any]:
    assert call(endpoint, "/moto-api/reset", "POST")[0] == 200
    assert call(endpoint, "/moto-api/harness/bindings", "DELETE") == (200, {})
    return clients


def make_group(elasticache: Any, group_id: str = "cache", **extra: Any) -> dict[str, Any]:
    elasticache.create_cache_subnet_group(
        CacheSubnetGroupName=f"{group_id}-subnets", CacheSubnetGroupDescription="x", SubnetIds=["subnet-1"]
    )
    params: dict[str, Any] = {
        "ReplicationGroupId": group_id,
        "ReplicationGroupDescription": "x",
        "Engine": "redis",
        "EngineVersion": "7.1",
        "CacheNodeType": "cache.t4g.micro",
        "NumCacheClusters": 1,
        "CacheSubnetGroupName": f"{group_id}-subnets",
        "SecurityGroupIds": ["sg-12345678"],
        "TransitEncryptionEnabled": True,
        "AtRestEncryptionEnabled": True,
        "AuthToken": "a" * 32,
        "CacheParameterGroupName": "default.redis7",
        "SnapshotRetentionLimit": 1,
        **extra,
    }
    return dict(elasticache.create_replication_group(**params)["ReplicationGroup"])


def describe_group(elasticache: Any, group_id: str = "cache") -> dict[str, Any]:
    return dict(elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0])


def describe_cluster(elasticache: Any, cluster_id: str) -> dict[str, Any]:
    clusters = elasticache.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    return dict(clusters["CacheClusters"][0])


def make_db(rds: Any) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier="db",
        Engine="postgres",
        EngineVersion="16.4",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="admin_user",
        ManageMasterUserPassword=True,
        StorageEncrypted=True,
    )


def make_broker(mq: Any, engine: str = "RABBITMQ") -> str:
    broker = mq.create_broker(
        BrokerName=f"broker-{engine.lower()}",
        EngineType=engine,
        EngineVersion="3.13" if engine == "RABBITMQ" else "5.18",
        HostInstanceType="mq.t3.micro",
        DeploymentMode="SINGLE_INSTANCE",
        PubliclyAccessible=False,
        AutoMinorVersionUpgrade=True,
        Users=[{"Username": "pipeline", "Password": "p" * 16}],
    )
    return str(broker["BrokerId"])


# --- pure helpers ---------------------------------------------------------------------------


def test_full_engine_version_is_what_aws_reports() -> None:
    assert full_engine_version("redis", "7.1") == "7.1.0"
    assert full_engine_version("redis", "7.1.0") == "7.1.0"
    assert full_engine_version("redis", "6.x") == "6.2.6"
    assert full_engine_version("redis", None) == "7.1.0"


def test_parse_bindings_validates() -> None:
    assert parse_bindings({"rds": {"host": "127.0.0.2"}, "mq": None}) == {"rds": Binding("127.0.0.2", None)}
    bad_documents: list[Any] = [
        [],
        {"s3": {"host": "h"}},
        {"rds": {"port": 1}},
        {"rds": {"host": "h", "port": 0}},
        {"rds": {"host": "h", "port": True}},
    ]
    for bad in bad_documents:
        with pytest.raises(BindingError):
            parse_bindings(bad)


# --- ElastiCache ----------------------------------------------------------------------------


def test_replication_group_creates_its_member_cluster(aws: dict[str, Any]) -> None:
    elasticache = aws["elasticache"]
    group = make_group(elasticache)
    assert group["MemberClusters"] == ["cache-001"]
    cluster = describe_cluster(elasticache, "cache-001")
    assert cluster["ReplicationGroupId"] == "cache"
    assert cluster["CacheClusterStatus"] == "available"
    assert (cluster["Engine"], cluster["EngineVersion"]) == ("redis", "7.1.0")
    assert cluster["CacheNodeType"] == "cache.t4g.micro"
    assert cluster["TransitEncryptionEnabled"] is True
    assert cluster["AtRestEncryptionEnabled"] is True
    assert cluster["AuthTokenEnabled"] is True
    assert cluster["CacheSubnetGroupName"] == "cache-subnets"
    assert cluster["SecurityGroups"] == [{"SecurityGroupId": "sg-12345678", "Status": "active"}]
    assert cluster["CacheParameterGroup"]["CacheParameterGroupName"] == "default.redis7"
    assert cluster["SnapshotRetentionLimit"] == 1
    [node] = cluster["CacheNodes"]
    assert node["Endpoint"]["Address"].startswith("cache-001.")
    assert node["Endpoint"]["Port"] == 6379


def test_num_cache_clusters_and_reader_endpoint(aws: dict[str, Any]) -> None:
    elasticache = aws["elasticache"]
    make_group(elasticache, NumCacheClusters=2)
    group = describe_group(elasticache)
    assert sorted(group["MemberClusters"]) == ["cache-001", "cache-002"]
    assert describe_cluster(elasticache, "cache-002")["ReplicationGroupId"] == "cache"
    [node_group] = group["NodeGroups"]
    assert node_group["PrimaryEndpoint"]["Address"].startswith("master.cache.")
    assert node_group["ReaderEndpoint"]["Address"].startswith("replica.cache.")
    assert node_group["ReaderEndpoint"]["Port"] == 6379


def test_deleting_a_group_deletes_it_and_its_members(aws: dict[str, Any]) -> None:
    elasticache = aws["elasticache"]
    make_group(elasticache, NumCacheClusters=2)
    assert elasticache.delete_replication_group(ReplicationGroupId="cache")["ReplicationGroup"]["Status"] == (
        "deleting"
    )
    with pytest.raises(ClientError, match="ReplicationGroupNotFound"):
        describe_group(elasticache)
    assert elasticache.describe_cache_clusters()["CacheClusters"] == []


def test_retain_primary_cluster_keeps_a_standalone_primary(aws: dict[str, Any]) -> None:
    elasticache = aws["elasticache"]
    make_group(elasticache, NumCacheClusters=2)
    elasticache.delete_replication_group(ReplicationGroupId="cache", RetainPrimaryCluster=True)
    [cluster] = elasticache.describe_cache_clusters()["CacheClusters"]
    assert cluster["CacheClusterId"] == "cache-001"
    assert "ReplicationGroupId" not in cluster


def test_delete_cache_subnet_group(aws: dict[str, Any]) -> None:
    elasticache = aws["elasticache"]
    make_group(elasticache)
    with pytest.raises(ClientError, match="CacheSubnetGroupInUse"):
        elasticache.delete_cache_subnet_group(CacheSubnetGroupName="cache-subnets")
    elasticache.delete_replication_group(ReplicationGroupId="cache")
    elasticache.delete_cache_subnet_group(CacheSubnetGroupName="cache-subnets")
    with pytest.raises(ClientError, match="CacheSubnetGroupNotFound"):
        elasticache.delete_cache_subnet_group(CacheSubnetGroupName="cache-subnets")


# --- bindings ---------------------------------------------------------------------------------


def test_bindings_route_contract(endpoint: str, aws: dict[str, Any]) -> None:
    assert call(endpoint, "/moto-api/harness/bindings") == (200, {})
    assert call(endpoint, "/moto-api/harness/bindings", "POST", BINDINGS) == (200, BINDINGS)
    assert call(endpoint, "/moto-api/harness/bindings") == (200, BINDINGS)
    status, error = call(endpoint, "/moto-api/harness/bindings", "POST", {"rds": {"host": ""}})
    assert status == 400 and "host" in error["error"]
    assert call(endpoint, "/moto-api/harness/bindings") == (200, BINDINGS)  # a bad POST changes nothing
    assert call(endpoint, "/moto-api/reset", "POST")[0] == 200
    assert call(endpoint, "/moto-api/harness/bindings") == (200, BINDINGS)  # emulator settings, not data
    only_rds = {"rds": {"host": "127.0.0.2", "port": None}}
    assert call(endpoint, "/moto-api/harness/bindings", "POST", only_rds) == (200, only_rds)  # replaces
    assert call(endpoint, "/moto-api/harness/bindings", "DELETE") == (200, {})


def test_without_bindings_endpoints_are_moto_s(aws: dict[str, Any]) -> None:
    make_db(aws["rds"])
    endpoint = aws["rds"].describe_db_instances(DBInstanceIdentifier="db")["DBInstances"][0]["Endpoint"]
    assert endpoint["Address"].endswith(".rds.amazonaws.com")
    assert endpoint["Port"] == 5432
    broker_id = make_broker(aws["mq"])
    [instance] = aws["mq"].describe_broker(BrokerId=broker_id)["BrokerInstances"]
    assert instance["Endpoints"] == ["amqps://mockmq:5671"]
    make_group(aws["elasticache"])
    assert describe_group(aws["elasticache"])["NodeGroups"][0]["PrimaryEndpoint"]["Address"].endswith(
        ".cache.amazonaws.com"
    )


def test_rds_reports_the_binding(endpoint: str, aws: dict[str, Any]) -> None:
    rds = aws["rds"]
    make_db(rds)  # created before the binding: described with it
    call(endpoint, "/moto-api/harness/bindings", "POST", BINDINGS)
    db = rds.describe_db_instances(DBInstanceIdentifier="db")["DBInstances"][0]
    assert db["Endpoint"] == {"Address": "127.0.0.1", "Port": 41234}
    created = rds.create_db_instance(
        DBInstanceIdentifier="db2",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="admin_user",
        MasterUserPassword="password-123",
    )["DBInstance"]
    assert created["Endpoint"] == {"Address": "127.0.0.1", "Port": 41234}
    rds.create_db_cluster(
        DBClusterIdentifier="aurora",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="password-123",
    )
    cluster = rds.describe_db_clusters(DBClusterIdentifier="aurora")["DBClusters"][0]
    assert (cluster["Endpoint"], cluster["ReaderEndpoint"], cluster["Port"]) == (
        "127.0.0.1",
        "127.0.0.1",
        41234,
    )
    call(endpoint, "/moto-api/harness/bindings", "POST", {"rds": {"host": "127.0.0.3"}})  # host only
    db = rds.describe_db_instances(DBInstanceIdentifier="db")["DBInstances"][0]
    assert db["Endpoint"] == {"Address": "127.0.0.3", "Port": 5432}


def test_elasticache_reports_the_binding(endpoint: str, aws: dict[str, Any]) -> None:
    elasticache = aws["elasticache"]
    call(endpoint, "/moto-api/harness/bindings", "POST", BINDINGS)
    make_group(elasticache, "default-port")
    make_group(elasticache, "chosen-port", Port=6380)
    # A group on the default port keeps it (Terraform's `port` is not Computed): host only.
    [default_group] = describe_group(elasticache, "default-port")["NodeGroups"]
    assert default_group["PrimaryEndpoint"] == {"Address": "127.0.0.1", "Port": 6379}
    assert default_group["ReaderEndpoint"] == {"Address": "127.0.0.1", "Port": 6379}
    assert default_group["NodeGroupMembers"][0]["ReadEndpoint"] == {"Address": "127.0.0.1", "Port": 6379}
    assert describe_cluster(elasticache, "default-port-001")["CacheNodes"][0]["Endpoint"] == {
        "Address": "127.0.0.1",
        "Port": 6379,
    }
    # A group created with an explicit Port reports the bound port everywhere.
    [chosen] = describe_group(elasticache, "chosen-port")["NodeGroups"]
    assert chosen["PrimaryEndpoint"] == {"Address": "127.0.0.1", "Port": 41235}
    assert chosen["ReaderEndpoint"] == {"Address": "127.0.0.1", "Port": 41235}
    assert describe_cluster(elasticache, "chosen-port-001")["CacheNodes"][0]["Endpoint"]["Port"] == 41235
    call(endpoint, "/moto-api/harness/bindings", "DELETE")
    [unbound] = describe_group(elasticache, "chosen-port")["NodeGroups"]
    assert unbound["PrimaryEndpoint"]["Address"].startswith("master.chosen-port.")
    assert unbound["PrimaryEndpoint"]["Port"] == 6380


def test_mq_reports_the_binding_for_rabbitmq_only(endpoint: str, aws: dict[str, Any]) -> None:
    mq = aws["mq"]
    rabbit, active = make_broker(mq, "RABBITMQ"), make_broker(mq, "ACTIVEMQ")
    active_endpoints = mq.describe_broker(BrokerId=active)["BrokerInstances"][0]["Endpoints"]
    call(endpoint, "/moto-api/harness/bindings", "POST", BINDINGS)
    [instance] = mq.describe_broker(BrokerId=rabbit)["BrokerInstances"]
    assert instance["Endpoints"] == ["amqps://127.0.0.1:41236"]
    assert mq.describe_broker(BrokerId=active)["BrokerInstances"][0]["Endpoints"] == active_endpoints


# -- read-backs that would make every plan dirty (harness/services/moto_fixes.py) ------------


def aws_client(service: str, endpoint: str) -> Any:
    keys = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **keys)  # type: ignore[call-overload]


def test_bucket_notification_reads_back_its_eventbridge_setting(endpoint: str) -> None:
    s3 = aws_client("s3", endpoint)
    s3.create_bucket(Bucket="readback-bucket")
    assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(
        Bucket="readback-bucket"
    )
    s3.put_bucket_notification_configuration(
        Bucket="readback-bucket", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    read = s3.get_bucket_notification_configuration(Bucket="readback-bucket")
    assert read["EventBridgeConfiguration"] == {}


def test_redrive_policy_reads_back_compact_json(endpoint: str) -> None:
    sqs = aws_client("sqs", endpoint)
    dlq = sqs.create_queue(QueueName="readback-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    written = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5}, separators=(",", ":"))
    queue = sqs.create_queue(QueueName="readback", Attributes={"RedrivePolicy": written})["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert attributes["RedrivePolicy"] == written


def test_db_instance_reads_back_performance_insights(endpoint: str) -> None:
    rds = aws_client("rds", endpoint)
    rds.create_db_instance(
        DBInstanceIdentifier="readback-db",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        MasterUsername="u",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
        EnablePerformanceInsights=True,
    )
    db = rds.describe_db_instances(DBInstanceIdentifier="readback-db")["DBInstances"][0]
    assert (db["PerformanceInsightsEnabled"], db["PerformanceInsightsRetentionPeriod"]) == (True, 7)


def test_group_rule_and_ecs_service_read_back_what_was_written(endpoint: str) -> None:
    ec2 = aws_client("ec2", endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_security_group(GroupName="ra", Description="a", VpcId=vpc)["GroupId"]
    b = ec2.create_security_group(GroupName="rb", Description="b", VpcId=vpc)["GroupId"]
    pair = {"GroupId": b, "Description": "a to b"}
    permission = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [pair]}
    ec2.authorize_security_group_egress(GroupId=a, IpPermissions=[permission])
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [a]}])[
        "SecurityGroupRules"
    ]
    assert [r.get("Description") for r in rules if r.get("ReferencedGroupInfo")] == ["a to b"]

    ecs = aws_client("ecs", endpoint)
    ecs.create_cluster(clusterName="readback")
    ecs.register_task_definition(
        family="t", containerDefinitions=[{"name": "c", "image": "i:1", "memory": 64}]
    )
    ecs.create_service(
        cluster="readback", serviceName="s", taskDefinition="t", desiredCount=0, enableECSManagedTags=True
    )
    [service] = ecs.describe_services(cluster="readback", services=["s"])["services"]
    assert (service["availabilityZoneRebalancing"], service["enableECSManagedTags"]) == ("ENABLED", True)
