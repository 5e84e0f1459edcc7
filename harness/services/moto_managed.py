"""Corrections to moto's managed data services (ElastiCache, RDS, Amazon MQ), and endpoint bindings.

Applied by `moto_fixes.apply()` inside the moto server process only. Each correction, with
what AWS does and what moto 5.2.5 does instead:

ElastiCache replication groups
- Member clusters. AWS creates one CacheCluster per member of a replication group
  (`<group>-001`, ...): DescribeCacheClusters finds it, with the group's engine, engine
  version, node type, subnet group, security groups, parameter group and encryption flags.
  moto lists the ids in MemberClusters but creates no CacheCluster, so the Terraform
  provider, which reads those settings from the first member, fails with
  CacheClusterNotFound. The members are created (and deleted) with their group here.
- Engine version. AWS reports a member's EngineVersion as the full version (`7.1` is
  created as `7.1.0`); the provider derives `engine_version` ("7.1") and
  `engine_version_actual` ("7.1.0") from it and fails on a missing one.
- NumCacheClusters. AWS creates that many clusters; moto creates one unless
  ReplicasPerNodeGroup is given.
- ReaderEndpoint. AWS reports it for every cluster-mode-disabled node group; moto only
  has the address under a private key, so `reader_endpoint_address` stayed empty.
- Deletion. AWS reports a deleted group as `deleting`, then it is gone (and its member
  clusters with it). moto keeps it `deleting` for ever, so `terraform destroy` waits for
  the provider's 45-minute timeout. Here the group and its members go at once (the
  DeleteReplicationGroup answer still says `deleting`); RetainPrimaryCluster keeps the
  primary as a standalone cluster, as AWS does.
- DeleteCacheSubnetGroup. AWS deletes an unused subnet group (CacheSubnetGroupInUse if a
  cluster or group still uses it); moto does not implement the action, so `terraform
  destroy` retried the 500 answer for the provider's whole timeout.

Endpoint bindings (`/moto-api/harness/bindings`)
The harness serves the data planes itself (PostgreSQL, Redis, RabbitMQ). While a binding
is set, the AWS resources report the harness's server as their endpoint, so the address
that Terraform writes to state and into the stack's secrets and outputs is the local one:
- rds: every DB instance's Endpoint.Address/Port, every DB cluster's Endpoint,
  ReaderEndpoint and Port;
- elasticache: every replication group's primary, reader and configuration endpoint,
  its node group members' read endpoints and its member clusters' cache node endpoints.
  The bound *port* is reported only for a group created with an explicit Port: the
  provider's `port` is Optional + ForceNew, not Computed, and suppresses only 6379 when
  the configuration leaves it out, so any other reported port would plan a replacement
  on every run. A group on the default port keeps 6379 (bind the server to port 6379 on
  its own loopback address, e.g. 127.0.0.2, or set `port` in the configuration to the
  bound port);
- mq: every RabbitMQ broker's instance endpoints, as `amqps://HOST:PORT` (ActiveMQ
  brokers, with five protocol endpoints each, are left as they are).
A binding's port is optional: without one, the resource keeps its own port. Bindings
are settings of the emulator, not AWS data: `/moto-api/reset` keeps them.

The endpoint views are read-only properties named like the AWS members (`Endpoint`,
`NodeGroups`, `BrokerInstances`, ...). moto's serializer looks a member up by its AWS
name before the snake_case attribute, so the views change every response (create,
describe, modify, delete) while moto's own model state stays as it was.

RDS create time (measured, provider 5.100.0): `aws_db_instance` takes 80 s on moto
although moto reports DBInstanceStatus `available` at once. The provider's create waiter
sleeps 1 minute before its first DescribeDBInstances and then wants `available` three
times in a row, 10 s apart (60 + 10 + 10 s). It looks at nothing else (not
MasterUserSecret, not PendingModifiedValues), so no moto answer can shorten it. Likewise
the replication group's 30 s: the provider waits 30 s before its first poll.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from moto.core.responses import EmptyResult
from moto.elasticache.exceptions import CacheSubnetGroupNotFound, ElastiCacheException
from moto.elasticache.models import CacheCluster, ElastiCacheBackend, ReplicationGroup
from moto.elasticache.responses import ElastiCacheResponse

SERVICES = ("rds", "elasticache", "mq")
BINDINGS_ROUTE = "{0}/moto-api/harness/bindings"
DEFAULT_MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"
DEFAULT_AMQPS_PORT = 5671
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Binding:
    """Where the harness serves one data plane."""

    host: str
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}


class BindingError(ValueError):
    """A bindings document that cannot be applied."""


_bindings: dict[str, Binding] = {}
_bindings_lock = threading.Lock()


def parse_bindings(document: Any) -> dict[str, Binding]:
    """Validate a bindings document: {service: {"host": str, "port": int?} | null}."""
    if not isinstance(document, dict):
        raise BindingError("the body must be a JSON object")
    unknown = sorted(set(document) - set(SERVICES))
    if unknown:
        raise BindingError(f"unknown services {unknown}; known: {list(SERVICES)}")
    parsed: dict[str, Binding] = {}
    for service, spec in document.items():
        if spec is None:
            continue  # an explicit null unbinds
        if not isinstance(spec, dict):
            raise BindingError(f"{service}: expected an object with host and port")
        host, port = spec.get("host"), spec.get("port")
        if not isinstance(host, str) or not host:
            raise BindingError(f"{service}: host must be a non-empty string")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise BindingError(f"{service}: port must be an integer between 1 and 65535")
        parsed[service] = Binding(host=host, port=port)
    return parsed


def set_bindings(bindings: dict[str, Binding]) -> None:
    """Replace all bindings (a service left out is unbound)."""
    global _bindings
    with _bindings_lock:
        _bindings = dict(bindings)


def binding(service: str) -> Binding | None:
    return _bindings.get(service)


def bindings_json() -> dict[str, dict[str, Any]]:
    return {service: b.to_json() for service, b in sorted(_bindings.items())}


def _request_body(request: Any) -> str:
    if hasattr(request, "get_data"):  # the werkzeug request of moto's server
        return str(request.get_data(as_text=True))
    body = getattr(request, "body", None) or b""  # botocore's AWSPreparedRequest (in-process mock)
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)


def bindings_route(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """GET: the current bindings. POST: replace them. DELETE: remove them all."""
    method = str(getattr(request, "method", "GET")).upper()
    if method == "POST":
        try:
            set_bindings(parse_bindings(json.loads(_request_body(request) or "{}")))
        except (BindingError, json.JSONDecodeError) as error:
            return 400, dict(_JSON), json.dumps({"error": str(error)})
    elif method == "DELETE":
        set_bindings({})
    elif method != "GET":
        return 405, dict(_JSON), json.dumps({"error": f"{method} is not supported; use GET, POST or DELETE"})
    return 200, dict(_JSON), json.dumps(bindings_json())


# --- ElastiCache --------------------------------------------------------------------------


def full_engine_version(engine: str, version: str | None) -> str:
    """The version AWS reports for a cluster created with `version` ("7.1" -> "7.1.0")."""
    if not version:
        return "7.1.0" if engine == "redis" else "7.2.4"
    if version.endswith(".x"):  # "6.x": the provider accepts it; AWS runs the newest 6.2
        return {"6": "6.2.6"}.get(version.split(".")[0], version[:-1] + "0.0")
    if re.fullmatch(r"\d+\.\d+", version):
        return f"{version}.0"
    return version


def default_parameter_group(engine: str, full_version: str) -> str:
    major = full_version.split(".")[0]
    if engine == "redis" and major == "6":
        return "default.redis6.x"
    return f"default.{engine}{major}"


def _as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _group_port(group: ReplicationGroup, bound: Binding | None) -> int:
    """The port a group's endpoints report: the bound one only for an explicit Port (see docstring)."""
    if bound is not None and bound.port is not None and getattr(group, "_harness_explicit_port", False):
        return bound.port
    return int(group.port)


class MemberCacheCluster(CacheCluster):
    """A replication group's member cluster, as AWS creates it with the group."""

    def __init__(self, backend: ElastiCacheBackend, group: ReplicationGroup, member: dict[str, Any]) -> None:
        engine = str(group.engine or "redis")
        version = full_engine_version(engine, group.engine_version)
        super().__init__(
            account_id=backend.account_id,
            region_name=backend.region_name,
            cache_cluster_id=member["cache_cluster_id"],
            cache_node_type=group.cache_node_type,
            replication_group_id=group.replication_group_id,
            az_mode="single-az",
            preferred_availability_zone=member.get("preferred_availability_zone"),
            num_cache_nodes=1,
            engine=engine,
            engine_version=version,
            cache_parameter_group_name=group.cache_parameter_group_name,
            cache_subnet_group_name=group.cache_subnet_group_name,
            transit_encryption_enabled=group.transit_encryption_enabled,
            network_type=group.network_type,
            ip_discovery=group.ip_discovery,
            snapshot_name=None,
            preferred_maintenance_window=group.preferred_maintenance_window or DEFAULT_MAINTENANCE_WINDOW,
            port=group.port,
            notification_topic_arn=group.notification_topic_arn,
            auto_minor_version_upgrade=_as_bool(group.auto_minor_version_upgrade, default=True),
            snapshot_retention_limit=group.snapshot_retention_limit,
            snapshot_window=group.snapshot_window,
            auth_token=None,
            outpost_mode=None,
            preferred_outpost_arn=None,
            preferred_availability_zones=None,
            cache_security_group_names=None,
            security_group_ids=list(group.security_group_ids or []),
            tags=None,
            snapshot_arns=None,
            preferred_outpost_arns=None,
            log_delivery_configurations=[],
            cache_node_ids_to_remove=None,
            cache_node_ids_to_reboot=None,
        )
        self.group = group
        self.node_id = str(member.get("cache_node_id") or "0001")
        self.own_address = str(
            (member.get("read_endpoint") or {}).get("address")
            or f"{self.cache_cluster_id}.{group.replication_group_id}.cache.amazonaws.com"
        )
        # moto's CacheCluster sets these only for engine "redis" (not for "valkey").
        self.num_cache_nodes = 1
        self.replication_group_id = group.replication_group_id
        self.snapshot_window = group.snapshot_window
        self.auth_token_enabled = bool(group.auth_token_enabled)  # the token itself stays with the group
        self.at_rest_encryption_enabled = bool(group.at_rest_encryption_enabled)
        self.transit_encryption_mode = group.transit_encryption_mode or (
            "required" if group.transit_encryption_enabled else None
        )
        self.security_groups = [{"SecurityGroupId": sg, "Status": "active"} for sg in self.security_group_ids]
        parameter_group = group.cache_parameter_group_name or default_parameter_group(engine, version)
        self.cache_parameter_group = {
            "CacheParameterGroupName": parameter_group,
            "ParameterApplyStatus": "in-sync",
            "CacheNodeIdsToReboot": [],
        }
        self.replication_group_log_delivery_enabled = bool(group.log_delivery_configurations)

    @property
    def CacheNodes(self) -> list[dict[str, Any]]:  # the AWS member name: the serializer reads it first
        bound = binding("elasticache")
        return [
            {
                "CacheNodeId": self.node_id,
                "CacheNodeStatus": "available",
                "CacheNodeCreateTime": self.cache_cluster_create_time,
                "Endpoint": {
                    "Address": bound.host if bound else self.own_address,
                    "Port": _group_port(self.group, bound),
                },
                "ParameterGroupStatus": "in-sync",
                "CustomerAvailabilityZone": self.preferred_availability_zone,
            }
        ]


def _bound_endpoint(endpoint: Any, host: str | None, port: int) -> Any:
    if not isinstance(endpoint, dict):
        return endpoint
    return {**endpoint, "address": host or endpoint.get("address"), "port": port}


def node_groups_view(group: ReplicationGroup) -> list[dict[str, Any]]:
    """The group's NodeGroups as AWS reports them, with the elasticache binding applied."""
    bound = binding("elasticache")
    host = bound.host if bound else None
    port = _group_port(group, bound)
    view: list[dict[str, Any]] = copy.deepcopy(group.node_groups)
    for node_group in view:
        if "reader_endpoint_address" in node_group and "reader_endpoint" not in node_group:
            node_group["reader_endpoint"] = {"address": node_group["reader_endpoint_address"], "port": port}
        for key in ("primary_endpoint", "reader_endpoint"):
            if key in node_group:
                node_group[key] = _bound_endpoint(node_group[key], host, port)
        if "port" in node_group:
            node_group["port"] = port
        for member in node_group.get("node_group_members", []):
            if "read_endpoint" in member:
                member["read_endpoint"] = _bound_endpoint(member["read_endpoint"], host, port)
    return view


def _node_groups_property(self: ReplicationGroup) -> list[dict[str, Any]]:
    return node_groups_view(self)


def _configuration_endpoint_property(self: ReplicationGroup) -> dict[str, Any] | None:
    endpoint = getattr(self, "configuration_endpoint", None)
    if endpoint is None:
        return None
    bound = binding("elasticache")
    host = bound.host if bound else None
    result: dict[str, Any] = _bound_endpoint(endpoint, host, _group_port(self, bound))
    return result


def _members(group: ReplicationGroup) -> list[dict[str, Any]]:
    return [member for node_group in group.node_groups for member in node_group.get("node_group_members", [])]


def _primary_member_id(group: ReplicationGroup) -> str | None:
    for member in _members(group):
        if member.get("current_role") == "primary":
            return str(member["cache_cluster_id"])
    members = _members(group)
    return str(members[0]["cache_cluster_id"]) if members else None


_original_create_replication_group = ElastiCacheBackend.create_replication_group
_original_modify_replication_group = ElastiCacheBackend.modify_replication_group
_original_delete_replication_group = ElastiCacheBackend.delete_replication_group
_original_set_members_disabled = ReplicationGroup._set_node_members_clusters_disabled


def _create_replication_group(self: ElastiCacheBackend, **kwargs: Any) -> ReplicationGroup:
    group = _original_create_replication_group(self, **kwargs)
    # Whether the caller chose the port: only then may a bound port replace it (see docstring).
    group._harness_explicit_port = kwargs.get("port") is not None  # type: ignore[attr-defined]
    for member in _members(group):
        cluster_id = member["cache_cluster_id"]
        if cluster_id not in self.cache_clusters:
            self.cache_clusters[cluster_id] = MemberCacheCluster(self, group, member)
    return group


def _modify_replication_group(self: ElastiCacheBackend, **kwargs: Any) -> ReplicationGroup:
    group = _original_modify_replication_group(self, **kwargs)
    for cluster_id in group.member_clusters:  # members follow their group, as on AWS
        cluster = self.cache_clusters.get(cluster_id)
        if isinstance(cluster, MemberCacheCluster):
            cluster.cache_node_type = group.cache_node_type
            cluster.snapshot_retention_limit = group.snapshot_retention_limit
    return group


def _delete_replication_group(
    self: ElastiCacheBackend, replication_group_id: str, retain_primary_cluster: bool | None
) -> ReplicationGroup:
    group = self.replication_groups.get(replication_group_id)
    member_ids = [m["cache_cluster_id"] for m in _members(group)] if group is not None else []
    primary_id = _primary_member_id(group) if group is not None else None
    deleted = _original_delete_replication_group(self, replication_group_id, retain_primary_cluster)
    self.replication_groups.pop(replication_group_id, None)
    self.tagging_service.delete_all_tags_for_resource(deleted.arn)
    for cluster_id in member_ids:
        cluster = self.cache_clusters.get(cluster_id)
        if retain_primary_cluster and cluster_id == primary_id and cluster is not None:
            cluster.replication_group_id = None  # the primary lives on as a standalone cluster
        else:
            self.cache_clusters.pop(cluster_id, None)
    return deleted


def _set_members_disabled(self: ReplicationGroup, **kwargs: Any) -> None:
    # moto derives the member count from ReplicasPerNodeGroup only; AWS honours NumCacheClusters.
    if not kwargs.get("replicas_per_node_group") and (kwargs.get("num_cache_clusters") or 1) > 1:
        kwargs["replicas_per_node_group"] = kwargs["num_cache_clusters"] - 1
    _original_set_members_disabled(self, **kwargs)


class CacheSubnetGroupInUse(ElastiCacheException):
    code = "CacheSubnetGroupInUse"

    def __init__(self, name: str) -> None:
        super().__init__(f"Cache subnet group {name} is currently in use by a cache cluster.")


def delete_cache_subnet_group(backend: ElastiCacheBackend, name: str) -> None:
    if name not in backend.cache_subnet_groups:
        raise CacheSubnetGroupNotFound(name)
    users = [*backend.cache_clusters.values(), *backend.replication_groups.values()]
    if any(getattr(user, "cache_subnet_group_name", None) == name for user in users):
        raise CacheSubnetGroupInUse(name)
    group = backend.cache_subnet_groups.pop(name)
    backend.tagging_service.delete_all_tags_for_resource(group.arn)


def _delete_cache_subnet_group_action(self: ElastiCacheResponse) -> EmptyResult:
    delete_cache_subnet_group(self.elasticache_backend, self._get_param("CacheSubnetGroupName"))
    return EmptyResult()


# --- RDS ----------------------------------------------------------------------------------


def _db_instance_endpoint(self: Any) -> dict[str, Any]:
    bound = binding("rds")
    if bound is None:
        return {"Address": self.address, "Port": self.port}
    return {"Address": bound.host, "Port": bound.port if bound.port is not None else self.port}


def _db_cluster_endpoint(self: Any) -> str:
    bound = binding("rds")
    return bound.host if bound else str(self.endpoint)


def _db_cluster_reader_endpoint(self: Any) -> str:
    bound = binding("rds")
    return bound.host if bound else str(self.reader_endpoint)


def _db_cluster_port(self: Any) -> int:
    bound = binding("rds")
    return bound.port if bound is not None and bound.port is not None else int(self.port)


# --- Amazon MQ ----------------------------------------------------------------------------


def _broker_instances(self: Any) -> list[dict[str, Any]]:
    bound = binding("mq")
    instances: list[dict[str, Any]] = self.instances
    if bound is None or str(self.engine_type).upper() != "RABBITMQ":
        return instances
    endpoint = f"amqps://{bound.host}:{bound.port or DEFAULT_AMQPS_PORT}"
    return [{**instance, "endpoints": [endpoint]} for instance in instances]


def apply() -> None:
    """Install the corrections and the bindings route into this process's moto."""
    from moto.moto_api._internal import urls
    from moto.mq.models import Broker
    from moto.rds.models import DBCluster, DBInstance

    ElastiCacheBackend.create_replication_group = _create_replication_group  # type: ignore[method-assign,assignment]
    ElastiCacheBackend.modify_replication_group = _modify_replication_group  # type: ignore[method-assign,assignment]
    ElastiCacheBackend.delete_replication_group = _delete_replication_group  # type: ignore[method-assign]
    ElastiCacheResponse.delete_cache_subnet_group = _delete_cache_subnet_group_action  # type: ignore[attr-defined]
    ReplicationGroup._set_node_members_clusters_disabled = _set_members_disabled  # type: ignore[method-assign,assignment]
    # Views named as the AWS members: the serializer prefers them to moto's snake_case state.
    ReplicationGroup.NodeGroups = property(_node_groups_property)  # type: ignore[attr-defined]
    ReplicationGroup.ConfigurationEndpoint = property(_configuration_endpoint_property)  # type: ignore[attr-defined]
    DBInstance.Endpoint = property(_db_instance_endpoint)  # type: ignore[attr-defined]
    DBCluster.Endpoint = property(_db_cluster_endpoint)  # type: ignore[attr-defined]
    DBCluster.ReaderEndpoint = property(_db_cluster_reader_endpoint)  # type: ignore[attr-defined]
    DBCluster.Port = property(_db_cluster_port)  # type: ignore[attr-defined]
    Broker.BrokerInstances = property(_broker_instances)  # type: ignore[attr-defined]
    urls.url_paths[BINDINGS_ROUTE] = bindings_route
