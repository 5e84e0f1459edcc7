"""The `sql` expectation: rows a SELECT returns from the run's PostgreSQL, in a read-only transaction."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from harness.scenario.context import ScenarioContext
from harness.scenario.expectations._common import (
    CountMatcher,
    Matcher,
    expect_match,
    fail,
    plain,
    valid_count,
    valid_matcher,
)
from harness.scenario.vocabulary import Expectation, expectation

_LEXEMES = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>[EeBbXxNn]?'(?:[^'\\]|''|\\.)*')
    | (?P<ident>"(?:[^"]|"")*")
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)?\$)
    """,
    re.S | re.X,
)
#: Words that change data or schema: rejected anywhere outside strings, comments and quoted names.
WRITE_WORDS = (
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "TRUNCATE",
    "DROP",
    "ALTER",
    "CREATE",
    "INTO",
    "COPY",
    "GRANT",
    "REVOKE",
    "CALL",
)


def _neutralise(query: str) -> str:
    """The query with comments removed and strings and quoted names blanked out."""

    def replace(match: re.Match[str]) -> str:
        if match.group("comment"):
            return " "
        if match.group("ident"):
            return '"x"'
        return "''"

    return _LEXEMES.sub(replace, query)


def select_only(query: str) -> str:
    """The query, if it is one SELECT (or WITH ... SELECT) statement; ValueError otherwise."""
    bare = _neutralise(query)
    statements = [s for s in bare.split(";") if s.strip()]
    if not statements:
        raise ValueError("the query is empty")
    if len(statements) > 1:
        raise ValueError("give one SELECT statement, not several separated by `;`")
    words = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", statements[0])
    first = words[0].upper() if words else ""
    if first not in ("SELECT", "WITH"):
        raise ValueError(f"only SELECT queries are allowed, not {first or statements[0].strip()[:20]!r}")
    written = sorted({w.upper() for w in words} & set(WRITE_WORDS))
    if written:
        raise ValueError(f"only read-only SELECT queries are allowed; found {', '.join(written)}")
    return query


@expectation
class SqlRows(Expectation):
    """Rows a SELECT returns from the run's PostgreSQL (read-only transaction): count and content.

    Parameters are positional (`%s` placeholders, values in `params`); each row is a mapping of
    column name to value (numerics as numbers, times as ISO strings).
    """

    keyword = "sql"
    query: str
    params: list[Any] = []
    rows: Matcher = None
    count: CountMatcher = None

    _valid_count = field_validator("count")(valid_count)
    _valid_rows = field_validator("rows")(valid_matcher)

    @field_validator("query")
    @classmethod
    def _select_only(cls, value: str) -> str:
        return select_only(value)

    def check(self, ctx: ScenarioContext) -> None:
        import psycopg
        from psycopg.rows import dict_row

        service = ctx.session.support.get("postgres")
        if service is None:
            raise fail("sql: PostgreSQL is running", "a postgres service", "no postgres in this session")
        what = f"rows of `{' '.join(self.query.split())}`" + (f" with {self.params}" if self.params else "")
        try:
            with psycopg.connect(ctx.session.database_url(), row_factory=dict_row, connect_timeout=5) as conn:
                conn.read_only = True
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(self.query, self.params or None)
                        rows = [plain(dict(row)) for row in cursor.fetchall()]
                finally:
                    conn.rollback()
        except psycopg.Error as exc:
            raise fail(
                what, self.rows if self.rows is not None else self.count, f"query failed: {exc}"
            ) from None
        if self.count is not None:
            expect_match(f"number of {what}", self.count, len(rows), {"count": len(rows), "rows": rows[:50]})
        if self.rows is not None:
            expect_match(what, self.rows, rows)
