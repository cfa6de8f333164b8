"""The run's declared graph (cro_awards/engine/graph.py): ordering, stages, what a node may read and must write,
and, on the bundled sample, that every Python step reads exactly what it declares."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cro_awards.engine import graph
from cro_awards.engine.graph import Graph, GraphError, Run, Workspace, step
from cro_awards.reading.config import load_config
from cro_awards.run import pipeline
from tests.conftest import PROJECT_ROOT


@step(reads=("x",), writes=("doubled",))
def doubled(scope):
    return {"doubled": scope.value("x") * 2}


@step(reads=("doubled", "x"), writes=("total",))
def total(scope):
    return {"total": scope.value("doubled") + scope.value("x")}


@step(reads=("x",), writes=("other",))
def other(scope):
    return {"other": -scope.value("x")}


def run_of(workspace, **values) -> Run:
    run = Run(workspace, {})
    run.values.update(values)
    return run


@pytest.fixture
def workspace():
    with Workspace.open() as opened:
        yield opened


def test_a_target_runs_what_it_needs_once_in_order_and_nothing_else(workspace):
    graph_ = Graph([total, doubled, other], ("x",), {})
    run = run_of(workspace, x=3)
    graph_.execute(run, "total")
    assert run.values["total"] == 9 and "other" not in run.values
    assert list(run.seconds) == ["doubled", "total"]
    graph_.execute(run, "total", "doubled")  # done already: nothing runs again
    assert list(run.seconds) == ["doubled", "total"]


def test_stages_are_the_first_whose_targets_need_a_node_and_run_target_by_target(workspace):
    graph_ = Graph([total, doubled, other], ("x",), {"validate": ("doubled",), "transform": ("other", "total")})
    assert graph_.stages == {"doubled": "validate", "other": "transform", "total": "transform"}
    run = run_of(workspace, x=1)
    graph_.execute_stage(run, "transform")
    assert list(run.seconds) == ["other", "doubled", "total"], "the stage's first target first"


def test_a_node_reading_what_it_does_not_declare_is_refused(workspace):
    @step(reads=("x",), writes=("sneaky",))
    def sneaky(scope):
        return {"sneaky": scope.value("secret")}

    with pytest.raises(GraphError, match="sneaky reads 'secret', which it does not declare"):
        Graph([sneaky], ("x", "secret"), {}).execute(run_of(workspace, x=1, secret=2), "sneaky")


def test_a_node_must_write_exactly_what_it_declares(workspace):
    @step(reads=("x",), writes=("a", "b"))
    def half(scope):
        return {"a": 1}

    with pytest.raises(GraphError, match=r"wrote \['a'\], but declares \['a', 'b'\]"):
        Graph([half], ("x",), {}).execute(run_of(workspace, x=1), "a")


def test_two_writers_of_a_name_and_a_read_nobody_writes_are_refused_when_declared():
    with pytest.raises(GraphError, match="'doubled' is written by both"):
        Graph([doubled, doubled.__class__("again", ("x",), ("doubled",), doubled.function)], ("x",), {})
    with pytest.raises(GraphError, match="node total reads doubled: written by no node"):
        Graph([total], ("x",), {})


def test_a_sql_node_reads_its_parsed_relations_and_binds_the_values_it_uses(workspace):
    """int_invalid_ratings reads stg_ratings and binds $invalid_rating_texts, a value a suite writes."""
    run_graph = pipeline.build_graph(load_config(PROJECT_ROOT / "surveys" / "2024.yaml").survey)
    node = run_graph.nodes["int_invalid_ratings"]
    assert node.is_sql and set(node.reads) == {"stg_ratings", "invalid_rating_texts"}
    assert run_graph.writer["invalid_rating_texts"] == "judge_rating_values"
    assert run_graph.nodes["int_recency_window"].reads == ()


def test_a_sources_value_is_registered_in_the_workspace(workspace):
    @step(reads=(), writes=("ballot",))
    def ballot(scope):
        return {"ballot": pa.table({"spelling": ["Acme"], "cro": ["acme"]})}

    graph_ = Graph([ballot], (), {})
    run = run_of(workspace)
    graph_.execute(run, "cro_aliases")
    assert workspace.connection.sql("select cro from cro_aliases").fetchall() == [("acme",)]


def test_without_screens_their_models_are_never_needed_though_they_read_what_nothing_writes():
    run_graph = pipeline.build_graph(load_config(PROJECT_ROOT / "surveys" / "2024.yaml").survey)
    needed = set().union(*(run_graph.needs(t) for targets in run_graph.targets.values() for t in targets))
    assert not needed & {"stg_qualification_texts", "int_screen_speeding", "int_equal_ratings", "judge_durations"}
    with pytest.raises(GraphError, match="raw_qualifications"):
        run_graph.needs("stg_qualification_texts")


def test_on_the_sample_every_python_step_reads_exactly_what_it_declares(monkeypatch, tmp_path):
    """The whole run of the 2025 sample (with every screen), through the draft, each Python node's reads
    recorded."""
    seen: dict[str, set[str]] = {}
    allowed = graph.Scope._allowed

    def recording(self, name):
        allowed(self, name)
        seen.setdefault(self._node.name, set()).add(name)

    monkeypatch.setattr(graph.Scope, "_allowed", recording)
    loaded = load_config(PROJECT_ROOT / "surveys" / "2025.yaml")
    places = [tmp_path / name for name in ("out", "q", "d")]
    pipeline.draft_year(loaded, loaded.export_path(None), *places, run_id="run-reads")
    declared = {node.name: set(node.reads) for node in pipeline.nodes(loaded.survey)}
    assert seen == declared
