"""The files of `sql/`: each makes the table it is named after; what it reads is what its SQL reads.

Contract:
- Every `sql/<name>.sql` opens with a header of `-- key: value` lines: `grain:` and `key:`, and
  optionally `params:` and `materialized: view`. What a file reads is what DuckDB's parser finds in its
  text (`reads`): another model of `sql/` or a source, a table registered from Python (`SOURCES`, the
  only ones). The run's graph (`cro_awards.engine.graph`) orders the models by it.
- `run(connection, name, params)` executes one file as `create or replace table <name> as ...` (or
  `view`), binding only the `$parameters` the file uses (values are never formatted into SQL text).
- The output checks of `sql/tests/` (each a query returning the rows that break a rule) and the audit's
  of `sql/audit/` are files here too; `cro_awards.engine.graph.Workspace` runs them.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cro_awards.engine import identity
from cro_awards.engine.settings import SQL_DIR

SOURCES = {
    "ballot": "the survey year's CRO spellings (spelling, cro): each name and alias with its CRO's id, from the "
    "YAML's cros",
    "category_attributes": "(category, attribute) pairs, from the YAML's categories",
    "cro_labels": "(cro, cro_name): each CRO's id and the year's display name, from the YAML's cros",
    "attribute_labels": "(attribute, attribute_label): each attribute's id and its label, from the YAML's attributes",
    "category_labels": "(category, category_label): each category's id and its label (config.category_label)",
    "raw_export": "the export as read: source_row and every field as text, by position (field_1 ... field_n)",
    "export_columns": "(field, position, column_name): each export column's name as written (after `columns`)",
    "raw_evaluations": "the export's contract columns, as text, picked by position and named by the contract",
    "raw_ratings": "the export's attribute columns, as text, picked by position and named by attribute id",
    "raw_qualifications": "(source_row, qualification): the qualification screen's column, as text, picked by "
    "position (registered only when the YAML configures screens.qualification)",
    "raw_durations": "(source_row, duration): the speeding screen's column, as text, picked by position "
    "(registered only when the YAML configures screens.speeding)",
    "malformed_rows": "the CSV records the reader could not split into the header's fields: source_row, "
    "field_1 ... field_n (placed by position), raw_text",
    "rejection_reasons": "(source_row, reason, reason_order, attributes: the invalid ratings' attribute ids for "
    "invalid_rating) from validation and the reader",
    "composite_uncertainty": "each eligible composite's interval, rank interval, award probabilities, "
    "shrunk and leniency-adjusted composites, from cro_awards/method/uncertainty.py",
}
"""The relations registered from Python (by `Workspace.register`), which the SQL files read."""

PUBLISHED = ("attribute_scores", "composite_scores", "awards")
"""The tables published for each survey year (data contract section 4), in manifest order."""

QUARANTINE = "rejected_evaluations"
"""The table of quarantined rows."""

TOLERANCE = 1e-9
"""Absolute tolerance of every comparison between scores (awards method: ranks, leaders, champions)."""

TESTS_DIR = SQL_DIR / "tests"
AUDIT_DIR = SQL_DIR / "audit"
"""The disclosure audit's checks (`cro_awards.disclosure.audit`): they read only the published tables."""

_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")
_HEADER_LINE = re.compile(r"--\s*([a-z_]+):\s*(.*)")
_CONTINUATION = re.compile(r"--\s{2,}(\S.*)")


class SqlGraphError(ValueError):
    """A file of sql/ breaks the header contract (a bug in the project, never bad input)."""


@functools.cache
def sql_text(name: str, folder: Path = SQL_DIR) -> str:
    """The text of `<folder>/<name>.sql`."""
    return (folder / f"{name}.sql").read_text(encoding="utf-8")


@functools.cache
def header(name: str, folder: Path = SQL_DIR) -> dict[str, str]:
    """The file's header: `-- key: value` lines (continued on indented `--` lines) before the SQL."""
    found: dict[str, str] = {}
    last = None
    for line in sql_text(name, folder).splitlines():
        if not line.startswith("--"):
            break
        match = _HEADER_LINE.fullmatch(line)
        continued = _CONTINUATION.fullmatch(line)
        if match and match.group(1) in ("grain", "key", "params", "materialized"):
            last = match.group(1)
            found[last] = match.group(2).strip()
        elif continued and last:
            found[last] += " " + continued.group(1).strip()
        else:
            last = None
    return found


def _names(text: str) -> tuple[str, ...]:
    """`a (note, more), b` -> (a, b): the relation names of a `reads:` or `key:` header."""
    without_notes = re.sub(r"\([^)]*\)", "", text)
    return tuple(part.split()[0] for part in without_notes.split(",") if part.strip())


@functools.cache
def reads(name: str, folder: Path = SQL_DIR) -> tuple[str, ...]:
    """The relations a file reads, sorted, as DuckDB's own parser finds them in its text (CTEs left out;
    each `$parameter` parsed as NULL, since the parser refuses prepared parameters)."""
    text = _PARAMETER.sub("NULL", sql_text(name, folder))
    with duckdb.connect() as connection:
        identity.register(connection)  # the parser resolves the project's functions
        return tuple(sorted(connection.get_table_names(text)))


def key(name: str) -> tuple[str, ...]:
    """The key columns a model's header states."""
    return _names(header(name).get("key", ""))


def models() -> tuple[str, ...]:
    """Every model of sql/ (file stem), sorted."""
    return tuple(sorted(path.stem for path in SQL_DIR.glob("*.sql")))


def checks(folder: Path = TESTS_DIR) -> tuple[str, ...]:
    """Every check of `folder` (sql/tests/, or sql/audit/) by file stem, sorted."""
    return tuple(sorted(path.stem for path in folder.glob("*.sql")))


def checks_read() -> tuple[str, ...]:
    """What the output checks read, sorted: the published tables (their keys are checked) and every relation
    a check of sql/tests/ reads."""
    return tuple(sorted({*PUBLISHED, *(relation for name in checks() for relation in reads(name, TESTS_DIR))}))


def audit_rows(connection: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> dict[str, list[tuple]]:
    """Each check of sql/audit/ -> the rows (segment, cro, item) that break it, on the tables of
    `connection`; only the checks that found some."""
    found = {}
    for name in checks(AUDIT_DIR):
        broken = rows(connection, sql_text(name, AUDIT_DIR), _bound(name, params, AUDIT_DIR))
        if broken:
            found[name] = broken
    return found


@functools.cache
def parameters_of(name: str, folder: Path = SQL_DIR) -> frozenset[str]:
    """The `$parameters` a file's SQL uses (its `--` comment lines excluded)."""
    code = "\n".join(line for line in sql_text(name, folder).splitlines() if not line.lstrip().startswith("--"))
    return frozenset(_PARAMETER.findall(code))


def materialization(name: str) -> str:
    """`table` unless the file's header says `-- materialized: view`."""
    return "view" if header(name).get("materialized", "").startswith("view") else "table"


def _bound(name: str, params: dict[str, Any], folder: Path = SQL_DIR) -> dict[str, Any]:
    wanted = parameters_of(name, folder)
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"{folder.name}/{name}.sql needs parameter(s) {sorted(missing)}")
    return {key: params[key] for key in wanted}


def run(connection: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> None:
    """Create table (or view) `name` from `sql/<name>.sql`, binding the parameters it uses from `params`."""
    bound = _bound(name, params)
    kind = materialization(name)
    if kind == "view" and bound:
        raise SqlGraphError(f"sql/{name}.sql is a view and cannot take parameters {sorted(bound)}")
    connection.execute(f"create or replace {kind} {name} as\n{sql_text(name)}", bound).fetchall()


def rows(connection: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Every row of a small query, fetched to the end (DuckDB 2 refuses new work on an unfinished result)."""
    return connection.execute(query, params or {}).fetchall()


def arrow(connection: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None) -> pa.Table:
    """A query's result as an Arrow table, without the extra copy a DB-API result makes."""
    return connection.sql(query, params=params or None).to_arrow_table()


def sorted_query(name: str) -> str:
    """`select *` from model `name` in the order of its key (names from the header, never from input)."""
    return f"select * from {name} order by {', '.join(key(name))}"
