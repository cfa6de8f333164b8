"""The SQL graph of `sql/`: each file makes the table it is named after; the headers order the run.

Contract:
- Every `sql/<name>.sql` opens with a header of `-- key: value` lines: `grain:`, `key:` and `reads:`
  (the relations it reads, comma-separated, each optionally followed by a parenthesised note), and
  optionally `params:` and `materialized: view`. A relation read is either another model of `sql/` or a
  source: a table registered from Python (`SOURCES`, the only ones). The run order is a topological
  sort of the `reads:` headers (`graphlib`); `tests/test_sql_graph.py` checks that every header names
  exactly the relations DuckDB's parser finds in its file.
- `run(connection, name, params)` executes one file as `create or replace table <name> as ...` (or
  `view`), binding only the `$parameters` the file uses (values are never formatted into SQL text).
- `Workspace` is one run's in-memory DuckDB database: `register(source, table)` for the sources,
  `build(*targets, params=...)` for every model the targets need that is not built yet, in graph order,
  `release(table)` to drop a built table nothing will read again (its memory freed; what was built from
  it kept), and `failed_checks(params)` for the output checks of `sql/tests/` (each a query returning the
  rows that break a rule; a published table's key is checked from its header). A workspace owns a spill
  folder of its own, removed when it is closed.
"""

from __future__ import annotations

import functools
import graphlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cro_awards import identity
from cro_awards.settings import SQL_DIR

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
    "shrunk and leniency-adjusted composites, from cro_awards/uncertainty.py",
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
"""The disclosure audit's checks (`cro_awards.disclosure`): they read only the published tables."""

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
        if match and match.group(1) in ("grain", "key", "reads", "params", "materialized"):
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


def reads(name: str, folder: Path = SQL_DIR) -> tuple[str, ...]:
    """The relations a file's header says it reads."""
    if "reads" not in header(name, folder):
        raise SqlGraphError(f"{folder.name}/{name}.sql: its header has no `-- reads:` line")
    return _names(header(name, folder)["reads"])


def key(name: str) -> tuple[str, ...]:
    """The key columns a model's header states."""
    return _names(header(name).get("key", ""))


def models() -> tuple[str, ...]:
    """Every model of sql/ (file stem), sorted."""
    return tuple(sorted(path.stem for path in SQL_DIR.glob("*.sql")))


def checks(folder: Path = TESTS_DIR) -> tuple[str, ...]:
    """Every check of `folder` (sql/tests/, or sql/audit/) by file stem, sorted."""
    return tuple(sorted(path.stem for path in folder.glob("*.sql")))


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
def graph() -> dict[str, tuple[str, ...]]:
    """model -> the models it reads (sources left out); raises `SqlGraphError` on an unknown relation."""
    known = set(models())
    edges: dict[str, tuple[str, ...]] = {}
    for name in models():
        unknown = [r for r in reads(name) if r not in known and r not in SOURCES]
        if unknown:
            raise SqlGraphError(f"sql/{name}.sql reads {', '.join(unknown)}: neither a model of sql/ nor a source")
        edges[name] = tuple(r for r in reads(name) if r in known)
    return edges


def run_order(targets: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The models needed for `targets` (default: all), each after the models it reads; ties by name."""
    edges = graph()
    wanted: set[str] = set()
    pending = list(targets if targets is not None else edges)
    while pending:
        name = pending.pop()
        if name not in edges:
            raise SqlGraphError(f"{name!r} is not a model of sql/")
        if name not in wanted:
            wanted.add(name)
            pending.extend(edges[name])
    sorter = graphlib.TopologicalSorter({name: edges[name] for name in sorted(wanted)})
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return tuple(order)


def sources_of(targets: tuple[str, ...]) -> frozenset[str]:
    """The sources that building `targets` reads."""
    return frozenset(r for name in run_order(targets) for r in reads(name) if r in SOURCES)


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


MEMORY_LIMIT = "2GB"
"""DuckDB's working memory for one run: beyond it, sorts, joins and aggregates spill to disk."""

DISABLED_OPTIMIZERS = "partial_aggregate_pushdown"
"""DuckDB 2.0 pushes a partial aggregate below a join on the join's key: summing the ratings per
(segment, CRO, attribute) over ratings joined to their evaluations then first groups the ratings by
(source_row, attribute), which is their key: nothing is reduced, the hash table holds every rating and
spills (9 s instead of 1 s at 30 million ratings; bench/README.md)."""


@dataclass
class Workspace:
    """One run's in-memory DuckDB database (module contract). Use as a context manager, or `close()`."""

    connection: duckdb.DuckDBPyConnection
    spill: Path
    built: set[str] = field(default_factory=set)
    registered: set[str] = field(default_factory=set)

    @classmethod
    def open(cls) -> Workspace:
        """Memory bounded (spilling to the workspace's own folder beyond MEMORY_LIMIT); insertion order
        is not kept: every table is read back sorted by its key."""
        spill = Path(tempfile.mkdtemp(prefix="cro-awards-duckdb-"))
        connection = duckdb.connect(
            ":memory:",
            config={
                "memory_limit": MEMORY_LIMIT,
                "temp_directory": str(spill),
                "preserve_insertion_order": False,
                "disabled_optimizers": DISABLED_OPTIMIZERS,
                # Memory DuckDB frees goes back to the system within a second, not at some later
                # allocation: what `release` frees is free for the resampling that follows it.
                "allocator_background_threads": True,
            },
        )
        identity.register(connection)
        return cls(connection, spill)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()
        shutil.rmtree(self.spill, ignore_errors=True)

    def register(self, source: str, table: pa.Table) -> None:
        """Register one of `SOURCES` (Arrow, not copied)."""
        if source not in SOURCES:
            raise SqlGraphError(f"{source!r} is not a source of the SQL graph (cro_awards.sql.SOURCES)")
        self.connection.register(source, table)
        self.registered.add(source)

    def build(self, *targets: str, params: dict[str, Any]) -> None:
        """Build every model `targets` need that is not built yet, each after what it reads. A model built
        needs nothing more: what it read may have been released since."""
        missing = sources_of(targets) - self.registered
        if missing:
            raise SqlGraphError(f"building {', '.join(targets)} needs source(s) {', '.join(sorted(missing))}")
        order, edges = run_order(targets), graph()
        needed: set[str] = set()
        pending = [name for name in targets if name not in self.built]
        while pending:
            name = pending.pop()
            if name not in needed:
                needed.add(name)
                pending.extend(read for read in edges[name] if read not in self.built)
        for name in order:
            if name in needed:
                run(self.connection, name, params)
                self.built.add(name)

    def release(self, table: str) -> None:
        """Drop `table`, a built table that nothing will read again, to free its memory. The tables built
        from it keep their rows; the views that read it (directly or through other views) go with it.
        `build` makes any of them again, from the sources, should a later target need one."""
        if table not in self.built or materialization(table) != "table":
            raise SqlGraphError(f"{table!r} is not a table built in this workspace")
        edges = graph()
        views: list[str] = []  # the built views over it, each after the views it reads
        for name in run_order():
            over = any(read == table or read in views for read in edges[name])
            if over and name in self.built and materialization(name) == "view":
                views.append(name)
        for name in reversed(views):
            self.connection.execute(f"drop view {name}")
            self.built.discard(name)
        self.connection.execute(f"drop table {table}")
        self.built.discard(table)

    def failed_checks(self, params: dict[str, Any]) -> list[str]:
        """The output checks that fail: each a sentence naming the check and how many rows break it."""
        failed = []
        for name in PUBLISHED:
            columns = key(name)
            [(nulls, duplicates)] = rows(
                self.connection,
                f"select count(*) filter (where {' or '.join(f'{c} is null' for c in columns)}), "
                f"count(*) - (select count(*) from (select distinct {', '.join(columns)} from {name})) from {name}",
            )
            if nulls or duplicates:
                failed.append(f"{name}: key ({', '.join(columns)}) has {nulls} null and {duplicates} duplicate row(s)")
        for name in checks():
            bound = _bound(name, params, TESTS_DIR)
            [(count,)] = rows(self.connection, f"select count(*) from (\n{sql_text(name, TESTS_DIR)}\n)", bound)
            if count:
                rule = sql_text(name, TESTS_DIR).splitlines()[0].removeprefix("-- Check:").strip()
                failed.append(f"sql/tests/{name}.sql: {count} row(s) break the rule: {rule}")
        return failed

    def table(self, name: str) -> pa.Table:
        """A model's rows as Arrow, in key order."""
        return arrow(self.connection, sorted_query(name))
