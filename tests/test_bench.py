"""The benchmark's own checks (bench/): the baseline computes what the pipeline computes, and the
results table renders. Quick: no timing is asserted, no Prefect flow is run."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
import yaml

from bench import baseline, data as bench_data, run as bench_run
from bench.synthetic import generate_export, write_export
from tests.conftest import SAMPLE_CONFIG


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 300-row export with planted bad rows, the bench YAML, and both programs' outputs."""
    from cro_awards.reading.config import load_config
    from cro_awards.run.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("bench")
    config = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    export = root / "export.csv"
    write_export(generate_export(config, n_evaluations=300, seed=7, bad_rows=True), export)
    # A small sample: lower the bar so that cells are eligible and awards exist (min_cell_size stays 3: at 300
    # rows, many cells are thin, and both programs must leave them out of everything).
    yaml_path = bench_data.bench_config(root, SAMPLE_CONFIG)
    bench_yaml = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    bench_yaml.update(min_evaluations=6, min_cros_for_awards=3)
    yaml_path.write_text(yaml.safe_dump(bench_yaml, sort_keys=False), encoding="utf-8")

    loaded = load_config(yaml_path)
    result = run_pipeline(loaded, export)
    tables, rejected, counts = result.tables, result.validation.rejected, result.counts

    summary = baseline.run(yaml_path, export, root / "out", root / "quarantine")
    ours = {
        name: pq.read_table(root / "out" / "survey_year=2024" / f"{name}.parquet")
        for name in ("attribute_scores", "composite_scores", "awards")
    }
    quarantined = pq.read_table(root / "quarantine" / "survey_year=2024" / "rejected_evaluations.parquet")
    return {
        "pipeline": tables,
        "pipeline_rejected": rejected,
        "pipeline_counts": counts,
        "pipeline_not_counted": result.not_counted,
        "baseline": ours,
        "baseline_rejected": quarantined,
        "baseline_summary": summary,
    }


def _rows(table, key):
    return {tuple(row[k] for k in key): row for row in table.to_pylist()}


def test_baseline_awards_equal_the_pipelines(tiny):
    key = ("segment", "category", "cro", "award")
    pipeline, ours = _rows(tiny["pipeline"]["awards"], key), _rows(tiny["baseline"]["awards"], key)
    assert pipeline, "the tiny export must produce awards for the comparison to mean something"
    assert set(ours) == set(pipeline)
    for cell, row in pipeline.items():
        for column in ("composite", "weighted_mean", "weighted_sd", "threshold"):
            assert math.isclose(ours[cell][column], row[column], rel_tol=0, abs_tol=1e-9), (cell, column)


def test_baseline_attribute_scores_equal_the_pipelines(tiny):
    key = ("segment", "cro", "attribute")
    pipeline, ours = _rows(tiny["pipeline"]["attribute_scores"], key), _rows(tiny["baseline"]["attribute_scores"], key)
    # The same rows: the thin cells (fewer than 3 ratings) count nowhere in either, overall included.
    assert sum(segment["cells"] for segment in tiny["pipeline_not_counted"].values()) > 0, "the sample has thin cells"
    assert pipeline and set(ours) == set(pipeline)
    assert min(row["n_ratings"] for row in ours.values()) >= 3
    for cell, row in pipeline.items():
        assert ours[cell]["n_ratings"] == row["n_ratings"], cell
        assert math.isclose(ours[cell]["score"], row["score"], rel_tol=0, abs_tol=1e-9), cell


def test_baseline_composite_scores_equal_the_pipelines(tiny):
    key = ("segment", "cro", "category")
    pipeline, ours = _rows(tiny["pipeline"]["composite_scores"], key), _rows(tiny["baseline"]["composite_scores"], key)
    assert pipeline and set(ours) == set(pipeline)  # the same composites: of thick cells only, none withheld
    for cell, row in pipeline.items():
        for column in ("n_evaluations", "is_eligible", "rank"):
            assert ours[cell][column] == row[column], (cell, column)
        assert math.isclose(ours[cell]["composite"], row["composite"], rel_tol=0, abs_tol=1e-9), cell


def test_baseline_quarantines_the_same_rows_for_the_same_reasons(tiny):
    pipeline = {row["source_row"]: row["reasons"] for row in tiny["pipeline_rejected"].to_pylist()}
    ours = {row["source_row"]: row["reasons"] for row in tiny["baseline_rejected"].to_pylist()}
    assert pipeline and ours == pipeline
    assert tiny["baseline_summary"]["counts"] == tiny["pipeline_counts"]


def _fake_results() -> dict:
    def run(seconds, rss, stages=None):
        result = {"wall_seconds": seconds, "peak_rss_mb": rss, "exit_code": 0}
        if stages:
            result["stages"] = stages
        return result

    stages = dict.fromkeys(bench_run.STAGES, 0.1)
    results = {
        "machine": {
            "nproc": 2,
            "cpu_model": "Test CPU",
            "mem_total_mb": 24000,
            "platform": "Linux",
            "python": "3.11.7",
            "packages": {"prefect": "3.9.1", "duckdb": "2.0.1"},
            "commit": "abc",
        },
        "floor": {"warm": run(8.0, 300), "cold": run(20.0, 400)},
        "sizes": [
            {
                "multiplier": 1,
                "evaluations": 1500,
                "ratings": 29000,
                "pipeline": {**run(10.0, 420, stages), "disclosure": {"audit": 0.32}},
                "pipeline_cold": run(22.0, 450),
                "baseline": run(0.6, 170),
                "awards_check": {"equal": True},
            },
            {
                "multiplier": 100,
                "evaluations": 150000,
                "ratings": 2900000,
                "pipeline": {**run(20.0, 1200, stages), "disclosure": {"audit": 0.53}},
                "baseline": run(4.0, 600),
                "awards_check": {"equal": False},
            },
        ],
    }
    return bench_run.derive(results)


def test_results_table_renders():
    results = _fake_results()
    text = bench_run.render_table(results)
    assert "Test CPU" in text and "100x" in text and "150,000" in text
    assert "DIFFER" in text and "same" in text
    by_name = {target["name"]: target["status"] for target in results["targets"]}
    # pipeline +10 s vs baseline +3.4 s: within 3x; 1200 MiB < 1.5 GiB; warm gap 2 s (<= 2), cold gap 2 s.
    assert by_name["100x pipeline marginal cost <= 3x baseline marginal cost"] == "PASS"
    assert by_name["1000x pipeline marginal cost <= 3x baseline marginal cost"] == "SKIP"
    assert by_name["100x pipeline peak RSS < 1.5 GiB"] == "PASS"
    assert by_name["1x pipeline within 2 s of the floor (warm)"] == "PASS"
    # The audit's 0.32 s at 1x passes; 0.53 s at 100x fails the 0.5 s target; the table shows it per size.
    assert by_name["1x disclosure audit < 0.5 s"] == "PASS"
    assert by_name["100x disclosure audit < 0.5 s"] == "FAIL"
    assert "0.320" in text and "0.530" in text
    for target in results["targets"]:
        assert f"{target['status']:4}  {target['name']}" in text


def test_a_failed_run_fails_its_targets_and_shows_in_the_table():
    results = _fake_results()
    results["sizes"][1]["pipeline"]["exit_code"] = 1
    results = bench_run.derive(results)
    text = bench_run.render_table(results)
    assert "FAILED(1)" in text
    by_name = {target["name"]: target["status"] for target in results["targets"]}
    assert by_name["100x pipeline marginal cost <= 3x baseline marginal cost"] == "FAIL"
    assert by_name["100x pipeline peak RSS < 1.5 GiB"] == "FAIL"
    assert results["sizes"][1]["derived"]["pipeline_marginal_seconds"] is None


def test_bench_config_never_fails_on_the_share_of_rejected_rows(tmp_path):
    path = bench_data.bench_config(tmp_path, SAMPLE_CONFIG)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert config["max_rejected_share"] == 1.0 and "sample_export" not in config
    assert config["cros"] == yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))["cros"]


def test_bench_config_accepts_the_loss_of_the_synthetic_exports_made_up_cros(tmp_path):
    """At 1000x each made-up CRO name of the generator has some 10 rows, as many as min_evaluations: without
    `not_rated` a benchmark run would stop (a CRO is never lost quietly)."""
    from bench import synthetic
    from cro_awards.reading.config import load_config

    path = bench_data.bench_config(tmp_path, SAMPLE_CONFIG)
    assert set(synthetic.UNKNOWN_CROS) <= set(load_config(path).survey.not_rated)


def test_measure_reports_wall_time_peak_rss_and_exit_code(tmp_path):
    import sys

    result = bench_run.measure(
        [sys.executable, "-c", "x = bytearray(64 << 20); raise SystemExit(3)"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "log",
    )
    assert result["exit_code"] == 3 and result["wall_seconds"] > 0
    assert result["peak_rss_mb"] >= 64 and not result["left_processes"]


def test_a_run_over_the_memory_cap_is_killed_and_says_so(tmp_path):
    import sys

    result = bench_run.measure(
        [sys.executable, "-c", "import time; x = bytearray(400 << 20); time.sleep(30)"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "log",
        max_rss_mb=200,
        timeout=20,
    )
    assert result["killed"] == "memory" and result["exit_code"] == -9 and result["wall_seconds"] < 15
    entry = {"pipeline": result}
    assert bench_run._seconds(entry, "pipeline") == "KILLED(memory)"


def test_profile_times_every_sql_file_validation_and_the_python_steps(tmp_path, capsys):
    from bench import profile
    from cro_awards.disclosure import audit as disclosure
    from cro_awards.engine import sql as sql_module
    from cro_awards.method import uncertainty
    from cro_awards.reading.config import load_config
    from cro_awards.run.pipeline import build_graph

    before = (sql_module.run, uncertainty.analyse, disclosure.audit)
    assert profile.main(["--size", "1", "--data-dir", str(tmp_path), "--bootstrap-replicates", "20"]) == 0
    assert (sql_module.run, uncertainty.analyse, disclosure.audit) == before  # patches undone
    labels = [line.rsplit(None, 2)[0] for line in capsys.readouterr().out.splitlines() if line.endswith(" s")]
    ran = [label.removeprefix("sql ") for label in labels if label.startswith("sql ")]
    # the bench year (2024) configures no respondent screens: the models its graph needs, and no other
    graph = build_graph(load_config(sql_module.SQL_DIR.parent / "surveys" / "2024.yaml").survey)
    needed = set().union(*(graph.needs(target) for targets in graph.targets.values() for target in targets))
    assert sorted(ran) == sorted(name for name in needed if graph.nodes[name].is_sql), "every SQL file of the run once"
    for name in ran:
        assert all(ran.index(read) < ran.index(name) for read in sql_module.reads(name) if read in ran), name
    assert {"extract (total)", "validate (total)", "resampling", "audit", "transform (total)"} <= set(labels)
    assert "suppression" not in labels  # complementary suppression is gone: nothing is withheld after the fact


def test_the_awards_check_compares_the_pipelines_release(tmp_path):
    """The pipeline runs `cro-awards run --release`: its awards are the release's, read through the year's
    link; a draft alone (no release) has no awards to compare."""
    from cro_awards.publication import releases
    from tests import helpers_publications as publications

    pipeline, baseline_out = tmp_path / "pipeline" / "out", tmp_path / "baseline" / "out"
    publications.draft(pipeline, "run-a", n_awards=2)
    (baseline_out / "survey_year=2024").mkdir(parents=True)
    pq.write_table(publications.tables(1.0, n_awards=2)["awards"], baseline_out / "survey_year=2024" / "awards.parquet")
    assert bench_run.compare_awards(pipeline, baseline_out)["equal"] is False, "a draft is not what readers see"

    releases.release(
        pipeline, tmp_path / "pipeline" / "q", 2024, "run-a", store=publications.store(pipeline), now=publications.NOW
    )
    check = bench_run.compare_awards(pipeline, baseline_out)
    assert check["equal"] is True and check["pipeline_awards"] == 2


def test_median_run_keeps_the_median_wall_time_the_largest_rss_and_the_worst_exit_code():
    from bench.run import median_run

    runs = [
        {"wall_seconds": 3.0, "peak_rss_mb": 10.0, "exit_code": 0},
        {"wall_seconds": 1.0, "peak_rss_mb": 30.0, "exit_code": 0},
        {"wall_seconds": 2.0, "peak_rss_mb": 20.0, "exit_code": -9},
    ]
    chosen = median_run(runs)
    assert (chosen["wall_seconds"], chosen["peak_rss_mb"], chosen["exit_code"]) == (2.0, 30.0, -9)
    assert [run["wall_seconds"] for run in chosen["runs"]] == [3.0, 1.0, 2.0]
    assert median_run(runs[:1]) == runs[0]
