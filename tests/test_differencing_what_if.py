"""The differencing guard against the attack it exists for, on real runs of the bundled 2024 sample.

A what-if with another segment cut-off (`big_pharma_min_rd_spend_musd` 999.5 instead of 1000) moves
one respondent (three evaluations at 999.5) from Small to Big Pharma. Released after the official
draft, the two would give that respondent's ratings by subtraction. So: the what-if's release is
refused (exit 9, naming the knob, never a value); with `accept_difference` it is released and the log
records the reason; rolling back to the official draft is not checked; rerunning the official
configuration drafts the same contributions and releases without a finding.

The drafts are written as the flow writes them (`columns.describe`, `publish.write_draft` with the
run's contributions), without Prefect.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cro_awards.engine.errors import DisclosureError
from cro_awards.publication import columns, publish, releases
from cro_awards.reading.config import load_config
from cro_awards.record import manifest as manifests
from cro_awards.run.pipeline import run_pipeline
from tests.conftest import SAMPLE_CONFIG

YEAR = 2024
NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


def draft(folders: dict[str, Path], run_id: str, minute: int, **overrides) -> Path:
    loaded = load_config(SAMPLE_CONFIG, overrides)
    result = run_pipeline(loaded, loaded.export_path(None))
    manifest = manifests.manifest(result, loaded, run_id, f"2026-12-07T10:{minute:02d}:00.000000Z")
    described = {
        name: columns.describe(name, table, survey_year=YEAR, run_id=run_id, configuration=manifest.effective)
        for name, table in result.tables.items()
    }
    return publish.write_draft(
        described, manifest, folders["store"], {"report.html": "<p>report</p>"}, result.contributions,
        output=folders["output"],
    )  # fmt: skip


def release(folders: dict[str, Path], run_id: str, **options) -> dict:
    return releases.release(
        folders["output"], folders["quarantine"], YEAR, run_id, store=folders["store"], now=NOW, **options
    )


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("output", "quarantine", "store")}
    found["output"].mkdir()
    return found


def test_a_segment_cut_what_if_moving_one_respondent_is_refused_then_accepted_on_the_record(folders):
    draft(folders, "official", 1)
    release(folders, "official")
    draft(folders, "what-if", 2, big_pharma_min_rd_spend_musd=999.5)

    with pytest.raises(DisclosureError) as refused:
        release(folders, "what-if")
    message = str(refused.value)
    assert refused.value.exit_code == 9
    assert "big_pharma_min_rd_spend_musd" in message, "the knob behind the difference is named"
    assert "999.5" in message and "1000" in message, "the knob's two settings (a setting, not a value)"
    assert "differencing guard" in message and "--accept-difference" in message
    assert releases.current_release(folders["output"], YEAR).name == "official", "nothing released"

    done = release(folders, "what-if", accept_difference="the cut-off the sponsor board asked for")
    assert releases.current_release(folders["output"], YEAR).name == "what-if"
    entry = releases.release_log(folders["store"], YEAR)[-1]
    assert (entry["run_id"], entry["accepted_difference"]) == ("what-if", "the cut-off the sponsor board asked for")
    assert done["difference"], "the findings are logged with the acceptance"

    rollback = release(folders, "official")  # released before: exposes nothing new, never checked
    assert rollback["checked"] == [] and releases.current_release(folders["output"], YEAR).name == "official"


def test_a_rerun_of_the_official_configuration_releases_without_a_finding(folders):
    draft(folders, "official", 1)
    release(folders, "official")
    draft(folders, "rerun", 2)
    done = release(folders, "rerun")
    assert done["difference"] == [] and "official" in done["checked"]
