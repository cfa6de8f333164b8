"""End to end: the real Prefect flow on the bundled sample, read back as the contract says readers do."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG

pytestmark = [pytest.mark.e2e, pytest.mark.prefect]

SAMPLE_EXPORT = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"


@pytest.fixture(scope="module")
def first_run(prefect_server, tmp_path_factory):
    from flows.awards import cro_awards_flow

    root = tmp_path_factory.mktemp("e2e")
    output, quarantine = root / "output", root / "quarantine"
    summary = cro_awards_flow(config=str(SAMPLE_CONFIG), output=str(output), quarantine=str(quarantine), release=True)
    return summary, output, quarantine


def _read(output: Path, table: str) -> list[tuple]:
    connection = duckdb.connect()
    return connection.execute(
        f"select * from read_parquet('{output}/*/{table}.parquet', hive_partitioning = true)"
    ).fetchall()


def _columns(output: Path, table: str) -> list[str]:
    connection = duckdb.connect()
    return [
        row[0]
        for row in connection.execute(
            f"describe select * from read_parquet('{output}/*/{table}.parquet', hive_partitioning = true)"
        ).fetchall()
    ]


def test_published_tables_read_back_with_hive_partitioning(first_run):
    _, output, _ = first_run
    assert _columns(output, "attribute_scores") == [
        "segment",
        "cro",
        "attribute",
        "n_ratings",
        "score",
        "cro_name",
        "attribute_label",
        "survey_year",
    ]
    assert _columns(output, "composite_scores") == [
        "segment",
        "cro",
        "category",
        "n_evaluations",
        "composite",
        "is_eligible",
        "rank",
        "ci_low",
        "ci_high",
        "composite_shrunk",
        "p_leader",
        "p_champion",
        "rank_low",
        "rank_high",
        "is_co_leader",
        "composite_adjusted",
        "cro_name",
        "category_label",
        "survey_year",
    ]
    assert _columns(output, "awards") == [
        "segment",
        "category",
        "cro",
        "award",
        "composite",
        "weighted_mean",
        "weighted_sd",
        "threshold",
        "p_award",
        "is_robust",
        "cro_name",
        "category_label",
        "survey_year",
    ]
    awards = _read(output, "awards")
    assert awards, "the sample must produce awards"
    assert {row[0] for row in awards} == {"big_pharma", "small_pharma", "overall"}
    assert {row[3] for row in awards} == {"leader", "champion"}
    assert {row[-1] for row in awards} == {2024}


def test_manifest_accounts_for_every_row(first_run):
    summary, output, _quarantine = first_run
    manifest = json.loads((output / "survey_year=2024" / "_manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["read"] == counts["accepted"] + counts["quarantined"]
    with SAMPLE_EXPORT.open(newline="", encoding="utf-8") as stream:
        import csv

        data_rows = sum(1 for _ in csv.reader(stream)) - 1
    assert counts["read"] == data_rows
    assert manifest["export"]["file_name"] == "export_2024.csv"
    assert len(manifest["export"]["sha256"]) == 64
    assert manifest["config"]["file_name"] == "2024.yaml"
    assert manifest["config"]["overrides"] == {}
    assert {name: entry["rows"] for name, entry in manifest["tables"].items()} == {
        name: len(_read(output, name)) for name in ("attribute_scores", "composite_scores", "awards")
    }
    assert manifest["run_id"] == summary.run_id
    assert {"code", "duckdb", "prefect", "great-expectations", "pyarrow"} <= set(manifest["versions"])


def test_manifest_counts_what_was_not_counted_and_the_tables_are_the_references(first_run):
    """D6: `not_counted` holds, per segment, the cells rated by fewer than min_cell_size respondents and their
    ratings, as the independent reference finds them (tests/reference.py, `thin_cells`); the released tables
    are the reference's, row for row (the rule leaves nothing to withhold afterwards)."""
    import yaml

    from tests.reference import reference, thin_cells

    _summary, output, _quarantine = first_run
    manifest = json.loads((output / "survey_year=2024" / "_manifest.json").read_text())
    config = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    thin = thin_cells(config, SAMPLE_EXPORT)
    expected = {
        segment: {
            "cells": sum(1 for cell in thin if cell[0] == segment),
            "ratings": sum(len(rows) for cell, rows in thin.items() if cell[0] == segment),
        }
        for segment in ("big_pharma", "small_pharma")
    }
    assert manifest["not_counted"] == expected
    assert expected == {"big_pharma": {"cells": 102, "ratings": 160}, "small_pharma": {"cells": 76, "ratings": 132}}
    assert "withheld" not in manifest
    _quarantined, tables = reference(config, SAMPLE_EXPORT)
    for table in ("attribute_scores", "composite_scores", "awards"):
        assert len(_read(output, table)) == len(tables[table]), table


def test_quarantine_lives_outside_output_with_every_rejected_row(first_run):
    summary, output, quarantine = first_run
    rows = (
        duckdb.connect()
        .execute(
            f"select source_row, reasons from read_parquet('{quarantine}/survey_year=2024/rejected_evaluations.parquet')"
        )
        .fetchall()
    )
    assert len(rows) == summary.counts["quarantined"] > 0
    reasons = {reason for _, row_reasons in rows for reason in row_reasons}
    assert reasons == {
        "missing_respondent_id",
        "invalid_rd_spend",
        "unknown_cro",
        "invalid_last_engaged",
        "outside_recency_window",
        "invalid_rating",
        "no_ratings",
        "duplicate_evaluation",
    }
    published = [p for p in output.rglob("*") if p.is_file()]
    assert not any("rejected" in p.name for p in published)


def test_a_rerun_is_a_draft_with_the_same_rows_and_releasing_it_switches_the_link(first_run):
    from cro_awards.publication import releases
    from flows.awards import cro_awards_flow

    summary, output, quarantine = first_run
    before = {table: _read(output, table) for table in ("attribute_scores", "composite_scores", "awards")}
    first_target = os.readlink(output / "survey_year=2024")
    released_quarantine = (quarantine / "survey_year=2024" / "rejected_evaluations.parquet").read_bytes()
    second = cro_awards_flow(config=str(SAMPLE_CONFIG), output=str(output), quarantine=str(quarantine))
    assert second.run_id != summary.run_id and second.released is False
    assert os.readlink(output / "survey_year=2024") == first_target, "a draft changes nothing readers see"
    assert (quarantine / "survey_year=2024" / "rejected_evaluations.parquet").read_bytes() == released_quarantine
    assert "no differences" in second.diff
    draft = Path(second.published)
    assert "DRAFT" in (draft / "draft_report.html").read_text() and "DRAFT" not in (draft / "report.html").read_text()
    releases.release(output, quarantine, 2024, second.run_id, store=output.parent / "drafts")
    assert os.readlink(output / "survey_year=2024") != first_target
    assert {table: _read(output, table) for table in before} == before
    quarantined = (
        duckdb.connect()
        .execute(f"select count(*) from read_parquet('{quarantine}/survey_year=2024/rejected_evaluations.parquet')")
        .fetchone()[0]
    )
    assert quarantined == summary.counts["quarantined"]


def test_overrides_are_applied_and_recorded(prefect_server, tmp_path):
    from flows.awards import cro_awards_flow

    summary = cro_awards_flow(
        config=str(SAMPLE_CONFIG),
        output=str(tmp_path / "out"),
        quarantine=str(tmp_path / "q"),
        min_evaluations=10_000,
    )
    assert summary.awards == []
    manifest = json.loads((Path(summary.published) / "_manifest.json").read_text())
    assert manifest["config"]["overrides"] == {"min_evaluations": 10_000}
    assert manifest["config"]["effective"]["min_evaluations"] == 10_000


def test_command_line_prints_winners(prefect_server, tmp_path, capsys):
    from cli.main import main

    code = main(["run", "--release", "--output", str(tmp_path / "out"), "--quarantine", str(tmp_path / "q")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "CRO Leadership Awards 2025" in printed, "the latest survey year (surveys/2025.yaml) by default"
    assert "leader" in printed and "champion" in printed
    assert "Rows read" in printed
    assert "Released: readers of" in printed and (tmp_path / "out" / "survey_year=2025" / "awards.parquet").is_file()


def test_command_line_file_error_exits_non_zero_without_traceback(prefect_server, tmp_path, capsys):
    from cli.main import main

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code = main(["run", "--export", str(empty), "--output", str(tmp_path / "out"), "--quarantine", str(tmp_path / "q")])
    error = capsys.readouterr().err
    assert code == 3
    assert "empty.csv" in error and "empty" in error
    assert "Traceback" not in error
    assert not (tmp_path / "out" / "survey_year=2025").exists()


def test_command_line_config_error_stops_before_reading_the_export(prefect_server, tmp_path, capsys):
    from cli.main import main

    config = tmp_path / "2024.yaml"
    config.write_text(SAMPLE_CONFIG.read_text().replace("min_cell_size: 3", "min_cell_size: 3\nmin_cel_size: 4"))
    code = main(
        [
            "run",
            "--config",
            str(config),
            "--export",
            str(tmp_path / "missing.csv"),
            "--output",
            str(tmp_path / "out"),
            "--quarantine",
            str(tmp_path / "q"),
        ]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert "2024.yaml" in error and "min_cel_size" in error and "unknown key" in error
    assert "missing.csv" not in error


def test_too_many_rejected_rows_fail_but_write_the_quarantine(prefect_server, tmp_path):
    from cro_awards.engine.errors import RejectedShareError
    from flows.awards import cro_awards_flow

    with pytest.raises(RejectedShareError, match="max_rejected_share"):
        cro_awards_flow(
            config=str(SAMPLE_CONFIG),
            output=str(tmp_path / "out"),
            quarantine=str(tmp_path / "q"),
            max_rejected_share=0.0,
        )
    (written,) = (tmp_path / "q" / "survey_year=2024").glob("*/rejected_evaluations.parquet")
    assert written.is_file(), "the failed run's own quarantine, under its run id"
    assert not (tmp_path / "out" / "survey_year=2024").exists()


def test_a_failed_run_leaves_the_release_the_drafts_and_the_released_quarantine_untouched(first_run):
    """The issue's story: a run failing at the gate (too many rejected rows) once replaced the live year's
    quarantine. Now it writes only its own, under its run id."""
    from cro_awards.engine.errors import RejectedShareError
    from cro_awards.publication import releases
    from flows.awards import cro_awards_flow

    _, output, quarantine = first_run
    year = quarantine / "survey_year=2024"
    link = os.readlink(output / "survey_year=2024")
    released_quarantine = (year / "rejected_evaluations.parquet").read_bytes()
    drafts = [(p.run_id, p.status) for p in releases.publications(output, output.parent / "drafts", 2024)]
    runs_before = {p.name for p in year.iterdir() if p.is_dir()}
    with pytest.raises(RejectedShareError):
        cro_awards_flow(
            config=str(SAMPLE_CONFIG), output=str(output), quarantine=str(quarantine), max_rejected_share=0.0
        )
    assert os.readlink(output / "survey_year=2024") == link
    assert (year / "rejected_evaluations.parquet").read_bytes() == released_quarantine
    assert [(p.run_id, p.status) for p in releases.publications(output, output.parent / "drafts", 2024)] == drafts
    (failed,) = {p.name for p in year.iterdir() if p.is_dir()} - runs_before
    assert (year / failed / "rejected_evaluations.parquet").is_file()


def test_quarantine_inside_output_is_refused(prefect_server, tmp_path):
    from cro_awards.engine.errors import PublishError
    from flows.awards import cro_awards_flow

    with pytest.raises(PublishError, match="inside the output"):
        cro_awards_flow(config=str(SAMPLE_CONFIG), output=str(tmp_path / "out"), quarantine=str(tmp_path / "out" / "q"))


def _artifacts(**filters) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(**filters), sort=ArtifactSort.CREATED_DESC)


def _of_run(run_id: str) -> dict[str, str]:
    from prefect.client.schemas.filters import ArtifactFilterFlowRunId

    return {a.key: a.data for a in _artifacts(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))}


def _latest(key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilterKey

    return _artifacts(key=ArtifactFilterKey(any_=[key]))[0].data


def test_artifacts_show_a_draft_as_a_draft_and_the_years_awards_change_only_by_a_release(
    prefect_server, tmp_path, monkeypatch
):
    """Issue 22: a what-if's awards were written under `cro-awards-<year>` as the awards, and its validation
    artifact said "Published". A draft's artifacts are titled DRAFT under draft keys, with its run id; the
    year's awards artifact changes only on a release (run --release, the release flow), which also emits the
    event `cro-awards.release`."""
    import tasks.awards
    from flows.awards import cro_awards_flow
    from flows.release import release_flow

    events: list[dict] = []
    monkeypatch.setattr(tasks.awards, "emit_event", lambda **event: events.append(event))
    folders = {"output": str(tmp_path / "out"), "quarantine": str(tmp_path / "q")}
    official = cro_awards_flow(config=str(SAMPLE_CONFIG), **folders, release=True)
    what_if = cro_awards_flow(config=str(SAMPLE_CONFIG), **folders, champion_sd_multiplier=0.5)

    released_run = _of_run(official.run_id)
    assert set(released_run) == {"cro-awards-2024", "cro-awards-2024-awards", "cro-awards-2024-validation",
                                 "cro-awards-2024-diff"}  # fmt: skip
    assert "released" in released_run["cro-awards-2024"].splitlines()[0]
    assert official.run_id in released_run["cro-awards-2024"]
    assert "- Released: " in released_run["cro-awards-2024-validation"]

    draft = _of_run(what_if.run_id)
    assert set(draft) == {"cro-awards-2024-draft", "cro-awards-2024-draft-awards", "cro-awards-2024-draft-validation",
                          "cro-awards-2024-draft-diff"}  # fmt: skip
    assert draft["cro-awards-2024-draft"].startswith("# DRAFT\\, not released")
    assert what_if.run_id in draft["cro-awards-2024-draft"]
    validation = draft["cro-awards-2024-draft-validation"]
    assert "Published" not in validation and "not released" in validation and "- Draft: " in validation
    assert what_if.run_id in validation
    assert official.run_id in _latest("cro-awards-2024"), "the year's awards are still the release's"
    assert [e["event"] for e in events] == ["cro-awards.release"]

    done = release_flow(survey_year=2024, run_id=what_if.run_id, released_by="editor", **folders)
    assert done["status"] == "released"
    year = _latest("cro-awards-2024")
    assert what_if.run_id in year and "editor" in year and official.run_id in year, "who, and what it replaced"
    assert "Leaders" in year or "leader(s)" in year
    assert len(events) == 2
    event = events[-1]
    assert event["event"] == "cro-awards.release"
    assert event["resource"]["prefect.resource.id"] == "cro-awards.year.2024"
    assert event["resource"]["cro-awards.run-id"] == what_if.run_id
    assert event["payload"]["released_by"] == "editor"
    assert event["payload"]["previous_run_id"] == official.run_id


def test_the_flow_run_name_carries_the_run_id_and_says_draft_or_release(prefect_server, tmp_path):
    from prefect import get_client

    from flows.awards import cro_awards_flow

    folders = {"config": str(SAMPLE_CONFIG), "output": str(tmp_path / "out"), "quarantine": str(tmp_path / "q")}
    names = {}
    for release in (False, True):
        summary = cro_awards_flow(**folders, release=release)
        with get_client(sync_client=True) as client:
            names[release] = client.read_flow_run(summary.run_id).name
        assert Path(summary.published).name.endswith(summary.run_id)
        assert names[release] == f"awards-2024-{summary.run_id[:8]}-{'release' if release else 'draft'}"
