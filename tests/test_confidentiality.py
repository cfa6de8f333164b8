"""Confidentiality: nothing respondent-level reaches the outputs, logs, Prefect's database, artifacts or
stored results. A run on an export with distinctive respondent ids and comments is scanned for them."""

import csv
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.conftest import PROJECT_ROOT, RUN_TIMEOUT, SAMPLE_CONFIG, cli_run_env

pytestmark = [pytest.mark.e2e, pytest.mark.prefect, pytest.mark.timeout(RUN_TIMEOUT + 60)]

MARK = "ZQXJ"  # respondent ids and comments carry it; no other text of the run does


def _distinctive_export(path):
    source = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"
    with source.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    header = rows[0]
    respondent, comments = header.index("respondent_id"), header.index("comments")
    for row in rows[1:]:
        if row[respondent].strip():
            row[respondent] = f"{MARK}-{row[respondent].strip()}"
        row[comments] = f"{MARK} comment: the monitor was late, again"
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(rows)


def test_no_respondent_level_value_leaves_the_quarantine(tmp_path):
    export, home = tmp_path / "export_2024.csv", tmp_path / "prefect-home"
    output, quarantine = tmp_path / "output", tmp_path / "quarantine"
    _distinctive_export(export)
    env = cli_run_env(home, PREFECT_LOGGING_LEVEL="DEBUG")  # ephemeral mode: its own temporary server
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cli.main import main; sys.exit(main())",
            "run",
            "--config",
            str(SAMPLE_CONFIG),
            "--export",
            str(export),
            "--output",
            str(output),
            "--quarantine",
            str(quarantine),
        ],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr
    assert MARK not in run.stdout and MARK not in run.stderr, "logs and printed output"
    scanned = 0
    for folder in (output, home):
        for path in folder.rglob("*"):
            if path.is_file():
                scanned += 1
                assert MARK.encode() not in path.read_bytes(), f"{path} holds respondent-level text"
    assert scanned >= 5, "the output and Prefect's database were scanned"
    rejected = pq.read_table(quarantine / "survey_year=2024" / "rejected_evaluations.parquet")
    assert any(MARK in (value or "") for value in rejected["respondent_id"].to_pylist()), (
        "only the quarantine keeps them"
    )
    assert not quarantine.resolve().is_relative_to(output.resolve())


def test_published_scores_rest_on_at_least_min_cell_size(tmp_path, prefect_server):
    from flows.awards import cro_awards_flow

    cro_awards_flow(
        config=str(SAMPLE_CONFIG),
        output=str(tmp_path / "out"),
        quarantine=str(tmp_path / "q"),
        min_cell_size=5,
        min_evaluations=10,
    )
    attribute = pq.read_table(tmp_path / "out" / "survey_year=2024" / "attribute_scores.parquet")
    composite = pq.read_table(tmp_path / "out" / "survey_year=2024" / "composite_scores.parquet")
    assert min(attribute["n_ratings"].to_pylist()) >= 5
    assert min(composite["n_evaluations"].to_pylist()) >= 5
