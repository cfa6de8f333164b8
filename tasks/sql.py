"""Run the files of `sql/`: each makes the table it is named after, in the order stated here.

Contract: `run(connection, name, params)` executes `sql/<name>.sql` as
`create or replace table <name> as ...` (or `view`, where the file's header says
`-- materialized: view`; a view takes no parameters), binding only the `$parameters` the file uses
(values are never formatted into SQL text). Input tables are registered on the connection beforehand.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import duckdb
import pyarrow as pa

from cro_awards.settings import SQL_DIR

STAGING = ("cro_aliases", "stg_rating_texts", "stg_ratings", "stg_evaluations")
"""Run before validation. Inputs: ballot, raw_ratings, raw_evaluations."""

SCORING = (
    "int_rejected_evaluations",
    "int_accepted_evaluations",
    "int_accepted_ratings",
    "int_attribute_scores",
    "int_composite_scores",
)
"""Run after validation, in this order. Inputs: the staging tables, rejection_reasons."""

PUBLISHING = (
    "attribute_scores",
    "composite_scores",
    "awards",
    "rejected_evaluations",
)
"""Run after `tasks.bootstrap` has registered composite_intervals. Inputs also: raw_export, malformed_rows."""

PUBLISHED = ("attribute_scores", "composite_scores", "awards")
"""The tables published for each survey year (data contract section 4), in manifest order."""

KEYS = {
    "attribute_scores": ("segment", "cro", "attribute"),
    "composite_scores": ("segment", "cro", "category"),
    "awards": ("segment", "category", "cro", "award"),
    "rejected_evaluations": ("source_row",),
}
"""The key of each table read back by Python (its grain, as stated in its SQL file); rows are read in key order."""

TOLERANCE = 1e-9
"""Absolute tolerance of every comparison between scores (awards method: ranks, leaders, champions)."""


_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


@functools.cache
def sql_text(name: str) -> str:
    """The body of `sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


@functools.cache
def parameters_of(name: str) -> frozenset[str]:
    """The `$parameters` a file's SQL uses (its `--` comment lines excluded)."""
    code = "\n".join(line for line in sql_text(name).splitlines() if not line.lstrip().startswith("--"))
    return frozenset(_PARAMETER.findall(code))


@functools.cache
def materialization(name: str) -> str:
    """`table` unless the file's header says `-- materialized: view`."""
    return "view" if "-- materialized: view" in sql_text(name) else "table"


def run(connection: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> None:
    """Create table (or view) `name` from `sql/<name>.sql`, binding the parameters it uses from `params`."""
    wanted = parameters_of(name)
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"sql/{name}.sql needs parameter(s) {sorted(missing)}")
    kind = materialization(name)
    if kind == "view" and wanted:
        raise ValueError(f"sql/{name}.sql is a view and cannot take parameters {sorted(wanted)}")
    connection.execute(
        f"create or replace {kind} {name} as\n{sql_text(name)}",
        {key: params[key] for key in wanted},
    ).fetchall()


def rows(connection: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Every row of a small query, fetched to the end (DuckDB 2 refuses new work on an unfinished result)."""
    return connection.execute(query, params or {}).fetchall()


def arrow(connection: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None) -> pa.Table:
    """A query's result as an Arrow table, without the extra copy a DB-API result makes."""
    return connection.sql(query, params=params or None).to_arrow_table()


def sorted_query(name: str) -> str:
    """`select *` from table `name` in the order of its key (names from KEYS, never from input)."""
    return f"select * from {name} order by {', '.join(KEYS[name])}"


def run_all(connection: duckdb.DuckDBPyConnection, names: tuple[str, ...], params: dict[str, Any]) -> None:
    for name in names:
        run(connection, name, params)
