"""What a run records of its configuration (`cro_awards.manifest.effective_configuration`): the knobs as
the run used them, and the respondent screens only when the year configures one."""

from __future__ import annotations

from pathlib import Path

from cro_awards.config import load_config
from cro_awards.knobs import KNOBS
from cro_awards.manifest import EFFECTIVE_KEYS, effective_configuration
from helpers_exports import write_config

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
