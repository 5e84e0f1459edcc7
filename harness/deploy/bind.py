"""Managed data stores the emulator only records, bound to the harness's real servers.

RDS PostgreSQL, Amazon MQ for RabbitMQ and ElastiCache Redis stay in the Terraform state as
AWS resources (the apply creates them in the emulator's control plane, or in moto beside
LocalStack). Binding makes their endpoints real:

1. Before the apply, the emulator is told the session's service address (a loopback
   address of its own, 127.0.N.1): every DB instance, broker and replication group it
   creates reports that address as its endpoint, on the port AWS would use (5432, 5671,
   6379), so the compute's environment and secrets name the endpoint exactly as Terraform
   wires it, and a plan of the root stays clean.
2. The harness listens there (its TCP fault proxies, each forwarding to the TLS port of its
   own PostgreSQL, RabbitMQ or Redis).
3. After the apply, each store's credentials, as the state and its secrets hold them, are
   made valid on the server: the RDS master user (password from the RDS-managed secret) and
   database, each MQ broker user, the replication group's AUTH token.

A store whose endpoint is not the service address was not bound by the emulator: one
error naming the resource, never a silent fallback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from harness.deploy.stack import ManagedStore, Stack
from harness.errors import DeployError

#: kind -> (the AWS port clients use, the emulator binding key, the support service)
KINDS = {
    "postgres": (5432, "rds", "postgres"),
    "rabbitmq": (5671, "mq", "rabbitmq"),
    "redis": (6379, "elasticache", "redis"),
}


class PostgresServer(Protocol):
    def bind_database(self, database: str, username: str, password: str) -> None: ...


class RabbitServer(Protocol):
    def add_user(self, username: str, password: str) -> None: ...


class RedisServer(Protocol):
    def require_password(self, password: str) -> None: ...


@dataclass(frozen=True)
class Binding:
    store: ManagedStore
    listen: str  # where the compute connects (the service address and AWS port)
    server: str  # the harness server behind it

    def describe(self) -> str:
        return f"{self.store.address} ({self.store.kind} {self.store.name}): {self.listen} -> {self.server}"


def emulator_bindings(address: str, kinds: set[str]) -> dict[str, dict[str, Any]]:
    """The body of the emulator's bindings call for the support services that run."""
    return {KINDS[k][1]: {"host": address, "port": KINDS[k][0]} for k in sorted(kinds) if k in KINDS}


def _secret_json(get_secret: Callable[[str], str], arn: str, store: ManagedStore) -> dict[str, Any]:
    try:
        value = json.loads(get_secret(arn))
    except Exception as exc:  # noqa: BLE001 - any failure means the credentials are unreadable
        raise DeployError(f"{store.address}: cannot read its credentials secret {arn}: {exc}") from None
    if not isinstance(value, dict) or not value.get("username") or not value.get("password"):
        raise DeployError(f"{store.address}: the secret {arn} holds no username and password")
    return value


def _not_the_harness_user(store: ManagedStore, username: str, own: str | None) -> None:
    if own and username == own:
        raise DeployError(f"{store.address}: its user {username!r} is the name of the harness's own user")


def bind_stores(
    stack: Stack,
    servers: Mapping[str, Any],
    address: str,
    get_secret: Callable[[str], str],
    describe_server: Callable[[str], str],
) -> list[Binding]:
    """Bind every managed store of the stack; returns what was bound to what."""
    bindings: list[Binding] = []
    tokens: dict[str, str] = {}
    for store in stack.stores:
        port, _, service = KINDS[store.kind]
        server = servers.get(service)
        if server is None:
            raise DeployError(
                f"{store.address} ({store.kind}) needs the harness's {service}, which this session "
                "does not run"
            )
        if store.host != address or store.port != port:
            raise DeployError(
                f"{store.address}: its endpoint is {store.host}:{store.port}, "
                f"not the harness's {address}:{port}",
                hint="the emulator was not told the service address before the apply (deploy/bind.py)",
            )
        own_user = getattr(server, "endpoint", None) and server.endpoint.username
        if store.kind == "postgres":
            secret = _secret_json(get_secret, store.details.get("secret_arn", ""), store)
            database = store.details.get("db_name") or "postgres"
            _not_the_harness_user(store, str(secret["username"]), own_user)
            server.bind_database(database, str(secret["username"]), str(secret["password"]))
        elif store.kind == "rabbitmq":
            for username, password in store.credentials:
                _not_the_harness_user(store, username, own_user)
                server.add_user(username, password)
        elif store.kind == "redis":
            for _, token in store.credentials:
                if tokens and token not in tokens.values():
                    raise DeployError(
                        f"{store.address}: two replication groups with different AUTH tokens cannot share "
                        f"the harness's one Redis ({next(iter(tokens))} has another)"
                    )
                tokens[store.address] = token
                server.require_password(token)
        bindings.append(Binding(store, f"{address}:{port}", describe_server(service)))
    return bindings
