"""Emptying the stateful stores between scenarios, keeping their structure.

DynamoDB tables lose their items, PostgreSQL tables their rows (the pipeline's own
migrations table is kept, so its schema stays applied), Redis its keys and RabbitMQ queues
their messages. Infrastructure, schema and queue declarations stay as they are.
"""

from __future__ import annotations

from typing import Any

from harness.deploy.stack import Table

#: Tables the pipeline's migrations own: their rows record applied schema, not data.
KEEP_TABLES = frozenset({"schema_migrations"})


def empty_table(dynamodb: Any, table: Table) -> int:
    keys = [table.hash_key] + ([table.range_key] if table.range_key else [])
    names = {f"#k{i}": key for i, key in enumerate(keys)}
    deleted = 0
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table.name, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
    ):
        items = page.get("Items", [])
        for start in range(0, len(items), 25):
            chunk = items[start : start + 25]
            request = {table.name: [{"DeleteRequest": {"Key": item}} for item in chunk]}
            while request:
                request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            deleted += len(chunk)
    return deleted


def truncate_postgres(url: str) -> list[str]:
    """TRUNCATE every table of the public schema but the migrations table; returns their names."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("select tablename from pg_tables where schemaname = 'public'").fetchall()
        tables = sorted(str(r[0]) for r in rows if str(r[0]) not in KEEP_TABLES)
        if tables:
            conn.execute(
                sql.SQL("truncate {} restart identity cascade").format(
                    sql.SQL(", ").join(sql.Identifier("public", t) for t in tables)
                )
            )
    return tables


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.flushall()
    finally:
        client.close()
