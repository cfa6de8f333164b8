"""Tests for `bench.synthetic`: determinism, shape, validity of good rows, planted defects, writers.

The validity rules are re-stated here as small predicates, independent of the generator's internals.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from bench.synthetic import (
    DEFECT_KINDS,
    SCREEN_KINDS,
    generate_export,
    main,
    planted_rows,
    recency_window,
    write_export,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_PATH = PROJECT_ROOT / "surveys" / "2024.yaml"
SCREENS_CONFIG_PATH = PROJECT_ROOT / "surveys" / "2025.yaml"
WINDOW_START = dt.date(2022, 8, 29)
SURVEY_CLOSE = dt.date(2024, 2, 29)
N = 2000
WINDOWS = {2024: (WINDOW_START, SURVEY_CLOSE), 2025: (dt.date(2023, 8, 28), dt.date(2025, 2, 28))}
"""Survey year -> its recency window (18 months back from survey_close), worked out by hand."""

SPEND = re.compile(r"[0-9]+(\.[0-9]+)?")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
VALID_RATING = re.compile(r"\s*0*([1-5])(\.0*)?\s*")
MISSING = {"", "n/a", "na"}


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clean(config: dict) -> pa.Table:
    return generate_export(config, n_evaluations=N, seed=11, bad_rows=False)


@pytest.fixture(scope="module")
def dirty(config: dict) -> pa.Table:
    return generate_export(config, n_evaluations=N, seed=11, bad_rows=True)


def canonical_names(config: dict) -> dict[str, str]:
    names = {}
    for cro in config["cros"]:
        for spelling in (cro["name"], *cro.get("aliases", [])):
            names[spelling.strip().lower()] = cro["name"]
    return names


def rows_of(table: pa.Table) -> list[dict[str, str]]:
    return table.to_pylist()


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING


def row_defects(row: dict[str, str], config: dict, names: dict[str, str]) -> set[str]:
    """The defects of one row by the contract's rules, except duplicates (which need the other rows)."""
    defects = set()
    if not row["respondent_id"].strip():
        defects.add("missing_respondent_id")
    if not SPEND.fullmatch(row["rd_spend_musd"]):
        defects.add("invalid_rd_spend")
    if row["cro"].strip().lower() not in names:
        defects.add("unknown_cro")
    text = row["last_engaged"]
    try:
        day = dt.date.fromisoformat(text) if ISO_DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        defects.add("invalid_last_engaged")
    elif not WINDOWS[config["survey_year"]][0] <= day <= WINDOWS[config["survey_year"]][1]:
        defects.add("outside_recency_window")
    answers = [row[attribute] for attribute in config["attributes"]]
    if any(not is_missing(a) and not VALID_RATING.fullmatch(a) for a in answers):
        defects.add("invalid_rating")
    if all(is_missing(a) for a in answers):
        defects.add("no_ratings")
    return defects


DURATION = re.compile(r"[0-9]+(\.[0-9]+)?")


def screen_defects(row: dict[str, str], config: dict) -> set[str]:
    """The row's own screen failures by the spec (docs/contract.md, "Respondent screens"), before propagation."""
    screens = config.get("screens") or {}
    defects = set()
    if qualification := screens.get("qualification"):
        allowed = {value.strip().lower() for value in qualification["allowed"]}
        if row[qualification["column"]].strip().lower() not in allowed:
            defects.add("not_qualified")
    if speeding := screens.get("speeding"):
        text = row[speeding["column"]].strip()
        if not DURATION.fullmatch(text):
            defects.add("invalid_duration")
        elif float(text) < speeding["min_seconds"]:
            defects.add("speeding")
    if straight_lining := screens.get("straight_lining"):
        values = [m.group(1) for a in config["attributes"] if (m := VALID_RATING.fullmatch(row[a]))]
        if len(values) >= straight_lining["min_ratings"] and len(set(values)) == 1:
            defects.add("straight_lining")
    return defects


def all_defects(table: pa.Table, config: dict) -> dict[int, set[str]]:
    """Row number (1 = first data row) -> its defects, for the rows that have any; a respondent's
    not_qualified or speeding on one row is on all of their rows (rows without an id are judged alone)."""
    names = canonical_names(config)
    seen: set[tuple[str, str]] = set()
    found: dict[int, set[str]] = {}
    screened: dict[str, set[str]] = {}
    for number, row in enumerate(rows_of(table), start=1):
        defects = row_defects(row, config, names)
        if not defects:
            key = (row["respondent_id"].strip(), names[row["cro"].strip().lower()])
            if key in seen:
                defects.add("duplicate_evaluation")
            seen.add(key)
        defects |= screen_defects(row, config)
        if row["respondent_id"].strip():
            screened.setdefault(row["respondent_id"].strip(), set()).update(defects & {"not_qualified", "speeding"})
        found[number] = defects
    for number, row in enumerate(rows_of(table), start=1):
        if row["respondent_id"].strip():
            found[number] |= screened[row["respondent_id"].strip()]
    return {number: defects for number, defects in found.items() if defects}


def expected_columns(config: dict) -> list[str]:
    return ["respondent_id", "rd_spend_musd", "cro", "last_engaged", *config["attributes"], "comments"]


def test_recency_window(config: dict) -> None:
    assert recency_window(config) == (WINDOW_START, SURVEY_CLOSE)
    assert recency_window({**config, "survey_close": "2024-08-31", "recency_months": 18}) == (
        dt.date(2023, 2, 28),
        dt.date(2024, 8, 31),
    )


def test_same_seed_same_table_and_different_seed_differs(config: dict, dirty: pa.Table) -> None:
    again = generate_export(config, n_evaluations=N, seed=11, bad_rows=True)
    assert again.equals(dirty)
    assert again.schema.metadata == dirty.schema.metadata
    other = generate_export(config, n_evaluations=N, seed=12, bad_rows=True)
    assert not other.equals(dirty)


def test_shape_and_types(config: dict, clean: pa.Table, dirty: pa.Table) -> None:
    for table in (clean, dirty):
        assert table.column_names == expected_columns(config)
        assert table.num_rows == N
        assert all(field.type == pa.string() for field in table.schema)
        assert all(column.null_count == 0 for column in table.columns)


def test_columns_renaming_writes_export_headers(config: dict) -> None:
    renamed = {**config, "columns": {"Respondent ID": "respondent_id", "CRO name": "cro"}}
    table = generate_export(renamed, n_evaluations=200, seed=1, bad_rows=False)
    assert table.column_names[:4] == ["Respondent ID", "rd_spend_musd", "CRO name", "last_engaged"]


def test_clean_rows_are_all_valid(config: dict, clean: pa.Table) -> None:
    assert all_defects(clean, config) == {}
    assert all(item["kinds"] == [] for item in planted_rows(clean))


def test_clean_rows_look_like_a_survey(config: dict, clean: pa.Table) -> None:
    rows = rows_of(clean)
    names = canonical_names(config)
    per_respondent = Counter(row["respondent_id"] for row in rows)
    assert all(re.fullmatch(r"R[0-9]{6}", rid) for rid in per_respondent)
    assert 0.75 * N / 5 <= len(per_respondent) <= 1.25 * N / 5
    assert set(per_respondent.values()) <= set(range(1, 11))
    assert max(per_respondent.values()) == 10 and min(per_respondent.values()) == 1

    spend: dict[str, set[str]] = {}
    for row in rows:
        spend.setdefault(row["respondent_id"], set()).add(row["rd_spend_musd"])
    assert all(len(values) == 1 for values in spend.values())
    amounts = [float(next(iter(values))) for values in spend.values()]
    assert 0.25 <= sum(a >= 1000 for a in amounts) / len(amounts) <= 0.45
    assert max(amounts) <= 12000 and min(amounts) >= 1
    assert any("." in next(iter(values)) for values in spend.values())

    popularity = Counter(names[row["cro"].strip().lower()] for row in rows)
    assert len(popularity) == len(config["cros"])
    counts = sorted(popularity.values())
    assert counts[-1] >= 3 * counts[len(counts) // 2]
    assert any(row["cro"] != names[row["cro"].strip().lower()] for row in rows)

    regular = [a for a in config["attributes"] if "phase_1" not in a]
    phase_1 = [a for a in config["attributes"] if "phase_1" in a]
    missing_share = sum(is_missing(row[a]) for row in rows for a in regular) / (len(rows) * len(regular))
    assert 0.05 <= missing_share <= 0.11
    blank_share = sum(row[a] == "" for row in rows for a in phase_1) / (len(rows) * len(phase_1))
    assert 0.6 <= blank_share <= 0.9
    spellings = {row[a] for row in rows for a in regular if is_missing(row[a])}
    assert spellings == {"", "n/a", "N/A", "na"}
    assert {row[a] for row in rows for a in regular if not is_missing(row[a])} >= {"1", "2", "3", "4", "5"}

    days = {row["last_engaged"] for row in rows}
    assert WINDOW_START.isoformat() in days and SURVEY_CLOSE.isoformat() in days
    tricky = {row[a] for row in rows for a in config["attributes"]} - {"1", "2", "3", "4", "5"} - spellings
    assert {form for form in tricky if form.endswith(".0")} and {form for form in tricky if form.endswith(".")}
    assert {form for form in tricky if form.startswith(" ")} and {form for form in tricky if form.startswith("0")}

    comments = [row["comments"] for row in rows if row["comments"]]
    assert 0 < len(comments) < 0.1 * N
    assert any("," in c and '"' in c and "\n" in c for c in comments)


def test_bad_rows_of_every_kind_are_planted(config: dict, dirty: pa.Table) -> None:
    found = all_defects(dirty, config)
    kinds = Counter(kind for defects in found.values() for kind in defects)
    for kind in DEFECT_KINDS:
        assert kinds[kind] >= 1, kind
    assert {"unknown_cro", "invalid_rating"} in found.values()
    assert len(found) < 0.1 * N
    assert all(len(defects) <= 2 for defects in found.values())


def test_manifest_matches_the_defects(config: dict, dirty: pa.Table) -> None:
    found = all_defects(dirty, config)
    manifest = {item["row"]: set(item["kinds"]) for item in planted_rows(dirty) if item["kinds"]}
    assert manifest == found
    names = canonical_names(config)
    rows = rows_of(dirty)
    duplicates = [item for item in planted_rows(dirty) if item["kinds"] == ["duplicate_evaluation"]]
    assert len(duplicates) >= 2
    respelt = 0
    for item in duplicates:
        copy, original = rows[item["row"] - 1], rows[item["original_row"] - 1]
        assert original["respondent_id"] == copy["respondent_id"]
        assert names[original["cro"].strip().lower()] == names[copy["cro"].strip().lower()]
        assert any(original[a] != copy[a] for a in config["attributes"])
        respelt += original["cro"] != copy["cro"]
    assert respelt >= 1


def test_bad_rows_only_rewrite_planted_rows(dirty: pa.Table, clean: pa.Table) -> None:
    planted = {item["row"] for item in planted_rows(dirty) if item["kinds"]}
    differing = {
        number for number, (a, b) in enumerate(zip(rows_of(dirty), rows_of(clean), strict=False), start=1) if a != b
    }
    assert differing == planted


def test_too_few_rows_for_bad_rows_is_refused(config: dict) -> None:
    with pytest.raises(ValueError):
        generate_export(config, n_evaluations=199, seed=1)
    small = generate_export(config, n_evaluations=50, seed=1, bad_rows=False)
    assert small.num_rows == 50


def test_csv_round_trip(tmp_path: Path, dirty: pa.Table) -> None:
    path = tmp_path / "export.csv"
    write_export(dirty, path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8", newline="") as stream:
        read = list(csv.reader(stream))
    assert read[0] == dirty.column_names
    assert read[1:] == [list(row.values()) for row in rows_of(dirty)]
    assert any("\n" in value and '"' in value and "," in value for row in read[1:] for value in row)

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(dirty.column_names)
    writer.writerows(list(row.values()) for row in rows_of(dirty))
    assert raw.decode("utf-8") == expected.getvalue()
    assert b',"",' not in raw


def test_xlsx_round_trip(tmp_path: Path, config: dict) -> None:
    import openpyxl

    table = generate_export(config, n_evaluations=300, seed=5)
    path = tmp_path / "export.xlsx"
    write_export(table, path)
    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == table.column_names
    assert all(value is None or isinstance(value, str) for row in rows for value in row)
    assert [["" if v is None else v for v in row] for row in rows[1:]] == [list(r.values()) for r in rows_of(table)]


def test_parquet_round_trip(tmp_path: Path, dirty: pa.Table) -> None:
    path = tmp_path / "export.parquet"
    write_export(dirty, path)
    read = pq.read_table(path)
    assert read.equals(dirty)
    assert all(field.type == pa.string() for field in read.schema)


def test_unsupported_suffix(tmp_path: Path, dirty: pa.Table) -> None:
    with pytest.raises(ValueError):
        write_export(dirty, tmp_path / "export.json")


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "export.csv"
    args = ["--config", str(CONFIG_PATH), "--evaluations", "300", "--seed", "3", "--out", str(out)]
    assert main([*args, "--no-bad-rows"]) == 0
    assert "wrote 300 rows" in capsys.readouterr().out
    with out.open(encoding="utf-8", newline="") as stream:
        assert len(list(csv.reader(stream))) == 301


# --- the bundled samples -----------------------------------------------------------------------------

BUNDLED = {2023: (1200, 2023), 2024: (1500, 2024), 2025: (1500, 2025)}
"""Survey year -> (evaluations, seed) of its bundled sample, as the year's YAML (or this module's contract) says."""


@pytest.mark.parametrize("year", sorted(BUNDLED))
def test_bundled_samples_regenerate_byte_for_byte(tmp_path: Path, year: int) -> None:
    """The 2023 and 2024 samples are those made before the screens existed: a year without `screens:` draws
    exactly what it drew; 2025's is its YAML's command's output."""
    evaluations, seed = BUNDLED[year]
    config = yaml.safe_load((PROJECT_ROOT / "surveys" / f"{year}.yaml").read_text(encoding="utf-8"))
    write_export(generate_export(config, n_evaluations=evaluations, seed=seed), tmp_path / "export.csv")
    assert (tmp_path / "export.csv").read_bytes() == (
        PROJECT_ROOT / "data" / "sample" / f"export_{year}.csv"
    ).read_bytes()


def test_the_2025_command_is_documented_in_its_yaml() -> None:
    text = SCREENS_CONFIG_PATH.read_text(encoding="utf-8")
    assert "--config surveys/2025.yaml --evaluations 1500 --seed 2025 --out data/sample/export_2025.csv" in text


def test_screen_codes_are_not_planted_without_screens(dirty: pa.Table) -> None:
    assert not set(DEFECT_KINDS) & set(SCREEN_KINDS)
    assert not {kind for item in planted_rows(dirty) for kind in item["kinds"]} & set(SCREEN_KINDS)
    assert not {"decision_role", "duration_seconds"} & set(dirty.column_names)


def test_an_empty_screens_key_is_a_year_without_screens(config: dict, dirty: pa.Table) -> None:
    for empty in ({}, None, {"qualification": None, "straight_lining": None, "speeding": None}):
        again = generate_export({**config, "screens": empty}, n_evaluations=N, seed=11)
        assert again.equals(dirty) and again.schema.metadata == dirty.schema.metadata, empty


# --- the respondent screens (surveys/2025.yaml) ------------------------------------------------------


@pytest.fixture(scope="module")
def screens_config() -> dict:
    return yaml.safe_load(SCREENS_CONFIG_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def screens_clean(screens_config: dict) -> pa.Table:
    return generate_export(screens_config, n_evaluations=N, seed=11, bad_rows=False)


@pytest.fixture(scope="module")
def screens_dirty(screens_config: dict) -> pa.Table:
    return generate_export(screens_config, n_evaluations=N, seed=11, bad_rows=True)


def test_screen_columns_follow_last_engaged(screens_config: dict, screens_dirty: pa.Table) -> None:
    names = expected_columns(screens_config)
    assert screens_dirty.column_names == [*names[:4], "decision_role", "duration_seconds", *names[4:]]
    assert all(field.type == pa.string() for field in screens_dirty.schema)
    assert all(column.null_count == 0 for column in screens_dirty.columns)
    only_speeding = {**screens_config, "screens": {"speeding": screens_config["screens"]["speeding"]}}
    table = generate_export(only_speeding, n_evaluations=200, seed=1, bad_rows=False)
    assert table.column_names[4] == "duration_seconds" and "decision_role" not in table.column_names


def test_screen_columns_are_written_with_the_exports_headers(screens_config: dict) -> None:
    renamed = {
        **screens_config,
        "columns": {"Q0. Your role": "decision_role", "Duration (in seconds)": "duration_seconds"},
    }
    table = generate_export(renamed, n_evaluations=200, seed=1, bad_rows=False)
    assert table.column_names[4:6] == ["Q0. Your role", "Duration (in seconds)"]


def test_screens_same_seed_same_table(screens_config: dict, screens_dirty: pa.Table) -> None:
    again = generate_export(screens_config, n_evaluations=N, seed=11, bad_rows=True)
    assert again.equals(screens_dirty) and again.schema.metadata == screens_dirty.schema.metadata


def test_clean_rows_pass_every_screen(screens_config: dict, screens_clean: pa.Table) -> None:
    assert all_defects(screens_clean, screens_config) == {}
    assert all(item["kinds"] == [] for item in planted_rows(screens_clean))


def test_clean_screen_answers_look_like_a_survey(screens_config: dict, screens_clean: pa.Table) -> None:
    """One role and one duration per respondent; roles in several cases and paddings; durations plausible,
    one respondent exactly at the threshold, valid spellings a strict reader might trip on, and an
    evaluation of `min_ratings - 1` equal ratings (too few to judge)."""
    rows = rows_of(screens_clean)
    roles: dict[str, set[str]] = {}
    durations: dict[str, set[float]] = {}
    for row in rows:
        roles.setdefault(row["respondent_id"], set()).add(row["decision_role"].strip().lower())
        durations.setdefault(row["respondent_id"], set()).add(float(row["duration_seconds"]))
    assert all(len(values) == 1 for values in roles.values())
    assert all(len(values) == 1 for values in durations.values())
    spellings = Counter(row["decision_role"] for row in rows)
    assert spellings.most_common(1)[0][0] in {"Final decision maker", "Shared decision maker"}
    assert {"FINAL DECISION MAKER", "Final decision maker ", " Shared decision maker"} & set(spellings)
    assert 0.4 <= sum(v == {"final decision maker"} for v in roles.values()) / len(roles) <= 0.7
    seconds = sorted(next(iter(values)) for values in durations.values())
    assert seconds[0] == 120 and 300 <= seconds[len(seconds) // 2] <= 1500 and seconds[-1] < 10_000
    texts = {row["duration_seconds"] for row in rows}
    assert "120" in texts and any("." in text for text in texts)
    assert any(text != text.strip() for text in texts) and any(text.startswith("0") for text in texts)
    near_misses = 0
    for row in rows:
        values = [m.group(1) for a in screens_config["attributes"] if (m := VALID_RATING.fullmatch(row[a]))]
        near_misses += (
            len(values)
            == screens_config["screens"]["straight_lining"]["min_ratings"] - 1
            == len([v for v in values if v == values[0]])
        )
    assert near_misses >= 1


def test_bad_rows_plant_every_screen(screens_config: dict, screens_dirty: pa.Table) -> None:
    found = all_defects(screens_dirty, screens_config)
    kinds = Counter(kind for defects in found.values() for kind in defects)
    for kind in (*DEFECT_KINDS, *SCREEN_KINDS):
        assert kinds[kind] >= 1, kind
    assert {"unknown_cro", "speeding"} in found.values()
    assert {"invalid_rating", "straight_lining"} in found.values()
    assert {"missing_respondent_id", "not_qualified"} in found.values()
    assert 0.03 * N <= len(found) <= 0.1 * N


def test_screens_manifest_matches_the_defects(screens_config: dict, screens_dirty: pa.Table) -> None:
    found = all_defects(screens_dirty, screens_config)
    manifest = {item["row"]: set(item["kinds"]) for item in planted_rows(screens_dirty) if item["kinds"]}
    assert manifest == found


def test_screened_respondents_lose_every_row(screens_dirty: pa.Table) -> None:
    """Per screen: a respondent with several rows screened on all of them, and one screened by one row only
    (the others carry the reason by propagation); blank answers among the planted failures."""
    rows = rows_of(screens_dirty)
    planted = planted_rows(screens_dirty)
    for kind, column in (("not_qualified", "decision_role"), ("speeding", "duration_seconds")):
        by_respondent: dict[str, list[dict]] = {}
        for item in planted:
            if kind in item["kinds"] and "respondent_id" not in item:
                by_respondent.setdefault(rows[item["row"] - 1]["respondent_id"], []).append(item)
        for respondent, items in by_respondent.items():
            assert len(items) == sum(row["respondent_id"] == respondent for row in rows), respondent
        assert any(len(items) >= 2 and not any("screened_by" in i for i in items) for items in by_respondent.values())
        spread = [items for items in by_respondent.values() if any("screened_by" in i for i in items)]
        assert spread, kind
        for items in spread:
            [source] = {i["screened_by"] for i in items if "screened_by" in i}
            others = [rows[i["row"] - 1][column] for i in items if i["row"] != source]
            assert rows[source - 1][column] not in others
    assert "" in {row["decision_role"] for row in rows} and "" in {row["duration_seconds"] for row in rows}


def test_screens_bad_rows_only_rewrite_planted_rows(screens_dirty: pa.Table, screens_clean: pa.Table) -> None:
    """Rows screened out only by propagation (`screened_by`) are planted but keep their good content."""
    planted = {item["row"] for item in planted_rows(screens_dirty) if item["kinds"] and "screened_by" not in item}
    differing = {
        number
        for number, (a, b) in enumerate(zip(rows_of(screens_dirty), rows_of(screens_clean), strict=True), start=1)
        if a != b
    }
    assert differing == planted


def test_screens_on_a_small_export_stay_within_budget(screens_config: dict) -> None:
    table = generate_export(screens_config, n_evaluations=200, seed=3)
    found = all_defects(table, screens_config)
    assert {kind for defects in found.values() for kind in defects} >= set(SCREEN_KINDS)
    screened = [number for number, defects in found.items() if defects & set(SCREEN_KINDS)]
    # budget max(10, 5% of 200) = 10, eight kinds: one task each, respondents of at most 2 rows: 2+2+1 for
    # qualification, 1+2+2 for the durations, 1+1 for straight-lining
    assert len(screened) <= 12
