"""What a run records about itself: its configuration (`effective_configuration`: the knobs as the run used
them, the respondent screens only when the year configures one), the typed `Manifest` (written as it
always was, read back whatever its age), the one comparison of two runs' knobs (`knob_changes`), and the
run's summary (`RunSummary`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cro_awards.engine.errors import PublishError
from cro_awards.reading.config import load_config
from cro_awards.reading.knobs import KNOBS
from cro_awards.record import manifest as manifests
from cro_awards.record.manifest import (
    EFFECTIVE_KEYS,
    KnobChange,
    Manifest,
    ManifestError,
    effective_configuration,
    knob_changes,
    read_manifest,
)
from helpers_exports import write_config
from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG

SAMPLE_EXPORT = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"

SCREENS_YAML = """\
screens:
  qualification: {column: decision_role, allowed: [final decision maker, shared decision maker]}
  straight_lining: {min_ratings: 8}
  speeding: {column: duration_seconds, min_seconds: 120}
"""


def test_a_year_without_screens_records_what_it_did_before_screens_existed(tmp_path: Path) -> None:
    effective = effective_configuration(load_config(write_config(tmp_path)))
    assert list(effective) == ["survey_close", "rating_scale", *KNOBS]
    assert effective["survey_close"] == "2024-02-29" and effective["rating_scale"] == {"min": 1, "max": 5}


def test_the_configured_screens_are_recorded_last_as_written(tmp_path: Path) -> None:
    effective = effective_configuration(load_config(write_config(tmp_path, extra=SCREENS_YAML)))
    assert list(effective) == list(EFFECTIVE_KEYS)
    assert effective["screens"] == {
        "qualification": {"column": "decision_role", "allowed": ["final decision maker", "shared decision maker"]},
        "straight_lining": {"min_ratings": 8},
        "speeding": {"column": "duration_seconds", "min_seconds": 120.0},
    }


def test_only_the_configured_screens_are_recorded_with_overrides_applied(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="screens:\n  straight_lining: {min_ratings: 2}\n")
    effective = effective_configuration(load_config(config, {"min_evaluations": 7}))
    assert effective["screens"] == {"straight_lining": {"min_ratings": 2}}
    assert effective["min_evaluations"] == 7


def test_an_empty_screens_block_is_no_screen(tmp_path: Path) -> None:
    effective = effective_configuration(load_config(write_config(tmp_path, extra="screens: {}\n")))
    assert "screens" not in effective


# --- the manifest as written and read ------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_run():
    from cro_awards.run.pipeline import run_pipeline

    loaded = load_config(SAMPLE_CONFIG)
    return run_pipeline(loaded, SAMPLE_EXPORT), loaded


def _as_before(result, loaded, run_id: str, published_at: str) -> dict:
    """The manifest as the untyped writer built it (the data contract's names and order), for comparison."""
    return {
        "run_id": run_id,
        "survey_year": loaded.survey.survey_year,
        "published_at": published_at,
        "export": {
            "file_name": result.export.path.name,
            "sha256": result.export.sha256,
            "hidden_rows": result.export.hidden_rows,
            "formulas_without_saved_value": dict(result.export.formulas_without_saved_value),
        },
        "config": {
            "file_name": loaded.path.name,
            "sha256": loaded.sha256,
            "overrides": loaded.overrides,
            "effective": effective_configuration(loaded),
        },
        "counts": {**result.counts, "quarantined_by_reason": result.quarantined_by_reason},
        "not_counted": result.not_counted,
        "versions": {"code": manifests.code_version(), **manifests.package_versions()},
    }


def test_the_sample_runs_manifest_is_written_as_the_contract_names_it(sample_run, tmp_path):
    result, loaded = sample_run
    written = manifests.manifest(result, loaded, "run-1", "2026-12-07T10:00:00.000000Z")
    before = _as_before(result, loaded, "run-1", "2026-12-07T10:00:00.000000Z")
    assert json.dumps(written.to_json(), indent=2) == json.dumps(before, indent=2), "keys, order and values"
    assert written.to_json() == written.model_dump(mode="json", exclude={"tables", "documents"})
    (tmp_path / "_manifest.json").write_text(json.dumps(written.to_json(), indent=2), encoding="utf-8")
    read = read_manifest(tmp_path)
    assert read == written and read.to_json() == before
    assert read.effective == before["config"]["effective"] and read.counts.read == result.counts["read"]
    published = read.with_(tables={"awards": {"file": "awards.parquet", "rows": 3}}, documents=["report.html"])
    assert list(published.to_json())[-2:] == ["tables", "documents"] and published.tables["awards"].rows == 3


OLD = {
    "run_id": "run-0",
    "survey_year": 2023,
    "published_at": "2023-03-01T00:00:00+00:00",
    "export": {"file_name": "export_2023.csv", "sha256": "a" * 64},
    "config": {"file_name": "2023.yaml", "sha256": "c", "overrides": {}, "effective": {"min_evaluations": 5}},
    "counts": {"read": 3, "accepted": 3, "quarantined": 0},
    "tables": {"awards": {"file": "awards.parquet", "rows": 1}},
    "documents": ["report.html"],
    "written_by": "an older version",
}
"""A manifest of before the newer keys (hidden rows, formulas, reasons, not_counted, versions), with a key
this version does not know."""


def test_an_old_manifest_reads_with_defaults_and_is_written_back_as_it_was(tmp_path):
    (tmp_path / "_manifest.json").write_text(json.dumps(OLD), encoding="utf-8")
    old = read_manifest(tmp_path)
    assert old.export.hidden_rows == 0 and old.export.formulas_without_saved_value == {}
    assert old.counts.quarantined_by_reason == {} and old.not_counted is None and old.versions == {}
    assert old.min_cell_size() == 3 and old.overrides == {} and old.effective == {"min_evaluations": 5}
    assert old.to_json() == OLD, "no key added, none lost"
    assert Manifest.of({}).effective is None and Manifest.of({}).to_json() == {}


def test_a_missing_or_unreadable_manifest_is_an_error_naming_it_or_the_empty_one(tmp_path):
    with pytest.raises(ManifestError, match="_manifest.json is missing"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path, or_empty=True) == Manifest()
    for text, why in (("{", "is unreadable"), ("[1]", "not a JSON object"), ('{"survey_year": "x"}', "survey_year")):
        (tmp_path / "_manifest.json").write_text(text, encoding="utf-8")
        with pytest.raises(PublishError, match=why):
            read_manifest(tmp_path)
        assert read_manifest(tmp_path, or_empty=True).run_id is None


# --- knob changes: one rule ---------------------------------------------------------------------


def _run(year: int | None, effective: dict | None) -> Manifest:
    return Manifest.of({"survey_year": year, "config": {"effective": effective}})


BEFORE = {"survey_close": "2023-02-28", "rating_scale": {"min": 1, "max": 5}, "min_evaluations": 8, "x": 1}
AFTER = {"survey_close": "2024-02-29", "rating_scale": {"min": 1, "max": 5}, "min_evaluations": 10, "y": 2}


def test_knob_changes_across_years_leave_the_close_date_aside():
    changes = knob_changes(_run(2023, BEFORE), _run(2024, AFTER))
    assert changes == [KnobChange("min_evaluations", 8, 10), KnobChange("x", 1, None), KnobChange("y", None, 2)]
    assert knob_changes(_run(2023, AFTER), _run(2024, AFTER)) == []


def test_within_a_year_a_moved_close_date_is_a_knob_change():
    changes = knob_changes(_run(2024, {**AFTER, "survey_close": "2024-02-01"}), _run(2024, AFTER))
    assert changes == [KnobChange("survey_close", "2024-02-01", "2024-02-29")]
    # a side whose year is not recorded: the close date is not compared
    assert knob_changes(_run(None, {"survey_close": "2024-02-01"}), _run(2024, {"survey_close": "x"})) == []


def test_knob_changes_follow_the_knobs_order_and_treat_a_missing_key_as_a_change():
    before = {"bootstrap_seed": 7, "champion_sd_multiplier": 1.0, "min_evaluations": 10, "zzz": 1, "screens": {}}
    after = {"award_rule": "shrunk", "champion_sd_multiplier": 1, "min_evaluations": 12, "aaa": 2, "screens": {}}
    assert [change.knob for change in knob_changes(_run(2024, before), _run(2024, after))] == [
        "min_evaluations",
        "award_rule",
        "bootstrap_seed",
        "aaa",
        "zzz",
    ], "1.0 and 1 are the same value"
    missing = knob_changes(_run(2024, None), _run(2024, {"min_evaluations": 10}))
    assert missing == [KnobChange("min_evaluations", None, 10)], "a run recording no configuration: None"


# --- the run's summary --------------------------------------------------------------------------


def test_the_run_summary_declares_released_and_diff_and_keeps_its_json(sample_run):
    result, loaded = sample_run
    summary = manifests.summary(
        result, loaded, "run-1", published=Path("/d"), output=Path("/o"), quarantine="/q", timings={"a": 1.0}
    )
    assert summary.released is False and summary.diff == ""
    assert list(summary.to_dict())[-2:] == ["released", "diff"] and summary.to_dict()["published"] == "/d"
    released = manifests.summary(
        result,
        loaded,
        "run-1",
        published=Path("/d"),
        output=Path("/o"),
        quarantine="/q",
        timings={},
        released=True,
        diff="no differences\n",
    )
    assert released.released and released.diff == "no differences\n"
    json.dumps(released.to_dict())  # JSON-ready
    with pytest.raises(AttributeError):
        released.run_id = "other"  # type: ignore[misc]
