"""Onboarding a survey year (`cro_awards.reading.new_year`, `cro_awards.run.dry_run`) and the 2023 survey year
(`surveys/2023.yaml`).

- `new_year_text` on literal YAML: survey_close moved by whole years (29 February -> 28 February in a
  year without one), comments, quoting and line ends kept, sample_export commented out, the CROs' ids
  written out (flow and block entries), result valid.
- `new_year`: writes the file, refuses an existing target and a missing source.
- `check_export`: a dry run without Prefect that counts, gives example source rows, fails on the
  rejected share, writes nothing, never shows a field's value, and suggests the alias for a CRO
  spelling within a typo of a configured one (`edit_distance`, `near_misses`).
- 2023: six categories, headers mapped only through `columns`, and the sample scores phase_iv.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cro_awards.engine.errors import ConfigError, ExportError
from cro_awards.reading.config import CONTRACT_COLUMNS, SurveyConfig, load_config
from cro_awards.reading.new_year import new_year, new_year_text
from cro_awards.run.dry_run import (
    CheckReport,
    ScreenCount,
    check_export,
    edit_distance,
    near_miss_limit,
    near_misses,
    screen_counts,
    screened_alone,
)
from helpers_exports import CONFIG_YAML, HEADER, row, write_config, write_csv

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SURVEYS = PROJECT_ROOT / "surveys"
CONFIG_2023 = SURVEYS / "2023.yaml"
CONFIG_2024 = SURVEYS / "2024.yaml"
EXPORT_2023 = PROJECT_ROOT / "data" / "sample" / "export_2023.csv"

SNIPPET = """\
# The 2024 survey.
survey_year: 2024   # the award year
survey_close: 2024-02-29
min_evaluations: 3
min_cell_size: 3
sample_export: ../data/sample/export_2024.csv  # bundled
cros:
  - {name: Northwind Clinical, aliases: [Northwind]}
  - {name: Aldercrest Research, aliases: [Aldercrest]}
attributes:
  quality: Quality   # survey_year: 1999 in a comment is not a key
  speed: Speed
categories:
  delivery: [quality, speed]
"""


def _valid(text: str) -> SurveyConfig:
    return SurveyConfig.model_validate(yaml.safe_load(text))


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """("-", line) for every line removed, then ("+", line) for every line added, each in file order."""
    import difflib

    diff = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    return [(line[0], line[2:]) for line in diff if line[0] == "-"] + [
        (line[0], line[2:]) for line in diff if line[0] == "+"
    ]


# --- new_year_text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "close"),
    [(2025, "2025-02-28"), (2026, "2026-02-28"), (2028, "2028-02-29"), (2023, "2023-02-28"), (2020, "2020-02-29")],
)
def test_leap_day_moves_to_28_february_in_a_common_year(year: int, close: str) -> None:
    text = new_year_text(SNIPPET, year)
    assert f"survey_year: {year}   # the award year\n" in text
    assert f"\nsurvey_close: {close}\n" in text
    survey = _valid(text)
    assert survey.survey_year == year
    assert survey.survey_close == dt.date.fromisoformat(close)


@pytest.mark.parametrize(("year", "close"), [(2025, "2023-12-15"), (2027, "2025-12-15"), (2022, "2020-12-15")])
def test_ordinary_close_moves_by_the_same_number_of_years(year: int, close: str) -> None:
    # A survey year may close in the calendar year before: the date moves by (year - survey_year).
    snippet = SNIPPET.replace("survey_close: 2024-02-29", "survey_close: 2022-12-15")
    assert _valid(new_year_text(snippet, year)).survey_close == dt.date.fromisoformat(close)


def test_comments_formatting_and_everything_else_are_kept() -> None:
    text = new_year_text(SNIPPET, 2025)
    assert _changed_lines(SNIPPET, text) == [
        ("-", "survey_year: 2024   # the award year"),
        ("-", "survey_close: 2024-02-29"),
        ("-", "sample_export: ../data/sample/export_2024.csv  # bundled"),
        ("-", "  - {name: Northwind Clinical, aliases: [Northwind]}"),
        ("-", "  - {name: Aldercrest Research, aliases: [Aldercrest]}"),
        ("+", "survey_year: 2025   # the award year"),
        ("+", "survey_close: 2025-02-28"),
        ("+", "# No bundled sample export for 2025 yet (give --export); 2024's was:"),
        ("+", "# sample_export: ../data/sample/export_2024.csv  # bundled"),
        ("+", "  - {id: northwind_clinical, name: Northwind Clinical, aliases: [Northwind]}"),
        ("+", "  - {id: aldercrest_research, name: Aldercrest Research, aliases: [Aldercrest]}"),
    ]
    assert text.startswith("# The 2024 survey.\n")  # comments are kept, even stale ones
    assert "  quality: Quality   # survey_year: 1999 in a comment is not a key\n" in text
    before, after = yaml.safe_load(SNIPPET), yaml.safe_load(text)
    for key in ("survey_year", "survey_close", "sample_export"):
        before.pop(key), after.pop(key, None)
    assert [cro.pop("id") for cro in after["cros"]] == ["northwind_clinical", "aldercrest_research"]
    assert after == before
    assert list(yaml.safe_load(text)) == [
        "survey_year",
        "survey_close",
        "min_evaluations",
        "min_cell_size",
        "cros",
        "attributes",
        "categories",
    ]


SCREENS_BLOCK = """\
screens:   # who may rate, and answers that are not answers
  qualification:
    column: decision_role
    allowed: [final decision maker, "shared decision maker"]   # trimmed, any case
  straight_lining: {min_ratings: 8}
  speeding:
    column: duration_seconds
    min_seconds: 120
"""


def test_the_screens_block_is_carried_as_written() -> None:
    previous = SNIPPET + SCREENS_BLOCK
    text = new_year_text(previous, 2025)
    assert SCREENS_BLOCK in text
    assert [line for sign, line in _changed_lines(previous, text) if "screen" in line or "decision" in line] == []
    assert _valid(text).screens == _valid(previous).screens and _valid(text).screens.configured


def test_quoting_line_ends_and_byte_order_mark_are_kept() -> None:
    snippet = SNIPPET.replace("survey_close: 2024-02-29", "'survey_close' : \"2024-02-29\"  # closes").replace(
        "\n", "\r\n"
    )
    text = new_year_text("\ufeff" + snippet, 2025)
    assert text.startswith("\ufeff# The 2024 survey.\r\n")
    assert "\r\n'survey_close' : \"2025-02-28\"  # closes\r\n" in text
    assert "\n" not in text.replace("\r\n", "")
    assert _valid(text.removeprefix("\ufeff")).survey_close == dt.date(2025, 2, 28)


def test_sample_export_is_commented_out_and_absent_one_needs_no_note() -> None:
    text = new_year_text(SNIPPET, 2025)
    assert "sample_export" not in yaml.safe_load(text)
    assert _valid(text).sample_export is None
    without = "".join(line for line in SNIPPET.splitlines(keepends=True) if not line.startswith("sample_export"))
    without = without.replace("{name: ", "{id: x, name: ", 1).replace("{name: ", "{id: y, name: ", 1)
    text = new_year_text(without, 2025)
    assert "sample_export" not in text
    assert _changed_lines(without, text) == [  # ids given: nothing to write
        ("-", "survey_year: 2024   # the award year"),
        ("-", "survey_close: 2024-02-29"),
        ("+", "survey_year: 2025   # the award year"),
        ("+", "survey_close: 2025-02-28"),
    ]


def test_last_line_sample_export_without_line_end() -> None:
    snippet = SNIPPET.replace("sample_export: ../data/sample/export_2024.csv  # bundled\n", "") + "sample_export: s.csv"
    text = new_year_text(snippet, 2025)
    assert text.endswith(
        "# No bundled sample export for 2025 yet (give --export); 2024's was:\n# sample_export: s.csv\n"
    )
    assert _valid(text).sample_export is None


BLOCK_CROS = """\
cros:
  - name: Northwind Clinical   # the first
    aliases: [Northwind]
  # a comment between entries
  -   name: Café Labs, Inc.
      aliases:
        - Cafe Labs
  - {id: acme_apex, name: Acme Apex, formerly: [acme, apex]}
  - name: "On"
attributes:
"""


def test_ids_are_written_into_block_entries_too_and_formerly_is_carried() -> None:
    snippet = SNIPPET.replace(SNIPPET[SNIPPET.index("cros:") : SNIPPET.index("attributes:\n") + 12], BLOCK_CROS)
    text = new_year_text(snippet.replace("\n", "\r\n"), 2025)
    assert "\n" not in text.replace("\r\n", "")
    assert text.replace("\r\n", "\n")[text.replace("\r\n", "\n").index("cros:") :].startswith(
        "cros:\n"
        "  - id: northwind_clinical\n"
        "    name: Northwind Clinical   # the first\n"
        "    aliases: [Northwind]\n"
        "  # a comment between entries\n"
        "  -   id: cafe_labs_inc\n"
        "      name: Café Labs, Inc.\n"
        "      aliases:\n"
        "        - Cafe Labs\n"
        "  - {id: acme_apex, name: Acme Apex, formerly: [acme, apex]}\n"
        '  - id: "on"\n'  # YAML would read a plain `on` as true
        '    name: "On"\n'
        "attributes:\n"
    )
    survey = _valid(text.replace("\r\n", "\n"))
    assert [(cro.id, cro.formerly) for cro in survey.cros] == [
        ("northwind_clinical", ()),
        ("cafe_labs_inc", ()),
        ("acme_apex", ("acme", "apex")),
        ("on", ()),
    ]


@pytest.mark.parametrize(
    "cros",
    [
        "cros: [{name: Northwind Clinical}, {name: Aldercrest Research}]\n",  # a flow list
        "cros:\n  - {name: Northwind Clinical}\n  -\n    name: Aldercrest Research\n",  # `-` alone on its line
    ],
    ids=["flow-list", "dash-alone-on-its-line"],
)
def test_ids_in_a_layout_that_cannot_be_edited_are_refused_with_what_to_do(cros: str) -> None:
    start, end = SNIPPET.index("cros:"), SNIPPET.index("attributes:")
    _valid(SNIPPET[:start] + cros + SNIPPET[end:])  # a valid year, only not editable in place
    with pytest.raises(ConfigError, match="^the previous year's YAML") as raised:
        new_year_text(SNIPPET[:start] + cros + SNIPPET[end:], 2025)
    assert "add `id:` to each CRO" in str(raised.value)
    assert "northwind_clinical, aldercrest_research" in str(raised.value)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (SNIPPET.replace("cros:", "crows:"), "crows"),  # the previous file must be valid itself
        (SNIPPET.replace("survey_close: 2024-02-29", "survey_close:\n  2024-02-29"), "survey_close"),
        (SNIPPET.replace("survey_year: 2024   # the award year", "survey_year: !!int 2024"), "survey_year"),
        (
            "{survey_year: 2024, survey_close: 2024-02-29, cros: [{name: A}], attributes: {q: Q}, "
            "categories: {c: [q]}}",
            "survey_year",
        ),
        ("- not a mapping\n", "mapping"),
        ("survey_year: [\n", "not valid YAML"),
    ],
)
def test_files_that_cannot_be_edited_line_by_line_are_refused(snippet: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^the previous year's YAML") as raised:
        new_year_text(snippet, 2025)
    assert message in str(raised.value)


# --- new_year -------------------------------------------------------------------------------------------


def test_new_year_writes_the_file_and_lists_review_items(tmp_path: Path) -> None:
    source = tmp_path / "2024.yaml"
    source.write_bytes(CONFIG_2024.read_bytes())
    path, items = new_year(tmp_path, 2025, 2024)
    assert path == tmp_path / "2025.yaml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024.yaml", "2025.yaml"]  # no temporary file left
    loaded = load_config(path)
    assert (loaded.survey.survey_year, loaded.survey.survey_close) == (2025, dt.date(2025, 2, 28))
    assert loaded.survey.sample_export is None
    previous = load_config(source).survey
    assert loaded.survey.cros == previous.cros and loaded.survey.categories == previous.categories
    assert len(_changed_lines(source.read_text(), path.read_text())) == 7  # 2 keys changed, sample_export + note
    text = "\n".join(items)
    assert "survey_close is now 2025-02-28 (was 2024-02-29" in text
    assert "42 CROs carried over" in text
    assert "against the 2025 questionnaire" in text
    assert "`columns`" in text
    assert "comments still mention 2024 (line 1)" in text
    assert "CRO id(s) written out" not in text  # 2024 writes its ids: carried as they are
    assert "screens" not in text  # 2024 configures none: nothing to review
    assert [cro.id for cro in loaded.survey.cros] == [cro.id for cro in previous.cros]
    assert items[-1] == f"drop the export in and run `cro-awards check --config {path} --export <file>`"


def test_new_year_from_a_year_without_ids_writes_them_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "2024.yaml").write_text(SNIPPET, encoding="utf-8")
    path, items = new_year(tmp_path, 2025, 2024)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [cro["id"] for cro in raw["cros"]] == ["northwind_clinical", "aldercrest_research"]
    assert any(item.startswith("2 CRO id(s) written out, as 2024's names derive them") for item in items)
    # The next year carries them as written: nothing more to write.
    _, items = new_year(tmp_path, 2026, 2025)
    assert not any("CRO id(s) written out" in item for item in items)


def test_new_year_names_the_screens_it_carried_and_what_to_check(tmp_path: Path) -> None:
    (tmp_path / "2024.yaml").write_text(SNIPPET + SCREENS_BLOCK, encoding="utf-8")
    path, items = new_year(tmp_path, 2025, 2024)
    assert load_config(path).survey.screens == load_config(tmp_path / "2024.yaml").survey.screens
    [item] = [item for item in items if "screens" in item]
    assert item.startswith(
        "respondent screens carried over from 2024: qualification (decision_role in: final decision maker, "
        "shared decision maker); straight_lining (min_ratings 8); speeding (duration_seconds below 120 s). "
        "Check the thresholds and that the 2025 questionnaire words the qualifying roles the same way "
        "(`screens.qualification.allowed`) and that min_seconds still suits the length of the 2025 questionnaire; "
        "the export must have the column(s) decision_role, duration_seconds"
    )
    only_straight_lining = tmp_path / "one_screen"
    only_straight_lining.mkdir()
    (only_straight_lining / "2024.yaml").write_text(
        SNIPPET + "screens:\n  straight_lining: {min_ratings: 5}\n", encoding="utf-8"
    )
    _, items = new_year(only_straight_lining, 2025, 2024)
    [item] = [item for item in items if "screens" in item]
    assert "straight_lining (min_ratings 5). Check the thresholds;" in item and "column(s)" not in item


def test_new_year_refuses_an_existing_target(tmp_path: Path) -> None:
    (tmp_path / "2024.yaml").write_bytes(CONFIG_2024.read_bytes())
    (tmp_path / "2025.yaml").write_text("# mine\n")
    with pytest.raises(ConfigError, match=r"2025\.yaml: already exists"):
        new_year(tmp_path, 2025, 2024)
    assert (tmp_path / "2025.yaml").read_text() == "# mine\n"
    with pytest.raises(ConfigError, match=r"2024\.yaml: already exists"):
        new_year(tmp_path, 2024, 2024)


def test_new_year_refuses_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"2023\.yaml: no such survey configuration to start 2025\.yaml"):
        new_year(tmp_path, 2025, 2023)
    assert list(tmp_path.iterdir()) == []


def test_new_year_refuses_a_source_of_another_year(tmp_path: Path) -> None:
    (tmp_path / "2024.yaml").write_text(SNIPPET.replace("survey_year: 2024", "survey_year: 2022"))
    with pytest.raises(ConfigError, match=r"2024\.yaml: its survey_year is 2022, not 2024"):
        new_year(tmp_path, 2025, 2024)
    assert not (tmp_path / "2025.yaml").exists()


# --- check_export -----------------------------------------------------------------------------------------

SECRET = "SECRET-RESPONDENT-"


def _tiny_export(folder: Path) -> Path:
    """20 rows: rows 3, 7 and 8 are bad (unknown CRO; blank spend; duplicate of each other), the rest good."""
    rows = [
        row(respondent_id=f"{SECRET}{n:02d}", cro=["Northwind", "Aldercrest", "Bluefen"][n % 3]) for n in range(1, 21)
    ]
    rows[2] = {**rows[2], "cro": "Nobody Research"}
    rows[6] = {**rows[6], "rd_spend_musd": "", "respondent_id": f"{SECRET}DUP", "cro": "Bluefen"}
    rows[7] = {**rows[7], "respondent_id": f"{SECRET}DUP", "cro": " bluefen biometrics "}
    return write_csv(folder / "export.csv", rows)


def test_check_export_counts_reasons_and_source_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything written relative to the working folder would show up too
    config = write_config(tmp_path)
    export = _tiny_export(tmp_path)
    report = check_export(config, export)
    assert isinstance(report, CheckReport)
    assert (report.read, report.accepted, report.quarantined) == (20, 17, 3)
    assert report.quarantined_by_reason == {"invalid_rd_spend": 1, "unknown_cro": 1, "duplicate_evaluation": 2}
    assert list(report.quarantined_by_reason) == ["invalid_rd_spend", "unknown_cro", "duplicate_evaluation"]
    assert report.examples == {"invalid_rd_spend": [7], "unknown_cro": [3], "duplicate_evaluation": [7, 8]}
    assert report.passed and report.survey_year == 2024 and report.max_rejected_share == 0.2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["export.csv", "survey.yaml"]
    rendered = report.render()
    assert "PASSED" in rendered and "quarantined 3" in rendered and "rows 7, 8" in rendered
    assert report.screens == () and "Respondent screens: not configured in survey.yaml" in rendered
    assert SECRET not in rendered and SECRET not in repr(report)
    assert "bluefen" not in rendered.lower()
    assert "'Nobody Research'       1 row(s)" in rendered, "every CRO spelling matching no CRO, with its rows"


def test_check_shows_what_a_run_would_count_nowhere() -> None:
    """Before a run, `check` shows per segment the cells rated by fewer than min_cell_size respondents and
    their ratings, as the independent reference finds them on the bundled sample."""
    from tests.conftest import SAMPLE_CONFIG
    from tests.reference import thin_cells

    report = check_export(SAMPLE_CONFIG)
    config = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    thin = thin_cells(config, (SAMPLE_CONFIG.parent / config["sample_export"]).resolve())
    expected = {
        segment: {
            "cells": sum(1 for cell in thin if cell[0] == segment),
            "ratings": sum(len(rows) for cell, rows in thin.items() if cell[0] == segment),
        }
        for segment in ("big_pharma", "small_pharma")
    }
    assert (
        report.not_counted
        == expected
        == {
            "big_pharma": {"cells": 102, "ratings": 160},
            "small_pharma": {"cells": 76, "ratings": 132},
        }
    )
    assert (
        "Not counted (a CRO's attribute rated by fewer than min_cell_size = 3 respondents of a segment counts "
        "nowhere): Big Pharma 102 cell(s), 160 rating(s); Small Pharma 76 cell(s), 132 rating(s)."
    ) in report.render()


def test_check_export_fails_when_the_rejected_share_is_exceeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, extra="max_rejected_share: 0.1\n")
    export = _tiny_export(tmp_path)
    report = check_export(config, export)  # 3 of 20 = 15% > 10%
    assert not report.passed and report.quarantined == 3
    rendered = report.render()
    assert "FAILED" in rendered and "A run would fail" in rendered and SECRET not in rendered
    assert check_export(config, export, overrides={"max_rejected_share": 0.15}).passed  # 15% is within 15%
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["export.csv", "survey.yaml"]


def test_check_export_examples_are_the_first_five_rows(tmp_path: Path) -> None:
    rows = [row(respondent_id=f"R{n}", rd_spend_musd="-1" if n % 2 else "1200") for n in range(1, 31)]
    report = check_export(write_config(tmp_path), write_csv(tmp_path / "e.csv", rows))
    assert report.quarantined_by_reason == {"invalid_rd_spend": 15}
    assert report.examples == {"invalid_rd_spend": [1, 3, 5, 7, 9]}
    assert not report.passed
    assert "rows 1, 3, 5, 7, 9, ..." in report.render()


# --- what each respondent screen removes ----------------------------------------------------------------


def _screens(**screens):
    from cro_awards.reading.config import Screens

    return Screens.model_validate(screens)


QUALIFICATION = {"column": "decision_role", "allowed": ["final decision maker"]}
SPEEDING = {"column": "duration_seconds", "min_seconds": 90}


def test_screen_counts_per_screen_with_rows_alone_and_respondents() -> None:
    """Rows 1-3: respondent A, not qualified (row 2 also speeding, row 3 also unknown_cro); rows 4-5:
    respondent B speeding; row 6: no respondent id, speeding; row 7: invalid duration alone; row 8:
    straight-lining and invalid_rating; row 9 straight-lining alone."""
    rows_by_reason = {
        "missing_respondent_id": [6],
        "unknown_cro": [3],
        "invalid_rating": [8],
        "not_qualified": [1, 2, 3],
        "invalid_duration": [7],
        "speeding": [2, 4, 5, 6],
        "straight_lining": [8, 9],
    }
    respondents = {1: "A", 2: "A", 3: "A", 4: "B", 5: "B", 6: None, 7: "C", 8: "D", 9: "D"}
    screens = _screens(qualification=QUALIFICATION, straight_lining={"min_ratings": 3}, speeding=SPEEDING)
    qualification, straight_lining, speeding = screen_counts(screens, rows_by_reason, respondents)
    assert qualification == ScreenCount(
        "qualification", "decision_role in: final decision maker", {"not_qualified": 3}, 3, 1, respondents=1
    )
    assert straight_lining == ScreenCount(
        "straight_lining", "at least 3 valid ratings, all equal", {"straight_lining": 2}, 2, 1, respondents=None
    )
    assert speeding == ScreenCount(
        "speeding",
        "duration_seconds below 90 seconds",
        {"invalid_duration": 1, "speeding": 4},
        5,
        3,  # rows 4, 5 and 7; row 2 is also not_qualified, row 6 has no respondent id
        respondents=2,  # A and B; row 6, without an id, is judged alone and counted in rows only
    )
    assert screened_alone(screens, rows_by_reason) == 6  # rows 1, 2, 4, 5, 7, 9


def test_screen_counts_only_for_configured_screens_and_zero_when_nothing_is_screened() -> None:
    assert screen_counts(_screens(), {"unknown_cro": [1]}, {1: "A"}) == ()
    assert screened_alone(_screens(), {"unknown_cro": [1]}) == 0
    [speeding] = screen_counts(_screens(speeding=SPEEDING), {"unknown_cro": [1]}, {1: "A"})
    assert (speeding.rows_by_reason, speeding.rows, speeding.rows_alone, speeding.respondents) == (
        {"invalid_duration": 0, "speeding": 0},
        0,
        0,
        0,
    )


def test_check_export_counts_what_each_screen_removes_from_the_runs_own_validation(tmp_path: Path) -> None:
    """Respondent A: one role not allowed, so all three rows (one also unknown_cro); B: one row too fast,
    so both; C: a malformed duration; D: three equal ratings; E: exactly 120 s and "shared"; F: two
    equal ratings only (below min_ratings)."""
    final, header = "final decision maker", (*HEADER, "decision_role", "duration_seconds")

    def screened(respondent: str, role: str = final, seconds: str = "300", **fields: str) -> dict:
        return row(respondent_id=f"{SECRET}{respondent}", decision_role=role, duration_seconds=seconds, **fields)

    rows = [
        screened("A", "Analyst"),
        screened("A", cro="Aldercrest"),
        screened("A", " Final Decision Maker ", cro="Nobody Research"),
        screened("B", seconds="45"),
        screened("B", cro="Aldercrest"),
        screened("C", seconds="3 min"),
        screened("D", quality="4", speed="4", cost="4"),
        screened("E", "shared decision maker", seconds="120"),
        screened("F", seconds="200.5", quality="4", speed="4", cost=""),
    ]
    extra = SCREENS_BLOCK.replace("min_ratings: 8", "min_ratings: 3") + "max_rejected_share: 1\n"
    report = check_export(write_config(tmp_path, extra=extra), write_csv(tmp_path / "e.csv", rows, header=header))
    assert report.quarantined_by_reason == {
        "unknown_cro": 1,
        "not_qualified": 3,
        "invalid_duration": 1,
        "speeding": 2,
        "straight_lining": 1,
    }
    assert report.screens == (
        ScreenCount(
            "qualification",
            "decision_role in: final decision maker, shared decision maker",
            {"not_qualified": 3},
            3,
            2,
            respondents=1,
        ),
        ScreenCount("straight_lining", "at least 3 valid ratings, all equal", {"straight_lining": 1}, 1, 1),
        ScreenCount(
            "speeding",
            "duration_seconds below 120 seconds",
            {"invalid_duration": 1, "speeding": 2},
            3,
            3,
            respondents=1,
        ),
    )
    assert report.screened_alone == 6 and (report.read, report.quarantined) == (9, 7)
    rendered = report.render()
    assert "Together the screens remove 6 row(s) that no other reason would (66.7% of the rows read)." in rendered
    assert SECRET not in rendered and "Analyst" not in rendered and "3 min" not in rendered
    assert SECRET not in repr(report)


def test_check_report_renders_the_screens_or_says_there_are_none() -> None:
    base = dict(
        config_file="2025.yaml",
        export_file="export.csv",
        survey_year=2025,
        read=40,
        accepted=30,
        quarantined=10,
        quarantined_by_reason={"not_qualified": 6, "straight_lining": 4},
        examples={"not_qualified": [1, 2, 3, 4, 5], "straight_lining": [7, 8, 9, 10]},
        max_rejected_share=0.3,
        passed=True,
    )
    counts = (
        ScreenCount("qualification", "decision_role in: final decision maker", {"not_qualified": 6}, 6, 5, 2),
        ScreenCount("straight_lining", "at least 8 valid ratings, all equal", {"straight_lining": 4}, 4, 4),
    )
    rendered = CheckReport(**base, screens=counts, screened_alone=9).render()
    assert (
        "Respondent screens, the rows each removes (a row may have other reasons too):\n"
        "  qualification (decision_role in: final decision maker): 6 row(s) (not_qualified 6, 2 respondent(s)); "
        "5 for this screen alone\n"
        "  straight_lining (at least 8 valid ratings, all equal): 4 row(s) (straight_lining 4); "
        "4 for this screen alone\n"
        "  Together the screens remove 9 row(s) that no other reason would (22.5% of the rows read)."
    ) in rendered
    assert "Respondent screens: not configured in 2025.yaml" in CheckReport(**base).render()


# --- near-miss CRO spellings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "distance"),
    [
        ("northwind", "northwind", 0),
        ("northwnd", "northwind", 1),  # a letter left out
        ("nortwhind", "northwind", 1),  # two neighbours swapped: one edit, not two
        ("northwind", "northwind clinical", 9),
        ("kitten", "sitting", 3),
        ("", "ab", 2),
        ("ab", "", 2),
        ("ca", "abc", 3),  # optimal string alignment: a swapped pair is not edited again
    ],
)
def test_edit_distance(first: str, second: str, distance: int) -> None:
    assert edit_distance(first, second) == distance == edit_distance(second, first)


def test_near_miss_limit_grows_with_the_length() -> None:
    assert [near_miss_limit(n) for n in (1, 3, 4, 9, 10, 40)] == [0, 0, 1, 1, 2, 2]


def _survey(cros: list[dict]) -> SurveyConfig:
    config = yaml.safe_load(CONFIG_YAML)
    return SurveyConfig.model_validate({**config, "cros": cros} if cros else config)


def test_near_misses_group_spellings_by_key_and_suggest_the_alias() -> None:
    unknown = {
        "Northwnd": 2,
        "NORTHWND": 1,  # the same key as Northwnd: one near miss of 3 rows, shown as the more frequent
        "Nobody Research": 4,  # close to nothing
        "NWX": 3,  # one edit from NWC, but three letters: no suggestion
        "Bluefin": 1,
        "Aldercrest Reserch": 5,
    }
    found = near_misses(unknown, _survey([]))
    assert [(m.spelling, m.rows, m.cro_id, m.close_to, m.distance, m.aliases_line) for m in found] == [
        (
            "Aldercrest Reserch",
            5,
            "aldercrest_research",
            "Aldercrest Research",
            1,
            "aliases: [Aldercrest, Aldercrest Reserch]",
        ),
        ("Northwnd", 3, "northwind_clinical", "Northwind", 1, "aliases: [Northwind, NWC, Northwnd]"),
        ("Bluefin", 1, "bluefen_biometrics", "Bluefen", 1, "aliases: [Bluefen, Bluefin]"),
    ]
    assert found[0].cro_name == "Aldercrest Research" and found[0].also_close == ()


def test_a_near_miss_of_two_cros_names_both_and_the_alias_line_is_valid_yaml() -> None:
    survey = _survey([{"name": "Acme Labs", "aliases": ["Acme: Labs"]}, {"name": "Acme Labz"}])
    [miss] = near_misses({"Acme Lab": 1}, survey)
    assert (miss.cro_id, miss.also_close) == ("acme_labs", ("acme_labz",))  # ties in the ballot's order
    [miss] = near_misses({"Acme: Labs, Inc": 2}, _survey([{"name": "Acme: Labs, Inc."}, {"name": "Other"}]))
    assert miss.aliases_line == 'aliases: ["Acme: Labs, Inc"]'
    assert yaml.safe_load(miss.aliases_line) == {"aliases": ["Acme: Labs, Inc"]}


def test_check_export_suggests_the_alias_for_a_near_miss(tmp_path: Path) -> None:
    rows = [row(respondent_id=f"{SECRET}{n}", cro="Northwind") for n in range(1, 6)]
    rows += [row(respondent_id=f"{SECRET}X{n}", cro=spelling) for n, spelling in enumerate([" Northwnd", "northwnd"])]
    report = check_export(write_config(tmp_path), write_csv(tmp_path / "export.csv", rows))
    assert report.quarantined_by_reason == {"unknown_cro": 2}
    [miss] = report.near_misses
    assert (miss.spelling, miss.rows, miss.cro_id) == ("Northwnd", 2, "northwind_clinical")
    rendered = report.render()
    assert "add each as an alias in survey.yaml to keep its rows" in rendered
    assert (
        "'Northwnd' in 2 row(s) is 1 edit(s) from 'Northwind': CRO northwind_clinical ('Northwind Clinical'); "
        "in its entry write  aliases: [Northwind, NWC, Northwnd]"
    ) in rendered
    assert SECRET not in rendered and SECRET not in repr(report)


def test_check_export_agrees_with_the_planted_rows_of_a_synthetic_export(tmp_path: Path) -> None:
    from bench.synthetic import generate_export, planted_rows, write_export

    table = generate_export(yaml.safe_load(CONFIG_YAML), n_evaluations=300, seed=7)
    write_export(table, tmp_path / "synthetic.csv")
    report = check_export(write_config(tmp_path), tmp_path / "synthetic.csv")
    planted: dict[str, set[int]] = {}
    for item in planted_rows(table):
        for kind in item["kinds"]:
            planted.setdefault(kind, set()).add(item["row"])
    assert set(report.quarantined_by_reason) == set(planted)
    for code, rows in planted.items():
        if code != "duplicate_evaluation":  # every copy is quarantined, only the later one is planted
            assert report.quarantined_by_reason[code] == len(rows)
            assert report.examples[code] == sorted(rows)[:5]
    assert report.read == 300 and report.passed
    assert not any(value in report.render() for value in table.column("respondent_id").to_pylist() if value.strip())


def test_check_export_lets_configuration_and_file_errors_through(tmp_path: Path) -> None:
    export = _tiny_export(tmp_path)
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        check_export(write_config(tmp_path, extra="colour: blue\n", name="bad.yaml"), export)
    missing = write_csv(tmp_path / "missing.csv", [row()], header=[h for h in HEADER if h != "speed"])
    with pytest.raises(ExportError, match=r"missing\.csv: missing column\(s\) speed"):
        check_export(write_config(tmp_path), missing)
    with pytest.raises(ExportError, match="no such file"):
        check_export(write_config(tmp_path), tmp_path / "absent.csv")


def test_check_export_reports_hidden_rows_formulas_and_ignored_empty_columns(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(HEADER))
    for n in range(1, 7):
        cells = [f"{SECRET}{n}", 1200, ["Northwind", "Aldercrest", "Bluefen"][n % 3], "2023-06-01", 4, 3, 5]
        if n == 2:
            cells[5] = "=1+2"  # a formula without a saved value: read blank, counted
        sheet.append(cells)
    sheet.row_dimensions[3].hidden = True  # source rows 2 and 4: hidden, still scored
    sheet.row_dimensions[5].hidden = True
    export = tmp_path / "hidden.xlsx"
    workbook.save(export)
    report = check_export(write_config(tmp_path), export)
    assert (report.read, report.accepted, report.quarantined) == (6, 6, 0)
    assert report.hidden_rows == 2
    assert report.formulas_without_saved_value == {"speed": 1}
    rendered = report.render()
    assert (
        "Hidden rows: 2 row(s) of the first sheet are hidden in the spreadsheet; they are read and scored" in rendered
    )
    assert "Formulas: 1 cell(s) of column 'speed' hold formulas with no saved value and are read as blank" in rendered
    assert SECRET not in rendered and SECRET not in repr(report)

    csv_export = tmp_path / "trailing.csv"
    csv_export.write_text(
        "".join(line + ",,\n" for line in _tiny_export(tmp_path).read_text(encoding="utf-8").splitlines()),
        encoding="utf-8",
    )
    report = check_export(write_config(tmp_path), csv_export)
    assert report.empty_columns_ignored == 2 and report.hidden_rows == 0 and report.formulas_without_saved_value == {}
    assert "Columns: 2 trailing column(s) with no name and no value ignored" in report.render()


def test_onboarding_runs_without_prefect() -> None:
    code = (
        "import sys, cro_awards.reading.new_year, cro_awards.run.dry_run, cro_awards.reading.extract, cro_awards.method.transform, cro_awards.method.validate; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('prefect', 'flows')], 'prefect imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=120)


# --- the 2023 survey year ---------------------------------------------------------------------------------


def test_2023_yaml_has_six_categories_and_maps_every_column() -> None:
    survey = load_config(CONFIG_2023).survey
    previous = load_config(CONFIG_2024).survey
    assert survey.survey_year == 2023 and survey.survey_close == dt.date(2023, 2, 28)
    assert list(survey.categories) == [*previous.categories, "phase_iv"]
    assert set(survey.categories["phase_iv"]) == {
        "post_marketing_surveillance",
        "real_world_evidence_generation",
        "pharmacovigilance",
    }
    assert survey.cros == previous.cros and len(survey.cros) == 42
    assert survey.attributes["easy_to_work_with"] != previous.attributes["easy_to_work_with"]
    assert sorted(survey.columns.values()) == sorted([*CONTRACT_COLUMNS, *survey.attributes])
    assert not set(survey.columns) & {*CONTRACT_COLUMNS, *survey.attributes}  # every header differs
    assert survey.columns["Respondent ID"] == "respondent_id"
    assert load_config(CONFIG_2023).resolve(survey.sample_export) == EXPORT_2023.resolve()


def test_2023_sample_export_uses_the_platform_headers_and_is_reproducible(tmp_path: Path) -> None:
    import csv

    from bench.synthetic import generate_export, write_export

    with EXPORT_2023.open(encoding="utf-8", newline="") as stream:
        header = next(csv.reader(stream))
    survey = load_config(CONFIG_2023).survey
    assert header == [*survey.columns, "comments"]
    # The command in surveys/2023.yaml's comment, in process.
    config = yaml.safe_load(CONFIG_2023.read_text(encoding="utf-8"))
    write_export(generate_export(config, n_evaluations=1200, seed=2023), tmp_path / "export_2023.csv")
    assert (tmp_path / "export_2023.csv").read_bytes() == EXPORT_2023.read_bytes()
    assert "--evaluations 1200 --seed 2023 --out data/sample/export_2023.csv" in CONFIG_2023.read_text()


def test_2023_sample_scores_phase_iv_in_process() -> None:
    from cro_awards.run.pipeline import run_pipeline

    loaded = load_config(CONFIG_2023)
    result = run_pipeline(loaded, EXPORT_2023)
    assert result.export.renamed == {header: column for header, column in loaded.survey.columns.items()}
    tables, numbers = result.tables, result.counts
    assert numbers["read"] == 1200 and 0 < numbers["quarantined"] <= 0.05 * 1200
    composite = [r for r in tables["composite_scores"].to_pylist() if r["category"] == "phase_iv"]
    assert {r["segment"] for r in composite} == {"big_pharma", "small_pharma", "overall"}
    assert len({r["cro"] for r in composite}) >= 30
    assert {r["cro"] for r in composite} <= {cro.id for cro in loaded.survey.cros}, "cro is the id"
    assert {r["category"] for r in tables["composite_scores"].to_pylist()} == set(loaded.survey.categories)
    awards = [r for r in tables["awards"].to_pylist() if r["category"] == "phase_iv"]
    assert {(r["segment"], r["award"]) for r in awards} >= {("overall", "leader"), ("overall", "champion")}


def _with_extra_columns(folder: Path, names: list[str]) -> Path:
    lines = _tiny_export(folder).read_text(encoding="utf-8").splitlines()
    extra = folder / "extra.csv"
    header, *rest = lines
    extra.write_text(
        "\n".join([header + "," + ",".join(names), *(line + "," + ",".join("x" for _ in names) for line in rest)])
        + "\n",
        encoding="utf-8",
    )
    return extra


def test_check_names_the_ignored_columns(tmp_path: Path) -> None:
    report = check_export(write_config(tmp_path), _with_extra_columns(tmp_path, ["Notes"]))
    assert "Columns: 0 renamed through `columns`, 1 ignored (not in the contract): 'Notes'" in report.render()


def test_check_names_a_handful_of_ignored_columns_then_counts_the_rest(tmp_path: Path) -> None:
    names = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]
    report = check_export(write_config(tmp_path), _with_extra_columns(tmp_path, names))
    assert "7 ignored (not in the contract): 'a1', 'a2', 'a3', 'a4', 'a5' and 2 more" in report.render()
