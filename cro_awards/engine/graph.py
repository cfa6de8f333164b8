"""The run as one declared graph: every step names what it reads and writes; one runner orders and runs them.

Contract:
- A `Node` reads and writes *names*: relations of the run's DuckDB workspace (the sources Python
  registers, `sql.SOURCES`, and the models of `sql/`) and *values* (Python objects: the export as read,
  validation's verdicts, the scored tables, the manifest, the draft's folder). Two kinds:
  - a SQL node is a file of `sql/`: it writes the table it is named after and reads what DuckDB's
    parser finds in its text (`sql.reads`), plus every `$parameter` it binds that another node writes
    (a suite's verdicts); its other parameters are the year's knobs (`Run.parameters`);
  - a Python node is a function of a `Scope` that returns {name: value} for exactly what it writes; a
    written source is registered in the workspace, a value kept in the run.
- `Graph(steps, inputs, targets)` adds a SQL node for every model of `sql/` to the Python `steps` and
  checks that every name is written by one node and every name a Python node reads is written by some
  node or is an input; a model that reads what nothing writes (the staging of a screen the year does
  not configure) is refused only if a target needs it.
- `Graph.execute(run, *targets)` runs, in dependency order, every node the targets need that has not
  yet run in `run` (ties: in `STAGES` order, then by name), timing each (`Run.seconds`). A node reads
  only what it declares: `Scope` refuses any other name, so the declared reads are what it reads (the
  end-to-end tests run the whole graph), and it must write exactly what it declares.
- A node's *stage* is the first of `STAGES` whose targets need it (`Graph.stages`); `execute_stage`
  runs one stage's targets in order: what the flow shows as one task, the benchmark as one line, and
  what `through=` stops after.

The graph knows nothing of Prefect, files or the method: each Python node is declared beside its logic
(`step`) and registered once in `cro_awards.run.pipeline` (`nodes`), which runs the stages.
"""

from __future__ import annotations

import functools
import graphlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cro_awards.engine import identity, sql

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
        if source not in sql.SOURCES:
            raise sql.SqlGraphError(f"{source!r} is not a source of the SQL graph (cro_awards.engine.sql.SOURCES)")
        self.connection.register(source, table)
        self.registered.add(source)

    def build(self, *targets: str, params: dict[str, Any]) -> None:
        """Build every model `targets` need that is not built yet, each after what it reads (the run's
        graph runner, `cro_awards.engine.graph`, over the models alone). A model built needs nothing more: what
        it read may have been released since."""
        models = models_graph()
        needed = set().union(set(), *(models.needs(target, self.built) for target in targets))
        sources = {read for name in needed for read in models.nodes[name].reads if read in sql.SOURCES}
        missing = sources - self.registered
        if missing:
            raise sql.SqlGraphError(f"building {', '.join(targets)} needs source(s) {', '.join(sorted(missing))}")
        for name in models.order(needed):
            sql.run(self.connection, name, params)
            self.built.add(name)

    def release(self, table: str) -> None:
        """Drop `table`, a built table that nothing will read again, to free its memory. The tables built
        from it keep their rows; the views that read it (directly or through other views) go with it.
        `build` makes any of them again, from the sources, should a later target need one."""
        if table not in self.built or sql.materialization(table) != "table":
            raise sql.SqlGraphError(f"{table!r} is not a table built in this workspace")
        models = models_graph()
        views: list[str] = []  # the built views over it, each after the views it reads
        for name in models.order(models.nodes):
            over = any(read == table or read in views for read in models.nodes[name].reads)
            if over and name in self.built and sql.materialization(name) == "view":
                views.append(name)
        for name in reversed(views):
            self.connection.execute(f"drop view {name}")
            self.built.discard(name)
        self.connection.execute(f"drop table {table}")
        self.built.discard(table)

    def failed_checks(self, params: dict[str, Any]) -> list[str]:
        """The output checks that fail: each a sentence naming the check and how many rows break it."""
        failed = []
        for name in sql.PUBLISHED:
            columns = sql.key(name)
            [(nulls, duplicates)] = sql.rows(
                self.connection,
                f"select count(*) filter (where {' or '.join(f'{c} is null' for c in columns)}), "
                f"count(*) - (select count(*) from (select distinct {', '.join(columns)} from {name})) from {name}",
            )
            if nulls or duplicates:
                failed.append(f"{name}: key ({', '.join(columns)}) has {nulls} null and {duplicates} duplicate row(s)")
        for name in sql.checks():
            bound = sql._bound(name, params, sql.TESTS_DIR)
            text = sql.sql_text(name, sql.TESTS_DIR)
            [(count,)] = sql.rows(self.connection, f"select count(*) from (\n{text}\n)", bound)
            if count:
                rule = sql.sql_text(name, sql.TESTS_DIR).splitlines()[0].removeprefix("-- Check:").strip()
                failed.append(f"sql/tests/{name}.sql: {count} row(s) break the rule: {rule}")
        return failed

    def table(self, name: str) -> pa.Table:
        """A model's rows as Arrow, in key order."""
        return sql.arrow(self.connection, sql.sorted_query(name))


@functools.cache
def models_graph() -> Graph:
    """The models of `sql/` alone as a `cro_awards.engine.graph.Graph`, every source an input: what `Workspace.build`
    runs (the run's graph adds the Python nodes to the same models). Built once: the files do not change."""
    return Graph((), sql.SOURCES, {})


def run_order(targets: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The models needed for `targets` (default: all), each after the models it reads; ties by name."""
    models = models_graph()
    names = models.nodes if targets is None else set().union(set(), *(models.needs(t) for t in targets))
    return tuple(models.order(names))


def sources_of(targets: tuple[str, ...]) -> frozenset[str]:
    """The sources that building `targets` reads."""
    return frozenset(r for name in run_order(targets) for r in sql.reads(name) if r in sql.SOURCES)


class GraphError(sql.SqlGraphError):
    """The declared graph is inconsistent (a bug in the project, never bad input)."""


@dataclass(frozen=True)
class Node:
    """One step: its name, what it reads and writes, and (for a Python node) its function."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    function: Callable[[Scope], Mapping[str, Any]] | None = None
    """None for a SQL node (the file `sql/<name>.sql`)."""

    @property
    def is_sql(self) -> bool:
        return self.function is None


def step(*, reads: Iterable[str], writes: Iterable[str]) -> Callable[[Callable], Node]:
    """Declare a Python node: `@step(reads=(...), writes=(...))` over `def name(scope) -> dict`."""

    def declare(function: Callable[[Scope], Mapping[str, Any]]) -> Node:
        return Node(function.__name__, tuple(reads), tuple(writes), function)

    return declare


def sql_node(name: str, values: Iterable[str]) -> Node:
    """The node of model `sql/<name>.sql`: it reads the relations of its text and the `$parameters` it binds
    that are `values` written by other nodes."""
    bound = sorted(sql.parameters_of(name) & set(values))
    return Node(name, (*sql.reads(name), *bound), (name,))


@dataclass
class Run:
    """One run's state: the workspace, the values written so far, the nodes done and their seconds."""

    workspace: Workspace
    parameters: dict[str, Any]
    """The year's knobs as the SQL binds them (`transform.method_parameters`)."""
    values: dict[str, Any] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)
    """node -> seconds it took."""


class Scope:
    """What one node sees of the run: its declared reads, nothing else."""

    def __init__(self, run: Run, node: Node) -> None:
        self._run, self._node = run, node

    def _allowed(self, name: str) -> None:
        if name not in self._node.reads:
            raise GraphError(f"node {self._node.name} reads {name!r}, which it does not declare")

    def value(self, name: str) -> Any:
        """A value another node wrote (or an input)."""
        self._allowed(name)
        return self._run.values[name]

    def table(self, relation: str, *columns: str, order_by: tuple[str, ...] = (), distinct: bool = False) -> pa.Table:
        """A trivial read of a relation: some of its columns (all by default), optionally distinct and
        ordered. Anything more is a model of `sql/`."""
        self._allowed(relation)
        query = f"select {'distinct ' if distinct else ''}{', '.join(columns) or '*'} from {relation}"
        if order_by:
            query += f" order by {', '.join(order_by)}"
        return sql.arrow(self._run.workspace.connection, query)

    def count(self, relation: str) -> int:
        """The rows of a relation."""
        self._allowed(relation)
        [(count,)] = sql.rows(self._run.workspace.connection, f"select count(*) from {relation}")
        return int(count)

    def stream(self, relation: str, *columns: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """A trivial read of a relation in batches of `batch_rows` rows."""
        self._allowed(relation)
        reader = self._run.workspace.connection.sql(f"select {', '.join(columns)} from {relation}").to_arrow_reader(
            batch_rows
        )
        yield from reader
        reader.close()

    def release(self, relation: str) -> None:
        """Drop a built table this node reads and nothing after it will (`Workspace.release`)."""
        self._allowed(relation)
        self._run.workspace.release(relation)

    def keyed(self, relation: str) -> pa.Table:
        """A model's rows in the order of its key (`Workspace.table`)."""
        self._allowed(relation)
        return self._run.workspace.table(relation)

    def failed_checks(self) -> list[str]:
        """The output checks of `sql/tests/` and the published tables' keys that fail (declare what they read)."""
        for name in sql.checks_read():
            self._allowed(name)
        return self._run.workspace.failed_checks(self._run.parameters)

    @property
    def parameters(self) -> dict[str, Any]:
        return self._run.parameters


STAGES = ("extract", "stage", "validate", "transform", "check", "draft")
"""The stages, in the order they run: each the nodes its target needs beyond the earlier stages'."""


class Graph:
    """The declared graph of a run (module contract)."""

    def __init__(self, steps: Iterable[Node], inputs: Iterable[str], targets: Mapping[str, tuple[str, ...]]) -> None:
        python = list(steps)
        values = {name for node in python for name in node.writes}
        self.inputs = frozenset(inputs)
        self.nodes: dict[str, Node] = {}
        for node in [*python, *(sql_node(name, values | self.inputs) for name in sql.models())]:
            if node.name in self.nodes:
                raise GraphError(f"two nodes are named {node.name!r}")
            self.nodes[node.name] = node
        self.writer: dict[str, str] = {}
        for node in self.nodes.values():
            for name in node.writes:
                if name in self.writer:
                    raise GraphError(f"{name!r} is written by both {self.writer[name]} and {node.name}")
                self.writer[name] = node.name
        for node in python:  # a model reading what no node writes (an unconfigured screen's) is never needed
            unknown = [name for name in node.reads if name not in self.writer and name not in self.inputs]
            if unknown:
                raise GraphError(f"node {node.name} reads {', '.join(unknown)}: written by no node, and no input")
        unknown_stages = set(targets) - set(STAGES)
        if unknown_stages:
            raise GraphError(f"unknown stage(s) {sorted(unknown_stages)}")
        self.targets = {stage: targets[stage] for stage in STAGES if stage in targets}
        self.stages = self._stages()

    def needs(self, name: str, done: Iterable[str] = ()) -> set[str]:
        """The nodes that writing `name` needs, the writer included, short of the nodes `done` (what a done
        node read is not needed again: it may have been released)."""
        done = set(done)
        needed: set[str] = set()
        pending = [name]
        while pending:
            wanted = pending.pop()
            if wanted in self.inputs and wanted not in self.writer:
                continue
            if wanted not in self.writer:
                raise GraphError(f"{wanted!r} is written by no node")
            writer = self.writer[wanted]
            if writer not in needed and writer not in done:
                needed.add(writer)
                pending.extend(self.nodes[writer].reads)
        return needed

    def _stages(self) -> dict[str, str]:
        stage_of: dict[str, str] = {}
        for stage, targets in self.targets.items():
            for target in targets:
                for name in self.needs(target):
                    stage_of.setdefault(name, stage)
        return stage_of

    def order(self, nodes: Iterable[str]) -> list[str]:
        """`nodes` in dependency order; among the ready ones, the earliest stage first, then by name."""
        chosen = set(nodes)
        edges = {
            name: {self.writer[read] for read in self.nodes[name].reads if read in self.writer} & chosen
            for name in chosen
        }
        rank = {stage: index for index, stage in enumerate(STAGES)}
        sorter = graphlib.TopologicalSorter(edges)
        sorter.prepare()
        ready: list[str] = []
        order: list[str] = []
        while sorter.is_active():
            ready.extend(sorter.get_ready())
            ready.sort(key=lambda name: (rank.get(self.stages.get(name, STAGES[-1]), len(STAGES)), name))
            name = ready.pop(0)
            order.append(name)
            sorter.done(name)
        return order

    def execute(self, run: Run, *targets: str) -> None:
        """Run every node `targets` need that has not yet run in `run`, in order (module contract)."""
        needed = set().union(set(), *(self.needs(target, run.done) for target in targets))
        for name in self.order(needed):
            self._run_node(run, self.nodes[name])

    def execute_stage(self, run: Run, stage: str) -> None:
        """Run stage `stage`: what each of its targets needs beyond what has run, target by target (so a
        stage's first target, such as the admission before any scoring, runs before the rest)."""
        for target in self.targets[stage]:
            self.execute(run, target)

    def _run_node(self, run: Run, node: Node) -> None:
        started = time.perf_counter()
        if node.is_sql:
            parameters = {**run.parameters, **{name: run.values[name] for name in node.reads if name in run.values}}
            sql.run(run.workspace.connection, node.name, parameters)
            run.workspace.built.add(node.name)
        else:
            written = dict(node.function(Scope(run, node)))
            if set(written) != set(node.writes):
                raise GraphError(f"node {node.name} wrote {sorted(written)}, but declares {sorted(node.writes)}")
            for name, value in written.items():
                if name in sql.SOURCES:
                    run.workspace.register(name, value)
                run.values[name] = value
        run.done.add(node.name)
        run.seconds[node.name] = time.perf_counter() - started
