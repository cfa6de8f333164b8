"""Differential tests: the real pipeline (extract -> stage -> validate -> transform, in process, without
Prefect) against `tests/reference.py`, a plain-Python restatement of the contract's rules.

Compared exactly: the quarantined source_rows and their reason lists; every published table row for
row (same columns, same order, counts, booleans and ranks exactly, doubles within 1e-9). Both apply the
countable-cells rule (a cell rated by fewer than min_cell_size respondents counts nowhere), the reference
as restated from the spec, so the published tables must be identical: no row more, none fewer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cro_awards.engine.errors import DisclosureError, ExportError
from cro_awards.reading.config import load_config
from reference import RESPONDENT_SCREENS, FileLevelError, identity, months_before, read_rows, reference

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"
SAMPLE_EXPORT = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"
ABS_TOLERANCE = 1e-9


# --- running both sides --------------------------------------------------------------------------


def run_pipeline(yaml_path: Path, csv_path: Path) -> tuple[dict[int, list[str]], dict[str, list[dict]]]:
    from cro_awards.run.pipeline import run_pipeline

    loaded = load_config(yaml_path, {"max_rejected_share": 1})  # the numbers, whatever share is rejected
    result = run_pipeline(loaded, csv_path)
    tables = {
        name: table.drop_columns([c for c in UNCERTAINTY_COLUMNS if c in table.column_names]).to_pylist()
        for name, table in result.tables.items()
    }
    rejected = result.validation.rejected.select(["source_row", "reasons"]).to_pylist()
    quarantine: dict[int, list[str]] = {}
    for row in rejected:
        assert row["source_row"] not in quarantine, f"source_row {row['source_row']} quarantined twice"
        quarantine[row["source_row"]] = list(row["reasons"])
    return quarantine, tables


UNCERTAINTY_COLUMNS = (
    "ci_low", "ci_high", "composite_shrunk", "p_leader", "p_champion", "rank_low", "rank_high", "is_co_leader",
    "composite_adjusted", "p_award", "is_robust",
)  # fmt: skip
"""The resampling's figures (tests/test_uncertainty.py), which the reference does not restate."""


def run_reference(yaml_path: Path, csv_path: Path):
    with open(yaml_path, encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    return reference(config, csv_path)


def refused_alike(yaml_path: Path, csv_path: Path) -> bool:
    """Whether the reference refuses the export as a whole; if it does, the pipeline must too, naming the
    line where the quote opened."""
    try:
        run_reference(yaml_path, csv_path)
    except FileLevelError:
        with pytest.raises(ExportError, match="a quote opens a field there"):
            run_pipeline(yaml_path, csv_path)
        return True
    return False


def same_value(got, want) -> bool:
    if isinstance(want, float) and not isinstance(got, bool):
        return isinstance(got, (int, float)) and math.isfinite(got) and abs(got - want) <= ABS_TOLERANCE
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    return got == want


def assert_same(pipeline, expected) -> None:
    got_quarantine, got_tables = pipeline
    want_quarantine, want_tables = expected
    assert sorted(got_quarantine) == sorted(want_quarantine), "quarantined source_rows differ"
    for source_row in sorted(want_quarantine):
        assert got_quarantine[source_row] == want_quarantine[source_row], f"reasons of source_row {source_row}"
    assert set(got_tables) == set(want_tables)
    for name, want_rows in want_tables.items():
        got_rows = got_tables[name]
        for index, (got, want) in enumerate(zip(got_rows, want_rows, strict=False)):
            assert list(got) == list(want), f"{name} columns: {list(got)} != {list(want)}"
            bad = [column for column in want if not same_value(got[column], want[column])]
            assert not bad, f"{name} row {index} differs in {bad}:\n pipeline  {got}\n reference {want}"
        assert len(got_rows) == len(want_rows), f"{name}: {len(got_rows)} rows, reference has {len(want_rows)}"


# --- 1. the bundled sample -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_export() -> Path:
    if SAMPLE_EXPORT.is_file():
        return SAMPLE_EXPORT
    try:
        from bench import synthetic
    except ImportError:
        pytest.skip(f"{SAMPLE_EXPORT} is missing and bench/synthetic.py is not available to generate it")
    with open(SAMPLE_CONFIG, encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    path = Path(tempfile.mkdtemp(prefix="cro-awards-sample-")) / "export_2024.csv"
    synthetic.write_export(synthetic.generate_export(config, n_evaluations=1500, seed=2024), path)
    return path


def test_sample_matches_reference(sample_export: Path) -> None:
    expected = run_reference(SAMPLE_CONFIG, sample_export)
    assert expected[0], "the sample is expected to hold some quarantined rows"
    assert expected[1]["awards"], "the sample is expected to give some awards"
    assert_same(run_pipeline(SAMPLE_CONFIG, sample_export), expected)


@pytest.mark.parametrize("year", [2023, 2024, 2025])
def test_bundled_years_match_reference_keyed_on_ids_with_labels_last(year: int) -> None:
    """The bundled years' tables are the reference's (which restates the rules with CRO names mapped to
    ids): the rows of the years as published before ids, with `cro` the id and the labels appended."""
    config_path = PROJECT_ROOT / "surveys" / f"{year}.yaml"
    export = PROJECT_ROOT / "data" / "sample" / f"export_{year}.csv"
    expected = run_reference(config_path, export)
    got = run_pipeline(config_path, export)
    assert_same(got, expected)
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    names = {cro["id"]: cro["name"] for cro in raw["cros"]}
    for name, rows in got[1].items():
        assert rows, name
        assert {row["cro"] for row in rows} <= set(names), name
        assert all(row["cro_name"] == names[row["cro"]] for row in rows), name
        labels = ["cro_name", "attribute_label" if name == "attribute_scores" else "category_label"]
        assert list(rows[0])[-2:] == labels, name


def test_the_2025_sample_quarantines_what_the_generator_planted() -> None:
    """Two restatements agree on the sample with all three screens: the reference's quarantine is the
    generator's record of planted rows (plus each planted duplicate's original, which the contract
    quarantines too), every screen's reason among it, well under the year's max_rejected_share."""
    from bench.synthetic import SCREEN_KINDS, generate_export, planted_rows

    config_path = PROJECT_ROOT / "surveys" / "2025.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    quarantine, tables = run_reference(config_path, PROJECT_ROOT / "data" / "sample" / "export_2025.csv")
    planted = [item for item in planted_rows(generate_export(config, n_evaluations=1500, seed=2025)) if item["kinds"]]
    expected = {item["row"]: item["kinds"] for item in planted}
    for item in planted:
        if item["kinds"] == ["duplicate_evaluation"]:
            expected[item["original_row"]] = ["duplicate_evaluation"]
    assert quarantine == expected
    assert {code for reasons in quarantine.values() for code in reasons} >= set(SCREEN_KINDS)
    assert 0.03 <= len(quarantine) / 1500 <= 0.08 < config["max_rejected_share"]
    assert tables["awards"]


# --- 2. random small surveys ------------------------------------------------------------------------

# CRO names and their aliases: distinct ignoring case, some non-ASCII, some starting in lower case, so
# that sorting by code point (upper case before lower case, accents after z) is exercised.
CRO_POOL = (
    ("Northwind Clinical", ("Northwind", "NWC")),
    ("aldercrest Research", ("Aldercrest",)),
    ("Émile Trials", ("Emile", "ÉT")),
    ("Zephyr Ridge", ("Zephyr",)),
    ("Ångström Bio", ("Angstrom", "ÅB")),
    ("Bluefen Biometrics", ("Bluefen", "Bluefen, Inc.")),
    ("Öresund CRO", ("Oresund",)),
    ("cobalt harbor", ("CHT", "Cobalt")),
    ("Zeta", ()),
)
UNKNOWN_CROS = ("Acme Clinical", "Northwind Clinicals", "Émile")
ATTRIBUTE_POOL = ("attr_a", "data_quality", "b2", "monitoring", "zeta_z")
CATEGORY_POOL = ("quality", "capabilities", "reliability")
CLOSE_DATES = (
    dt.date(2024, 2, 29),
    dt.date(2024, 3, 31),
    dt.date(2023, 8, 31),
    dt.date(2024, 12, 31),
    dt.date(2024, 5, 15),
)
PADDING = ("", "", "", " ", "  ", "\t", "\u00a0", " \u00a0")

VALID_RATINGS = ("1", "2", "3", "4", "5", "4.0", " 3 ", "04", "4.", "\u00a02", "5\n", "\t1")
NO_RATINGS = ("", "n/a", "N/A", "na", "NA", " n/a ")
BAD_RATINGS = ("6", "3.5", "0", "four", "+4", "nan", "1e0", "-", "4,0", "#N/A", "None")
GOOD_SPENDS = ("12", "999.99", "1000", "1000.0", "87.5", " 1500 ", "0", "1000.5", "00999", "2500")
BAD_SPENDS = ("", "-5", "1,200", "$900", "1e3", ".5", "5.", "inf", "12 000")
# Only texts DuckDB cannot cast leniently either: "2024-2-03", "2023/01/05" or "2023-06-15 10:00" outside the
# window expose a known pipeline bug (test_lenient_date_is_not_also_outside_the_window) on every run.
BAD_DATES = ("", "2023-02-29", "31/12/2023", "2023-13-01", "2023-00-10", "2023-04-31", "20230101", "2023-1-32")
BLANK_LINES = ("", "", "", " ", "\t", "\u00a0", " \u00a0 ")

DEFECTS = (
    "missing_respondent_id",
    "invalid_rd_spend",
    "unknown_cro",
    "invalid_last_engaged",
    "outside_recency_window",
    "invalid_rating",
    "no_ratings",
    "duplicate_evaluation",
    "malformed_row",
)


# The respondent screens (surveys(screens=True)): decision roles, some allowed in one configuration and
# not in another, some only after the identity normalisation; durations either side of the thresholds.
ROLE_POOL = ("Final decision maker", "shared decision maker", "Influencer", "Ärztliche Leitung", "Not involved")
OTHER_ROLES = ("", " ", "\u200b", "Final decision-maker", "n/a", "Other")
MIN_SECONDS = (0, 60, 120, 119.5, 120.25)
GOOD_DURATIONS = ("600", "45", "120", "119.5", "120.25", "0120", " 300 ", "\u00a0300", "300.0", "0", "59.99", "7200")
BAD_DURATIONS = ("", " ", "n/a", "12:34", "-5", "1e3", "1,200", ".5", "5.", "+60", "\uff11\uff12\uff10", "5 min")


def _screens(draw, attributes: list[str]) -> tuple[dict, dict, str, str]:
    """(the YAML's `screens`, its `columns` renaming, the role header, the duration header)."""
    screens: dict = {}
    role_column = draw(st.sampled_from(("decision_role", "role")))
    duration_column = draw(st.sampled_from(("duration_seconds", "secs")))
    if draw(st.sampled_from((True, True, True, False))):
        allowed = draw(st.lists(st.sampled_from(ROLE_POOL), min_size=1, max_size=3, unique=True))
        allowed = [draw(st.sampled_from((text, text.upper(), text.lower(), f" {text}"))) for text in allowed]
        screens["qualification"] = {"column": role_column, "allowed": allowed}
    if draw(st.sampled_from((True, True, False))):
        screens["straight_lining"] = {"min_ratings": draw(st.integers(2, len(attributes) + 1))}
    if draw(st.sampled_from((True, True, True, False))):
        screens["speeding"] = {"column": duration_column, "min_seconds": draw(st.sampled_from(MIN_SECONDS))}
    renamed = {}
    role_header = role_column
    if draw(st.booleans()):
        role_header = "Q0. Your role"
        renamed[role_header] = role_column
    return screens, renamed, role_header, duration_column


def _role_text(draw) -> str:
    text = draw(st.sampled_from(ROLE_POOL + OTHER_ROLES))
    text = draw(st.sampled_from((text, text, text.upper(), text.lower(), f"\u200b{text}")))
    return draw(st.sampled_from(PADDING)) + text + draw(st.sampled_from(PADDING))


def _duration_text(draw) -> str:
    return draw(st.sampled_from(GOOD_DURATIONS if draw(st.integers(0, 4)) else BAD_DURATIONS))


@st.composite
def surveys(draw, screens: bool = False):
    """(config dict, CSV text, number of data rows) for a small random survey.

    With `screens`, the YAML configures some of the respondent screens (`_screens`), the export carries a
    role and a duration column (configured or not), respondents rate several CROs each (one role and one
    duration per respondent, now and then another on one row), and some evaluations are straight-lined.
    """
    cro_indices = draw(st.lists(st.integers(0, len(CRO_POOL) - 1), min_size=3, max_size=6, unique=True))
    cros = []
    for index in cro_indices:
        name, aliases = CRO_POOL[index]
        kept = [alias for alias in aliases if draw(st.booleans())]
        cros.append({"name": name, "aliases": kept})
    attributes = draw(st.lists(st.sampled_from(ATTRIBUTE_POOL), min_size=2, max_size=5, unique=True))
    n_categories = draw(st.integers(1, 3))
    categories: dict[str, list[str]] = {}
    for category in CATEGORY_POOL[:n_categories]:
        members = draw(st.lists(st.sampled_from(attributes), min_size=1, max_size=len(attributes), unique=True))
        categories[category] = members
    if n_categories >= 2:
        first, second = list(categories)[:2]
        if not set(categories[first]) & set(categories[second]):
            categories[second].append(categories[first][0])
    min_evaluations = draw(st.integers(3, 10))
    close = draw(st.sampled_from(CLOSE_DATES))
    recency = draw(st.sampled_from((None, 0, 1, 6, 12, 18, 24)))
    scale = draw(st.sampled_from((None, None, {"min": 1, "max": 5}, {"min": 2, "max": 4}, {"min": 0, "max": 5})))
    config = {
        "survey_year": close.year,
        "survey_close": close,
        "big_pharma_min_rd_spend_musd": draw(st.sampled_from((1000, 1000.5, 500))),
        "min_evaluations": min_evaluations,
        "min_cell_size": draw(st.integers(3, min(5, min_evaluations))),
        "min_cros_for_awards": draw(st.integers(1, 3)),
        "champion_sd_multiplier": draw(st.sampled_from((0, 0.5, 1.0))),
        "max_rejected_share": 1.0,
        "cros": cros,
        "attributes": {attribute: f"Label of {attribute}" for attribute in attributes},
        "categories": categories,
    }
    if recency is not None:
        config["recency_months"] = recency
    if scale is not None:
        config["rating_scale"] = scale
    window_start = months_before(close, 18 if recency is None else recency)
    window_days = (close - window_start).days

    columns = ["respondent_id", "rd_spend_musd", "cro", "last_engaged", *attributes]
    if draw(st.booleans()):
        columns.append("comments")
    if screens:
        config["screens"], renamed, role_header, duration_header = _screens(draw, attributes)
        if renamed:
            config["columns"] = renamed
        columns += [role_header, duration_header]
        profiles: dict[int, tuple[str, str]] = {}
    columns = list(draw(st.permutations(columns)))

    def spelling(cro: dict) -> str:
        text = draw(st.sampled_from((cro["name"], *cro["aliases"])))
        text = draw(st.sampled_from((text, text, text.upper(), text.lower())))
        return draw(st.sampled_from(PADDING)) + text + draw(st.sampled_from(PADDING))

    n_rows = draw(st.integers(0, 90))
    records: list[dict] = []
    lines: list[str] = []
    for number in range(n_rows):
        defects = set()
        if draw(st.integers(0, 4)) == 0:
            defects = set(draw(st.lists(st.sampled_from(DEFECTS), min_size=1, max_size=2)))
        cro = draw(st.sampled_from(cros))
        record = {
            "respondent_id": f"R{number:03d}" + draw(st.sampled_from(("", "", "", " ", "\u00a0"))),
            "rd_spend_musd": draw(st.sampled_from(GOOD_SPENDS)),
            "cro": spelling(cro),
            "last_engaged": (window_start + dt.timedelta(days=draw(st.integers(0, window_days)))).isoformat(),
            "comments": draw(st.sampled_from(("", "great, fast", 'said "ok"', "multi\nline"))),
        }
        for attribute in attributes:
            kind = draw(st.integers(0, 9))
            record[attribute] = draw(st.sampled_from(NO_RATINGS if kind < 2 else VALID_RATINGS))
        if screens:
            respondent = draw(st.integers(0, n_rows // 3))
            record["respondent_id"] = f"R{respondent:03d}" + draw(st.sampled_from(("", "", "", " ", "\u200b")))
            role, duration = profiles.setdefault(respondent, (_role_text(draw), _duration_text(draw)))
            record[role_header] = _role_text(draw) if draw(st.integers(0, 5)) == 0 else role
            record[duration_header] = _duration_text(draw) if draw(st.integers(0, 5)) == 0 else duration
            if draw(st.integers(0, 3)) == 0:
                value = draw(st.sampled_from(("1", "2", "3", "4", "5")))
                for attribute in attributes:
                    record[attribute] = draw(st.sampled_from((value, value, f" {value} ", f"{value}.0", "n/a", "")))
        if "duplicate_evaluation" in defects and records:
            earlier = draw(st.sampled_from(records))
            record["respondent_id"] = earlier["respondent_id"]
            record["cro"] = draw(st.sampled_from((earlier["cro"], spelling(earlier["_cro"]))))
            cro = earlier["_cro"]
        if "missing_respondent_id" in defects:
            record["respondent_id"] = draw(st.sampled_from(("", " ", "\u00a0")))
        if "invalid_rd_spend" in defects:
            record["rd_spend_musd"] = draw(st.sampled_from(BAD_SPENDS))
        if "unknown_cro" in defects:
            record["cro"] = draw(st.sampled_from((*UNKNOWN_CROS, "", " ")))
        if "invalid_last_engaged" in defects:
            record["last_engaged"] = draw(st.sampled_from(BAD_DATES))
        if "outside_recency_window" in defects:
            record["last_engaged"] = draw(
                st.sampled_from(
                    (
                        window_start - dt.timedelta(days=1),
                        close + dt.timedelta(days=1),
                        dt.date(1999, 1, 1),
                        window_start,
                        close,
                    )
                )
            ).isoformat()
        if "invalid_rating" in defects:
            record[draw(st.sampled_from(attributes))] = draw(st.sampled_from(BAD_RATINGS))
        if "no_ratings" in defects:
            for attribute in attributes:
                record[attribute] = draw(st.sampled_from(NO_RATINGS))
        record["_cro"] = cro
        records.append(record)
        fields = [record[column] for column in columns]
        if "malformed_row" in defects:
            if any("\n" in field or "\r" in field for field in fields) and draw(st.integers(0, 3)):
                # A malformed record over several lines refuses the whole file (docs/contract.md, section 2):
                # kept now and then, so that most examples still compare row by row.
                fields = [field.replace("\n", " ").replace("\r", " ") for field in fields]
            how = draw(st.sampled_from(("drop", "add", "trailing_comma", "single")))
            if how == "drop":
                fields = fields[:-1]
            elif how == "add":
                fields = [*fields, "extra"]
            elif how == "trailing_comma":
                fields = [*fields, ""]
            else:
                fields = [fields[0] if fields[0].strip(" \t\u00a0") else "x"]
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(BLANK_LINES)))  # a blank line: not a row
        lines.append(_csv_line(fields))
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(BLANK_LINES)))
    newline = draw(st.sampled_from(("\n", "\r\n")))
    text = newline.join([_csv_line(columns), *lines]) + newline
    return config, text, n_rows


def _csv_line(fields: list[str]) -> str:
    """One CSV record without its line end; a field holding a line break is quoted (the csv module quotes
    line breaks only when they belong to its lineterminator, so it writes "\n" and the end is cut off)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue().removesuffix("\n")


def write_survey(folder: Path, config: dict, text: str) -> tuple[Path, Path]:
    yaml_path = folder / "survey.yaml"
    csv_path = folder / "export.csv"
    yaml_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    csv_path.write_text(text, encoding="utf-8", newline="")
    return yaml_path, csv_path


# No shrinking: one pipeline run costs ~0.3 s and shrinking a 60-row export can take minutes; a failure
# still prints the whole example (config, CSV text), which the targeted tests below can then pin down.
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(surveys())
def test_random_surveys_match_reference(survey) -> None:
    config, text, n_rows = survey
    with tempfile.TemporaryDirectory(prefix="cro-awards-ref-") as folder:
        yaml_path, csv_path = write_survey(Path(folder), config, text)
        if n_rows == 0:
            with pytest.raises(ExportError, match="no data rows"):
                run_pipeline(yaml_path, csv_path)
            assert run_reference(yaml_path, csv_path) == (
                {},
                {"attribute_scores": [], "composite_scores": [], "awards": []},
            )
            return
        if refused_alike(yaml_path, csv_path):
            return
        assert_same(run_pipeline(yaml_path, csv_path), run_reference(yaml_path, csv_path))


def screened_respondents_whole(config: dict, csv_path: Path, quarantine: dict[int, list[str]]) -> None:
    """A respondent (the id as duplicates compare it; rows without one are judged alone) is screened out by
    not_qualified, and by speeding, on all of their well-formed rows or on none."""
    header, rows = read_rows(csv_path)
    renamed = config.get("columns") or {}
    position = {renamed.get(name, name): index for index, name in enumerate(header)}
    by_respondent: dict[str, list[int]] = {}
    for source_row, fields in rows:
        if len(fields) == len(header) and identity(fields[position["respondent_id"]]):
            by_respondent.setdefault(identity(fields[position["respondent_id"]]), []).append(source_row)
    for reason in RESPONDENT_SCREENS:
        for respondent, source_rows in by_respondent.items():
            screened = [row for row in source_rows if reason in quarantine.get(row, [])]
            assert screened in ([], source_rows), f"{reason}: respondent {respondent!r} rows {source_rows}: {screened}"


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(surveys(screens=True))
def test_random_surveys_with_screens_match_reference_and_screen_whole_respondents(survey) -> None:
    config, text, n_rows = survey
    assume(n_rows > 0)
    with tempfile.TemporaryDirectory(prefix="cro-awards-ref-") as folder:
        yaml_path, csv_path = write_survey(Path(folder), config, text)
        if refused_alike(yaml_path, csv_path):
            return
        published = run_pipeline(yaml_path, csv_path)
        assert_same(published, run_reference(yaml_path, csv_path))
        screened_respondents_whole(config, csv_path, published[0])


NO_SCREENS = ({}, {"qualification": None, "straight_lining": None, "speeding": None})
"""Ways a YAML says "no screens" besides leaving `screens:` out."""


def run_whole(yaml_path: Path, csv_path: Path):
    """Everything a run gives (every table with every column, the quarantine, the counts), or its refusal."""
    from cro_awards.run.pipeline import run_pipeline

    try:
        result = run_pipeline(load_config(yaml_path, {"max_rejected_share": 1}), csv_path)
    except (DisclosureError, ExportError) as error:
        return str(error)
    return (
        {name: table.to_pylist() for name, table in result.tables.items()},
        result.validation.rejected.to_pylist(),
        dict(result.counts),
    )


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(surveys(), st.sampled_from(NO_SCREENS))
def test_a_year_without_screens_is_unchanged_by_an_empty_screens_key(survey, no_screens) -> None:
    """The same survey with `screens:` left out and with it empty (or every screen null): the same tables,
    column for column, the same quarantine and counts (or the same refusal)."""
    config, text, n_rows = survey
    assume(n_rows > 0)
    with tempfile.TemporaryDirectory(prefix="cro-awards-ref-") as folder:
        absent = run_whole(*write_survey(Path(folder), config, text))
        empty = run_whole(*write_survey(Path(folder), {**config, "screens": no_screens}, text))
    assert empty == absent


# --- 3. targeted cases --------------------------------------------------------------------------------

BASE_CONFIG = {
    "survey_year": 2024,
    "survey_close": dt.date(2024, 3, 31),
    "recency_months": 1,
    "min_evaluations": 3,
    "min_cell_size": 3,
    "min_cros_for_awards": 1,
    "max_rejected_share": 1.0,
    "cros": [{"name": "Alpha", "aliases": []}, {"name": "Beta", "aliases": ["B"]}],
    "attributes": {"q1": "Q1", "q2": "Q2"},
    "categories": {"quality": ["q1", "q2"], "speed": ["q2"]},
}
HEADER = "respondent_id,rd_spend_musd,cro,last_engaged,q1,q2\n"


def thrice(body: str) -> str:
    """Each row of `body` three times, by three respondents (`R1` -> `R1a`, `R1b`, `R1c`): the same scores,
    on cells of min_cell_size (3) ratings, so that a tiny survey's rows are published."""
    return "".join(
        f"{line.split(',', 1)[0]}{copy},{line.split(',', 1)[1]}\n" for line in body.splitlines() for copy in "abc"
    )


def compare(tmp_path: Path, body: str, **changes) -> tuple:
    config = {**BASE_CONFIG, **changes}
    yaml_path, csv_path = write_survey(tmp_path, config, HEADER + body)
    expected = run_reference(yaml_path, csv_path)
    assert_same(run_pipeline(yaml_path, csv_path), expected)
    return expected


def test_label_columns_on_a_tiny_survey(tmp_path: Path) -> None:
    """A given id (`alpha_co`) and a derived one (`Beta Ltd.` -> `beta_ltd`, matched here by its alias B):
    `cro` holds the ids, `cro_name` the names, attribute and category labels follow (a category label
    is its id with spaces, capitalised: speed_of_delivery -> "Speed of delivery")."""
    cros = [{"id": "alpha_co", "name": "Alpha", "aliases": []}, {"name": "Beta Ltd.", "aliases": ["B"]}]
    categories = {"quality": ["q1", "q2"], "speed_of_delivery": ["q2"]}
    _, tables = compare(
        tmp_path,
        thrice("R1,10,Alpha,2024-03-01,4,5\nR2,10,B,2024-03-01,2,3\n"),
        cros=cros,
        attributes={"q1": "Quality of data", "q2": "Speed"},
        categories=categories,
    )
    overall = {name: [row for row in rows if row["segment"] == "overall"] for name, rows in tables.items()}
    assert [
        (r["cro"], r["attribute"], r["score"], r["cro_name"], r["attribute_label"]) for r in overall["attribute_scores"]
    ] == [
        ("alpha_co", "q1", 4.0, "Alpha", "Quality of data"),
        ("alpha_co", "q2", 5.0, "Alpha", "Speed"),
        ("beta_ltd", "q1", 2.0, "Beta Ltd.", "Quality of data"),
        ("beta_ltd", "q2", 3.0, "Beta Ltd.", "Speed"),
    ]
    assert [
        (r["cro"], r["category"], r["composite"], r["cro_name"], r["category_label"])
        for r in overall["composite_scores"]
    ] == [
        ("alpha_co", "quality", 4.5, "Alpha", "Quality"),
        ("alpha_co", "speed_of_delivery", 5.0, "Alpha", "Speed of delivery"),
        ("beta_ltd", "quality", 2.5, "Beta Ltd.", "Quality"),
        ("beta_ltd", "speed_of_delivery", 3.0, "Beta Ltd.", "Speed of delivery"),
    ]
    # quality: mean 3.5, sd 1, threshold 4.5: Alpha leads and is champion; likewise speed_of_delivery (4, 1, 5)
    assert [(r["category"], r["cro"], r["award"], r["cro_name"], r["category_label"]) for r in overall["awards"]] == [
        ("quality", "alpha_co", "champion", "Alpha", "Quality"),
        ("quality", "alpha_co", "leader", "Alpha", "Quality"),
        ("speed_of_delivery", "alpha_co", "champion", "Alpha", "Speed of delivery"),
        ("speed_of_delivery", "alpha_co", "leader", "Alpha", "Speed of delivery"),
    ]


def test_window_start_is_clamped_to_month_end(tmp_path: Path) -> None:
    # 2024-03-31 minus 1 month is 2024-02-29 (inside); 2024-02-28 is outside.
    quarantine, _ = compare(
        tmp_path,
        "R1,10,Alpha,2024-02-29,4,5\nR2,10,Alpha,2024-02-28,4,5\nR3,10,Alpha,2024-03-31,3,\nR4,10,Alpha,2024-04-01,3,\n",
    )
    assert quarantine == {2: ["outside_recency_window"], 4: ["outside_recency_window"]}


def test_blank_lines_and_quoted_line_breaks_do_not_shift_source_rows(tmp_path: Path) -> None:
    body = 'R1,10,Alpha,2024-03-01,4,5\n\n"R2\n",10,Beta,2024-03-01," 3\n",\nR3,10\n\nR4,10,B,2024-03-01,6,n/a,x\nR5,10,b,2024-03-01,,\n'
    quarantine, _ = compare(tmp_path, body)
    assert quarantine == {3: ["malformed_row"], 4: ["malformed_row"], 5: ["no_ratings"]}


def test_duplicates_match_canonical_cro_and_every_copy(tmp_path: Path) -> None:
    body = "R1,10,Beta,2024-03-01,4,5\nR1,2000, b ,2024-03-02,6,\nr1,10,Beta,2024-03-01,4,5\n,10,Beta,2024-03-01,4,5\n,10,Beta,2024-03-01,4,5\nR2,10,Nope,2024-03-01,4,5\nR2,10,Nope,2024-03-01,4,5\n"
    quarantine, _ = compare(tmp_path, body)
    assert quarantine == {
        1: ["duplicate_evaluation"],
        2: ["invalid_rating", "duplicate_evaluation"],
        4: ["missing_respondent_id"],
        5: ["missing_respondent_id"],
        6: ["unknown_cro"],
        7: ["unknown_cro"],
    }


EDGE_EXPORTS = {
    "utf8_bom": "\ufeff" + HEADER + "R1,10,Alpha,2024-03-01,4,5\n",
    "lone_cr_line_ends": HEADER.replace("\n", "\r") + "R1,10,Alpha,2024-03-01,4,5\rR2,10,Beta,2024-03-01,3,\r",
    "blank_lines_before_header": "\n \n" + HEADER + "\n\u00a0\nR1,10,Alpha,2024-03-01,4,5\n",
    "quoted_blank_is_a_row": HEADER + 'R1,10,Alpha,2024-03-01,4,5\n" "\n""\nR2,10,Beta,2024-03-01,4,5\n',
    "non_ascii_digits": HEADER + "R1,10,Alpha,2024-03-01,\u0663,5\nR2,\uff11\uff10,Alpha,2024-03-01,\uff14,5\n"
    "R3,10,Alpha,\uff12\uff10\uff12\uff14-03-01,4,5\n",
    "long_ratings": HEADER + "R1,10,Alpha,2024-03-01,99999999999999999999,5\nR2,10,Alpha,2024-03-01,"
    "5.000000000000000000001,5\nR3,10,Alpha,2024-03-01,0000000000000000000000004,5.\n",
    "pandas_missing_looking_ids": HEADER
    + "".join(
        f"{rid},10,{cro},2024-03-01,4,5\n"
        for rid, cro in (
            ("nan", "Alpha"),
            ("nan", "Alpha"),
            ("NA", "Beta"),
            ("NA", "B"),
            ("None", "Beta"),
            ("null", "Beta"),
        )
    ),
    "dates_far_away": HEADER + "R1,10,Alpha,9999-12-31,4,5\nR2,10,Alpha,1000-01-01,4,5\nR3,10,Alpha,2024-02-29,4,5\n",
    "only_malformed_rows": HEADER + "R1,10\nR2\n",
}


@pytest.mark.parametrize("body", EDGE_EXPORTS.values(), ids=EDGE_EXPORTS.keys())
def test_edge_exports_match_reference(tmp_path: Path, body: str) -> None:
    config = {**BASE_CONFIG}
    yaml_path, csv_path = write_survey(tmp_path, config, body)
    assert_same(run_pipeline(yaml_path, csv_path), run_reference(yaml_path, csv_path))


def test_ties_share_leader_and_rank(tmp_path: Path) -> None:
    body = (
        "R1,10,Alpha,2024-03-01,4,4\nR2,10,Beta,2024-03-01,4,4\nR3,10,Alpha,2024-03-01,2,2\nR4,10,Beta,2024-03-01,2,2\n"
    )
    _, tables = compare(tmp_path, thrice(body))
    assert {row["award"] for row in tables["awards"]} == {"leader"}
    assert {row["rank"] for row in tables["composite_scores"]} == {1}


def test_unicode_case_collision_is_a_config_error(tmp_path: Path) -> None:
    # 'İnitech' and 'Initech' lower-case alike in DuckDB (which matches export rows): one spelling would
    # stand for two CROs and a row would count for both, so the configuration must be refused.
    from cro_awards.engine.errors import ConfigError

    config = {**BASE_CONFIG, "cros": [{"name": "İnitech", "aliases": []}, {"name": "Initech", "aliases": []}]}
    yaml_path, _ = write_survey(tmp_path, config, HEADER + "R1,10,Initech,2024-03-01,4,5\n")
    with pytest.raises(ConfigError, match="stands for both"):
        load_config(yaml_path)


# Identity tricks: respondent ids and CRO spellings compare as identities (NFKC, format characters removed,
# Unicode whitespace trimmed), so an invisible or compatibility character neither evades
# duplicate_evaluation nor makes a configured CRO unknown.
DUPLICATES = {1: ["duplicate_evaluation"], 2: ["duplicate_evaluation"]}
IDENTITY_TRICKS = {
    "zero_width_space_after_id": (
        "R000001,10,Alpha,2024-03-01,4,5\nR000001\u200b,10,Alpha,2024-03-02,3,4\n",
        DUPLICATES,
    ),
    "ideographic_space_after_id": (
        "R000001,10,Alpha,2024-03-01,4,5\nR000001\u3000,10,Alpha,2024-03-02,3,4\n",
        DUPLICATES,
    ),
    "byte_order_mark_before_id": (
        "R000001,10,Alpha,2024-03-01,4,5\n\ufeffR000001,10,Alpha,2024-03-02,3,4\n",
        DUPLICATES,
    ),
    "full_width_id": ("R1,10,Alpha,2024-03-01,4,5\n\uff32\uff11,10,Alpha,2024-03-02,3,4\n", DUPLICATES),
    "nfd_spelling_of_a_cro": (
        "R1,10,Cafe\u0301 Research,2024-03-01,4,5\nR2,10,Caf\u00e9 Research,2024-03-01,3,4\n",
        {},
    ),
    "zero_width_joiner_in_a_cro": ("R1,10,Al\u200dpha,2024-03-01,4,5\nR2,10,\u2060Beta\u200e,2024-03-01,3,4\n", {}),
    "only_invisible_characters": (
        "\u200b,10,Alpha,2024-03-01,4,5\nR2,10,\u200b\u3000,2024-03-01,3,4\n",
        {1: ["missing_respondent_id"], 2: ["unknown_cro"]},
    ),
}
"""body -> the quarantine both the pipeline and the reference must find."""


@pytest.mark.parametrize(("body", "expected"), IDENTITY_TRICKS.values(), ids=IDENTITY_TRICKS.keys())
def test_identity_tricks_match_reference_and_are_what_their_names_say(tmp_path: Path, body: str, expected) -> None:
    cros = [
        {"name": "Alpha", "aliases": []},
        {"name": "Beta", "aliases": []},
        {"name": "Caf\u00e9 Research", "aliases": []},
    ]
    quarantine, _ = compare(tmp_path, body, cros=cros)
    assert quarantine == expected


@pytest.mark.parametrize(
    ("cros", "collides"),
    [
        ([{"name": "Caf\u00e9", "aliases": []}, {"name": "Cafe\u0301", "aliases": []}], "NFC and NFD spellings"),
        (
            [{"name": "Alpha", "aliases": ["Beta\u200b"]}, {"name": "Beta", "aliases": []}],
            "an alias with a zero-width space",
        ),
        ([{"name": "Alpha", "aliases": ["\uff22eta"]}, {"name": "Beta", "aliases": []}], "a full-width alias"),
    ],
)
def test_spellings_that_are_one_identity_for_two_cros_are_a_config_error(tmp_path: Path, cros, collides) -> None:
    from cro_awards.engine.errors import ConfigError

    yaml_path, _ = write_survey(tmp_path, {**BASE_CONFIG, "cros": cros}, HEADER + "R1,10,Alpha,2024-03-01,4,5\n")
    with pytest.raises(ConfigError, match="stands for both"):
        load_config(yaml_path)


def test_a_name_of_invisible_characters_only_is_blank(tmp_path: Path) -> None:
    from cro_awards.engine.errors import ConfigError

    config = {**BASE_CONFIG, "cros": [{"name": "Alpha", "aliases": ["\u200b\u3000"]}]}
    yaml_path, _ = write_survey(tmp_path, config, HEADER + "R1,10,Alpha,2024-03-01,4,5\n")
    with pytest.raises(ConfigError, match="must not be blank"):
        load_config(yaml_path)


@pytest.mark.xfail(
    strict=True,
    reason="pipeline disagrees (case matching of non-ASCII): CRO 'ΟΔΟΣ Trials' written 'οδος trials' (final "
    "sigma, as Greek is typed in lower case) is unknown_cro in the pipeline, whose DuckDB lower() maps Σ to σ "
    "only, while Python's str.lower gives 'οδος trials' and matches. A casefold-style key would match both.",
)
def test_greek_final_sigma_matches_ignoring_case(tmp_path: Path) -> None:
    quarantine, _ = compare(
        tmp_path,
        "R1,10,οδος trials,2024-03-01,4,5\n",
        cros=[{"name": "ΟΔΟΣ Trials", "aliases": []}, {"name": "Beta", "aliases": []}],
    )
    assert quarantine == {}


def test_year_zero_is_not_a_real_date(tmp_path: Path) -> None:
    quarantine, _ = compare(tmp_path, "R1,10,Alpha,0000-01-01,4,5\n")
    assert quarantine == {1: ["invalid_last_engaged"]}


def test_lenient_date_is_not_also_outside_the_window(tmp_path: Path) -> None:
    quarantine, _ = compare(tmp_path, "R1,10,Alpha,2023/01/05,4,5\n")
    assert quarantine == {1: ["invalid_last_engaged"]}


def test_zero_padded_spend_is_segmented_by_its_value(tmp_path: Path) -> None:
    _, tables = compare(tmp_path, thrice("R1,0000000000000000000001500,Alpha,2024-03-01,4,5\n"))
    assert {row["segment"] for row in tables["attribute_scores"]} == {"big_pharma", "overall"}


def test_segment_cut_on_spend_just_below_cut(tmp_path: Path) -> None:
    """The cut compares the written decimal exactly: 999.9999999999999999 (1000.0 as a double) is below 1000."""
    _, tables = compare(tmp_path, thrice("R1,999.9999999999999999,Alpha,2024-03-01,4,5\n"))
    assert {row["segment"] for row in tables["attribute_scores"]} == {"small_pharma", "overall"}


# --- the respondent screens ------------------------------------------------------------------------------

SCREENS = {
    "qualification": {"column": "role", "allowed": ["Final decision maker", "shared decision maker"]},
    "straight_lining": {"min_ratings": 2},
    "speeding": {"column": "seconds", "min_seconds": 120},
}
SCREENS_HEADER = "respondent_id,rd_spend_musd,cro,last_engaged,role,seconds,q1,q2\n"


def compare_screens(tmp_path: Path, body: str, screens: dict = SCREENS, **changes) -> dict[int, list[str]]:
    config = {**BASE_CONFIG, "screens": screens, **changes}
    yaml_path, csv_path = write_survey(tmp_path, config, SCREENS_HEADER + body)
    expected = run_reference(yaml_path, csv_path)
    assert_same(run_pipeline(yaml_path, csv_path), expected)
    screened_respondents_whole(config, csv_path, expected[0])
    return expected[0]


def test_screens_on_a_tiny_survey(tmp_path: Path) -> None:
    body = (
        "R1,10,Alpha,2024-03-01,Final decision maker,600,4,5\n"  # 1: passes
        "R2,10,Alpha,2024-03-01,  FINAL DECISION MAKER ,600,4,5\n"  # 2: case and spaces pass; R2 is row 3's
        "R2,10,Beta,2024-03-01,Influencer,600,4,5\n"  # 3: not allowed: R2's every row
        "R3,10,Alpha,2024-03-01,shared decision maker,119.9,4,5\n"  # 4: too fast: R3's every row
        "R3,10,Beta,2024-03-01,shared decision maker,600,3,4\n"  # 5
        "R4,10,Alpha,2024-03-01,shared decision maker,120,4,5\n"  # 6: exactly min_seconds is not below it
        "R5,10,Alpha,2024-03-01,shared decision maker,,4,5\n"  # 7: blank duration, this row only
        "R5,10,Beta,2024-03-01,shared decision maker,600,4,5\n"  # 8
        "R6,10,Alpha,2024-03-01,Final decision maker,600,4,4.0\n"  # 9: two equal ratings: straight-lining
        "R6,10,Beta,2024-03-01,Final decision maker,600,4,n/a\n"  # 10: one rating: not judged, not spread
        "R7,10,Alpha,2024-03-01,Final decision maker,600,4,6\n"  # 11: the invalid rating does not count
        ",10,Alpha,2024-03-01,,600,4,5\n"  # 12: no respondent id: judged alone
        "R8,10,Nope,2024-03-01,Not involved,60,3,4\n"  # 13: unknown CRO, and R8 is screened by it all the same
        "R8,10,Alpha,2024-03-01,Final decision maker,600,3,4\n"  # 14
        "r2,10,Alpha,2024-03-01,Final decision maker,600,3,4\n"  # 15: r2 is not R2
        "R9,10,Alpha,2024-03-01,Final decision maker, 0600 ,3,4\n"  # 16: trimmed, leading zero
        "R10,10,Alpha,2024-03-01,Final decision maker,1e3,3,4\n"  # 17
        "R10,10,Beta,2024-03-01,Final decision maker,600.,3,4\n"  # 18
        "R11,10,Alpha,2024-03-01,Influencer,60,3\n"  # 19: malformed: no other reason sought, none given
        "R11,10,Beta,2024-03-01,Final decision maker,600,3,4\n"  # 20
    )
    assert compare_screens(tmp_path, body) == {
        2: ["not_qualified"],
        3: ["not_qualified"],
        4: ["speeding"],
        5: ["speeding"],
        7: ["invalid_duration"],
        9: ["straight_lining"],
        11: ["invalid_rating"],
        12: ["missing_respondent_id", "not_qualified"],
        13: ["unknown_cro", "not_qualified", "speeding"],
        14: ["not_qualified", "speeding"],
        17: ["invalid_duration"],
        18: ["invalid_duration"],
        19: ["malformed_row"],
    }


def test_screens_compare_roles_and_respondents_as_identities(tmp_path: Path) -> None:
    """A role with an invisible character or a no-break space qualifies as its visible text; a respondent
    id with a zero-width space is the same respondent, so row 1 shares row 2's reason."""
    body = (
        "R1,10,Alpha,2024-03-01,\u200bFinal decision maker\u00a0,600,4,5\n"
        "R1\u200b,10,Beta,2024-03-01,Influencer,600,4,5\n"
        "R2,10,Alpha,2024-03-01,\u00a0shared DECISION maker,600,4,5\n"
        "R3,10,Alpha,2024-03-01,\u200b,600,4,5\n"
    )
    assert compare_screens(tmp_path, body) == {1: ["not_qualified"], 2: ["not_qualified"], 4: ["not_qualified"]}


def test_duration_below_the_threshold_in_its_last_digits_is_speeding(tmp_path: Path) -> None:
    """Durations compare as the decimals written (as the segment cut): 119.99999999999999999 is below 120
    although it is 120.0 as a double; 119.5 is not below a min_seconds of 119.5."""
    screens = {**SCREENS, "speeding": {"column": "seconds", "min_seconds": 119.5}}
    body = (
        "R1,10,Alpha,2024-03-01,Final decision maker,119.49999999999999999,4,5\n"
        "R2,10,Alpha,2024-03-01,Final decision maker,119.5,4,5\n"
        "R3,10,Alpha,2024-03-01,Final decision maker,119.50,3,5\n"
    )
    assert compare_screens(tmp_path, body, screens) == {1: ["speeding"]}


def test_each_screen_alone_and_min_ratings_counts_valid_ratings(tmp_path: Path) -> None:
    body = (
        "R1,10,Alpha,2024-03-01,Influencer,5,4,4\n"
        "R2,10,Alpha,2024-03-01,,abc,3, 3 \n"
        "R3,10,Alpha,2024-03-01,Final decision maker,600,5,na\n"
    )
    assert compare_screens(tmp_path, body, {"straight_lining": {"min_ratings": 2}}) == {
        1: ["straight_lining"],
        2: ["straight_lining"],
    }
    assert compare_screens(tmp_path, body, {"straight_lining": {"min_ratings": 3}}) == {}
    assert compare_screens(tmp_path, body, {"qualification": SCREENS["qualification"]}) == {
        1: ["not_qualified"],
        2: ["not_qualified"],
    }
    assert compare_screens(tmp_path, body, {"speeding": SCREENS["speeding"]}) == {
        1: ["speeding"],
        2: ["invalid_duration"],
    }


def test_screen_columns_without_screens_are_ignored(tmp_path: Path) -> None:
    body = "R1,10,Alpha,2024-03-01,Influencer,5,4,4\nR2,10,Alpha,2024-03-01,,,3,3\n"
    assert compare_screens(tmp_path, body, {}) == {}


def test_a_screen_column_mapped_from_the_exports_header(tmp_path: Path) -> None:
    config = {**BASE_CONFIG, "screens": SCREENS, "columns": {"Q0. Your role": "role", "Duration (s)": "seconds"}}
    header = "respondent_id,rd_spend_musd,cro,last_engaged,Q0. Your role,Duration (s),q1,q2\n"
    body = "R1,10,Alpha,2024-03-01,Influencer,600,4,5\nR2,10,Alpha,2024-03-01,Final decision maker,60,4,5\n"
    yaml_path, csv_path = write_survey(tmp_path, config, header + body)
    expected = run_reference(yaml_path, csv_path)
    assert expected[0] == {1: ["not_qualified"], 2: ["speeding"]}
    assert_same(run_pipeline(yaml_path, csv_path), expected)
