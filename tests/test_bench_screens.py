"""The screens benchmark (bench/screens.py): the two configurations differ only in `screens`, the
overhead and the verdict are worked out from the medians, and one tiny round runs end to end. No timing
is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import screens as bench_screens

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _run(validate: float, stage: float = 1.0, cpu: float = 3.0) -> dict:
    return {
        "timings": {"extract": 2.0, "stage": stage, "validate": validate},
        "cpu": {"extract": 2.5, "stage": 1.5, "validate": cpu},
        "screen_steps": {},
        "counts": {},
        "quarantined_by_reason": {},
    }


def test_the_two_configurations_differ_only_in_screens(tmp_path: Path) -> None:
    paths = bench_screens.configs(tmp_path)
    with_screens, without = (yaml.safe_load(paths[v].read_text(encoding="utf-8")) for v in ("with", "without"))
    assert with_screens.pop("screens") == yaml.safe_load(bench_screens.SOURCE_CONFIG.read_text())["screens"]
    assert with_screens == without and without["max_rejected_share"] == 1.0 and "sample_export" not in without


def test_a_year_without_screens_cannot_be_benchmarked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"2024\.yaml: configures no screen"):
        bench_screens.configs(tmp_path, PROJECT_ROOT / "surveys" / "2024.yaml")


def test_overhead_and_verdict_come_from_the_medians() -> None:
    runs = {
        "without": [_run(2.0), _run(9.0), _run(2.2)],  # median 2.2: one slow run does not count
        "with": [_run(2.4, 1.1, 3.3), _run(2.3, 1.1, 3.3), _run(2.5, 1.1, 3.3)],  # median 2.4
    }
    runs["with"][0]["screen_steps"] = {"screen_speeding": 0.1, "int_screen_speeding": 0.2}
    runs["with"][1]["screen_steps"] = {"screen_speeding": 0.3, "int_screen_speeding": 0.2}
    summary = bench_screens.summarise(runs)
    assert summary["medians"]["without"]["validate"] == 2.2 and summary["medians"]["with"]["validate"] == 2.4
    assert summary["overhead_validate"] == pytest.approx(0.2 / 2.2)
    assert summary["overhead_stage_and_validate"] == pytest.approx((3.5 - 3.2) / 3.2)
    assert summary["overhead_validate_cpu"] == pytest.approx(0.1)
    assert summary["screen_steps"] == {"int_screen_speeding": 0.2, "screen_speeding": 0.1}  # absent: 0
    assert summary["passed"]  # 9.1% < 10%
    runs["with"] = [_run(2.5)] * 3  # 13.6%
    assert not bench_screens.summarise(runs)["passed"]
    assert bench_screens.overhead(2.0, 1.8) == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="nothing to compare against"):
        bench_screens.overhead(0.0, 1.0)


def test_render_names_both_variants_the_screen_reasons_and_the_verdict() -> None:
    runs = {"without": [_run(2.0)], "with": [_run(2.1)]}
    runs["without"][0]["counts"] = {"quarantined": 80}
    runs["with"][0]["counts"] = {"quarantined": 1_234}
    runs["with"][0]["quarantined_by_reason"] = {"unknown_cro": 3, "not_qualified": 900, "speeding": 0}
    results = {
        "size": 1000,
        "repeat": 1,
        "export": {"evaluations": 1_500_000, "seed": 2024},
        "load_average_start": [1.0, 1.0, 1.0],
        "load_average_end": [2.0, 2.0, 2.0],
        "runs": runs,
        "summary": bench_screens.summarise(runs),
    }
    lines = bench_screens.render(results).splitlines()
    assert lines[0].startswith("Screens benchmark: 1,500,000 evaluations (1000x, seed 2024), 1 run(s) per variant")
    assert lines[2].split() == ["without", "screens", "2.00", "1.00", "2.00", "3.00", "80"]
    assert lines[3].split() == ["with", "screens", "2.00", "1.00", "2.10", "3.00", "1,234"]
    assert "Rows per screen reason: not_qualified 900" in lines
    assert lines[-1] == "PASS: the screens add +5.0% to validation (target: under 10%)"


def test_the_steps_only_screens_run_are_the_screens_own() -> None:
    steps = bench_screens.screen_steps()
    assert {"stg_qualification_texts", "screen_speeding", "int_screen_straight_lining"} <= steps
    assert not steps & {"int_invalid_ratings", "int_evaluations", "stg_ratings", "evaluations", "rating_values"}


def test_one_tiny_round_runs_both_variants_end_to_end(tmp_path: Path) -> None:
    from bench.synthetic import generate_export, write_export

    paths = bench_screens.configs(tmp_path)
    export = tmp_path / "export.csv"
    config = yaml.safe_load(bench_screens.SOURCE_CONFIG.read_text(encoding="utf-8"))
    write_export(generate_export(config, n_evaluations=300, seed=3, bad_rows=True), export)
    without, with_ = (bench_screens.validate_once(paths[variant], export) for variant in ("without", "with"))
    assert set(with_["screen_steps"]) >= {"screen_qualification", "screen_speeding", "screen_straight_lining"}
    assert without["screen_steps"] == {}
    assert with_["counts"]["read"] == without["counts"]["read"] == 300
    assert with_["counts"]["quarantined"] > without["counts"]["quarantined"]
    assert not set(without["quarantined_by_reason"]) & set(bench_screens.SCREEN_REASONS)
    assert set(with_["cpu"]) == set(with_["timings"]) == {"extract", "stage", "validate"}
