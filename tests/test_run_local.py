"""`cro-awards run --local` and `run_pipeline(through="draft")`: a draft (and a release) without Prefect,
the same as the flow's (the flow's own end-to-end tests are in test_flow_e2e.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq

from cro_awards.publication import releases
from cro_awards.reading.config import load_config
from cro_awards.run import pipeline
from tests.conftest import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "surveys" / "2024.yaml"


def test_run_local_drafts_without_prefect_and_releases_with_release(tmp_path):
    """In a subprocess: exit 0, a draft in the private store and, with --release, the year released; the
    summary JSON like the flow's; Prefect never imported."""
    folders = ["--output", str(tmp_path / "out"), "--quarantine", str(tmp_path / "q"), "--drafts", str(tmp_path / "d")]
    script = (
        "import sys; from cli.main import main; code = main(sys.argv[1:]); "
        "assert 'prefect' not in sys.modules, 'Prefect imported'; raise SystemExit(code)"
    )
    summary = tmp_path / "summary.json"
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "run",
            "--local",
            "--config",
            str(SAMPLE),
            *folders,
            "--summary-json",
            str(summary),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr
    first = json.loads(summary.read_text())
    assert first["released"] is False and first["counts"] == {"read": 1500, "accepted": 1474, "quarantined": 26}
    assert "Not released" in ran.stdout and not (tmp_path / "out" / "survey_year=2024").exists()
    [listed] = releases.publications(tmp_path / "out", tmp_path / "d", 2024)
    assert listed.run_id == first["run_id"] and listed.status == "draft"

    ran = subprocess.run(
        [sys.executable, "-c", script, "run", "--local", "--release", "--config", str(SAMPLE), *folders],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr
    released = pq.read_table(tmp_path / "out" / "survey_year=2024" / "awards.parquet")
    assert released.num_rows == 93


def test_through_the_draft_the_pipeline_writes_the_draft_the_flow_would(tmp_path):
    loaded = load_config(SAMPLE)
    places = [tmp_path / name for name in ("out", "q", "d")]
    result, summary = pipeline.draft_year(loaded, loaded.export_path(None), *places, run_id="run-local-1")
    assert result.draft is not None and result.draft.parent == places[2] / "survey_year=2024"
    assert {path.name for path in result.draft.iterdir()} >= {
        "attribute_scores.parquet",
        "composite_scores.parquet",
        "awards.parquet",
        "report.html",
        "draft_report.html",
        "_manifest.json",
    }
    assert result.manifest.run_id == "run-local-1" and result.released is None
    assert summary.published == str(result.draft) and summary.released is False
    assert pq.read_table(result.draft / "awards.parquet").num_rows == result.tables["awards"].num_rows
    assert set(result.timings) == {"extract", "stage", "validate", "transform", "check", "draft"}
    assert {"record", "difference", "documents", "draft", "publication"} <= set(result.node_seconds)


def test_a_draft_request_is_given_exactly_when_running_through_the_draft(tmp_path):
    import pytest

    loaded = load_config(SAMPLE)
    with pytest.raises(ValueError, match="exactly when"):
        pipeline.run_pipeline(loaded, loaded.export_path(None), through="draft")
