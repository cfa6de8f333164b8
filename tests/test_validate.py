"""Row rules: every reason code of the quarantine, through read_export -> stage -> rejection_reasons.

Most cases share one CSV export (one row per case, read and validated once per module); each test
looks up its own rows' reasons. The survey is `helpers_exports.CONFIG_YAML`: CROs Northwind Clinical
(aliases Northwind, NWC), Aldercrest Research (Aldercrest), Bluefen Biometrics (Bluefen); attributes
quality, speed, cost; scale 1..5; survey_close 2024-02-29, recency_months 18 -> window
2022-08-29 .. 2024-02-29.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from helpers_exports import GOOD, HEADER, row, run_rules, write_config

# --- the shared export: one row per case -----------------------------------------------------------

CASES: list[tuple[tuple, dict | str]] = []
"""(key, row): a dict of fields (missing fields from GOOD, respondent_id made unique) or a raw CSV line."""


def case(key: tuple, **fields: str) -> tuple:
    if "respondent_id" not in fields:
        fields["respondent_id"] = f"U{len(CASES) + 1:03d}"
    CASES.append((key, row(**fields)))
    return key


def raw_case(key: tuple, line: str) -> tuple:
    CASES.append((key, line))
    return key


RATING_VALID = ["4", "04", "4.0", "4.", "1", "5", "5.000", " 4 ", "\u00a04\u00a0", "\t3\r\n"]
RATING_INVALID = ["3.5", "4,0", "+4", "1e0", "four", "nan", "inf", "6", "0", "None", "NULL", "#N/A", "-", "-1", "4.5.0"]
RATING_NONE = ["", "   ", "n/a", "N/A", "na", "NA", "N/a", "nA", " n/a\u00a0"]
for value in RATING_VALID + RATING_INVALID + RATING_NONE:
    case(("rating", value), quality=value)

SPEND_VALID = ["1200", "87.5", "0", "0087.50", " 87.5 ", "\u00a01200\t", "12\n"]
SPEND_INVALID = ["", "   ", "-5", "1,200", "$900", "1e3", "inf", "87.", ".5", "NaN"]
for value in SPEND_VALID + SPEND_INVALID:
    case(("rd_spend", value), rd_spend_musd=value)

DATE_VALID = ["2023-06-01", " 2023-06-01 ", "\u00a02023-06-01\r\n", "2024-02-29"]
DATE_INVALID = [
    "",
    "  ",
    "2024-2-3",
    "2024-02-30",
    "2023-02-29",
    "31/12/2023",
    "2024-02-03 10:00",
    "20230601",
    "2023-13-01",
]
for value in DATE_VALID + DATE_INVALID:
    case(("last_engaged", value), last_engaged=value)

# survey_close 2024-02-29, 18 months -> first day 2022-08-29; both ends inside.
WINDOW = {"2022-08-28": False, "2022-08-29": True, "2024-02-29": True, "2024-03-01": False, "2019-01-01": False}
for value in WINDOW:
    case(("window", value), last_engaged=value)

ID_MISSING = ["", "   ", "\t", "\u00a0"]
for value in ID_MISSING:
    case(("respondent_id", value), respondent_id=value)

CRO_KNOWN = [
    "Northwind Clinical",
    "  northwind ",
    "NORTHWIND CLINICAL",
    "nwc",
    "\u00a0Bluefen\t",
    "aldercrest research",
]
CRO_UNKNOWN = ["", "   ", "Nobody Research", "Northwind Clinical Inc", "North wind", "Blue-fen"]
for value in CRO_KNOWN + CRO_UNKNOWN:
    case(("cro", value), cro=value)

NO_RATINGS = {
    "all blank": ("", "", ""),
    "all n/a": ("n/a", "NA", "N/A"),
    "blank and n/a": ("", " na ", "   "),
}
for label, (q, s, c) in NO_RATINGS.items():
    case(("no_ratings", label), quality=q, speed=s, cost=c)
case(("no_ratings", "one answered"), quality="n/a", speed="", cost="2")
case(("no_ratings", "all invalid"), quality="x", speed="9", cost="3.5")

# Duplicates: same respondent_id and same canonical CRO.
case(("dup", "alias A"), respondent_id="D1", cro="Northwind Clinical")
case(("dup", "alias B"), respondent_id="D1", cro=" northwind ")  # alias of the same CRO
case(("dup", "three A"), respondent_id="D2", cro="Bluefen")
case(("dup", "three B"), respondent_id="D2", cro="Bluefen Biometrics", quality="9")  # also invalid_rating
case(("dup", "three C"), respondent_id="D2", cro="BLUEFEN", last_engaged="2020-01-01")  # also outside window
case(("dup", "other cro A"), respondent_id="D3", cro="Northwind")
case(("dup", "other cro B"), respondent_id="D3", cro="Aldercrest")
case(("dup", "case A"), respondent_id="R1", cro="Aldercrest")
case(("dup", "case B"), respondent_id="r1", cro="Aldercrest")
case(("dup", "zeros A"), respondent_id="00123", cro="Aldercrest")
case(("dup", "zeros B"), respondent_id="123", cro="Aldercrest")
case(("dup", "spaces A"), respondent_id="D4", cro="Bluefen")
case(("dup", "spaces B"), respondent_id="  D4\t", cro="Bluefen")  # same id once whitespace is removed
case(("dup", "unknown cro A"), respondent_id="D5", cro="Nobody")
case(("dup", "unknown cro B"), respondent_id="D5", cro="Nobody")
case(("dup", "blank cro A"), respondent_id="D6", cro="")
case(("dup", "blank cro B"), respondent_id="D6", cro="")
case(("dup", "blank id A"), respondent_id="", cro="Northwind")
case(("dup", "blank id B"), respondent_id=" ", cro="Northwind")
case(("dup", "invalid only A"), respondent_id="D7", cro="Aldercrest", rd_spend_musd="-1")
case(("dup", "invalid only B"), respondent_id="D7", cro="Aldercrest", rd_spend_musd="-1")

# Several reasons on one row, listed in the contract's order.
case(
    ("many", "five"),
    respondent_id="",
    rd_spend_musd="$900",
    cro="Nobody",
    last_engaged="2024-02-30",
    quality="3.5",
    speed="",
    cost="n/a",
)
case(
    ("many", "dup A"),
    respondent_id="M1",
    rd_spend_musd="1e3",
    cro="NWC",
    last_engaged="2021-01-01",
    quality="",
    speed="n/a",
    cost="",
)
case(
    ("many", "dup B"),
    respondent_id="M1",
    rd_spend_musd="12",
    cro="Northwind",
    last_engaged="2024-03-01",
    quality="0",
    speed="",
    cost="",
)

# Malformed rows: more or fewer fields than the header; only malformed_row, whatever else is wrong.
raw_case(("malformed", "fewer"), "X1,1200,Northwind,2023-06-01,4,3")
raw_case(("malformed", "more"), "X2,1200,Northwind,2023-06-01,4,3,5,extra")
raw_case(("malformed", "fewer and bad"), ",-5,Nobody,2024-02-30,9")
raw_case(("malformed", "more and bad"), ",$1,,31/12/2023,nan,four,0,,")
raw_case(("malformed", "one field"), "just one field")

# Quoted fields holding commas, quotes and line breaks are one field.
case(("quoted", "cro with comma"), cro='"Northwind", Clinical')  # not a name -> unknown_cro
case(("quoted", "rating with line break"), quality="4\n")
case(("quoted", "id with quote and comma"), respondent_id='Q"1,\n2')

case(
    ("good",),
)


def export_text() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for _, item in CASES:
        if isinstance(item, str):
            out.write(item + "\n")
        else:
            writer.writerow([item[name] for name in HEADER])
    return out.getvalue()


ROW_OF = {key: index for index, (key, _) in enumerate(CASES, start=1)}
assert len(ROW_OF) == len(CASES), "case keys must be unique"


@pytest.fixture(scope="module")
def reasons(tmp_path_factory) -> dict[int, list[str]]:
    folder = tmp_path_factory.mktemp("rules")
    config = write_config(folder)
    export = folder / "export.csv"
    export.write_text(export_text(), encoding="utf-8", newline="")
    return run_rules(config, export)


def reasons_of(reasons: dict[int, list[str]], key: tuple) -> list[str]:
    return reasons.get(ROW_OF[key], [])


# --- the reference row --------------------------------------------------------------------------


def test_reference_row_has_no_reason(reasons):
    assert GOOD["last_engaged"] == "2023-06-01"
    assert reasons_of(reasons, ("good",)) == []


def test_every_row_is_judged_once_per_reason(reasons):
    assert set(reasons) <= set(range(1, len(CASES) + 1))
    for source_row, found in reasons.items():
        assert len(found) == len(set(found)), (source_row, found)


# --- rating -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", RATING_VALID)
def test_rating_valid(reasons, value):
    assert reasons_of(reasons, ("rating", value)) == []


@pytest.mark.parametrize("value", RATING_INVALID)
def test_invalid_rating(reasons, value):
    assert reasons_of(reasons, ("rating", value)) == ["invalid_rating"]


@pytest.mark.parametrize("value", RATING_NONE)
def test_rating_blank_or_na_is_no_rating_not_an_error(reasons, value):
    assert reasons_of(reasons, ("rating", value)) == []


# --- rd_spend_musd ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", SPEND_VALID)
def test_rd_spend_valid(reasons, value):
    assert reasons_of(reasons, ("rd_spend", value)) == []


@pytest.mark.parametrize("value", SPEND_INVALID)
def test_invalid_rd_spend(reasons, value):
    assert reasons_of(reasons, ("rd_spend", value)) == ["invalid_rd_spend"]


# --- last_engaged -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", DATE_VALID)
def test_last_engaged_valid(reasons, value):
    assert reasons_of(reasons, ("last_engaged", value)) == []


@pytest.mark.parametrize("value", DATE_INVALID)
def test_invalid_last_engaged(reasons, value):
    assert reasons_of(reasons, ("last_engaged", value)) == ["invalid_last_engaged"]


# --- outside_recency_window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-08-28", ["outside_recency_window"]),  # a day before the first day
        ("2022-08-29", []),  # first day: survey_close minus 18 months
        ("2024-02-29", []),  # survey_close
        ("2024-03-01", ["outside_recency_window"]),  # a day after survey_close
        ("2019-01-01", ["outside_recency_window"]),
    ],
)
def test_outside_recency_window(reasons, value, expected):
    assert reasons_of(reasons, ("window", value)) == expected


@pytest.mark.parametrize(
    ("survey_close", "months", "dates"),
    [
        # 2024-03-31 minus 1 month: day clamped to the end of February 2024 -> 2024-02-29.
        ("2024-03-31", 1, {"2024-02-28": False, "2024-02-29": True, "2024-03-31": True, "2024-04-01": False}),
        # 2024-05-31 minus 15 months: February 2023 has 28 days -> 2023-02-28.
        ("2024-05-31", 15, {"2023-02-27": False, "2023-02-28": True, "2023-03-01": True, "2024-06-01": False}),
        # 0 months: the window is survey_close alone.
        ("2024-02-29", 0, {"2024-02-28": False, "2024-02-29": True, "2024-03-01": False}),
    ],
)
def test_recency_window_months_are_calendar_months_clamped(tmp_path, survey_close, months, dates):
    from helpers_exports import CONFIG_YAML, write_csv

    text = CONFIG_YAML.replace("survey_close: 2024-02-29", f"survey_close: {survey_close}").replace(
        "recency_months: 18", f"recency_months: {months}"
    )
    config = write_config(tmp_path, text)
    rows = [row(respondent_id=f"W{i}", last_engaged=day) for i, day in enumerate(dates)]
    found = run_rules(config, write_csv(tmp_path / "window.csv", rows))
    got = {day: found.get(index, []) for index, day in enumerate(dates, start=1)}
    assert got == {day: [] if inside else ["outside_recency_window"] for day, inside in dates.items()}


# --- missing_respondent_id ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ID_MISSING)
def test_missing_respondent_id(reasons, value):
    assert reasons_of(reasons, ("respondent_id", value)) == ["missing_respondent_id"]


# --- unknown_cro --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", CRO_KNOWN)
def test_cro_name_or_alias_matched_ignoring_case_and_spaces(reasons, value):
    assert reasons_of(reasons, ("cro", value)) == []


@pytest.mark.parametrize("value", CRO_UNKNOWN)
def test_unknown_cro(reasons, value):
    assert reasons_of(reasons, ("cro", value)) == ["unknown_cro"]


# --- no_ratings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("label", list(NO_RATINGS))
def test_no_ratings(reasons, label):
    assert reasons_of(reasons, ("no_ratings", label)) == ["no_ratings"]


def test_one_rating_answered_is_enough(reasons):
    assert reasons_of(reasons, ("no_ratings", "one answered")) == []


def test_invalid_ratings_are_answers_not_no_ratings(reasons):
    assert reasons_of(reasons, ("no_ratings", "all invalid")) == ["invalid_rating"]


# --- duplicate_evaluation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("alias A", ["duplicate_evaluation"]),
        ("alias B", ["duplicate_evaluation"]),
        ("three A", ["duplicate_evaluation"]),
        ("three B", ["invalid_rating", "duplicate_evaluation"]),
        ("three C", ["outside_recency_window", "duplicate_evaluation"]),
        ("spaces A", ["duplicate_evaluation"]),
        ("spaces B", ["duplicate_evaluation"]),
        ("invalid only A", ["invalid_rd_spend", "duplicate_evaluation"]),
        ("invalid only B", ["invalid_rd_spend", "duplicate_evaluation"]),
    ],
)
def test_duplicate_evaluation_marks_every_copy(reasons, label, expected):
    assert reasons_of(reasons, ("dup", label)) == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("other cro A", []),
        ("other cro B", []),
        ("case A", []),  # R1 and r1 are different respondents
        ("case B", []),
        ("zeros A", []),  # 00123 and 123 are different respondents
        ("zeros B", []),
        ("unknown cro A", ["unknown_cro"]),  # only rows with a known CRO are compared
        ("unknown cro B", ["unknown_cro"]),
        ("blank cro A", ["unknown_cro"]),
        ("blank cro B", ["unknown_cro"]),
        ("blank id A", ["missing_respondent_id"]),  # only rows with a respondent_id are compared
        ("blank id B", ["missing_respondent_id"]),
    ],
)
def test_not_duplicates(reasons, label, expected):
    assert reasons_of(reasons, ("dup", label)) == expected


# --- several reasons ----------------------------------------------------------------------------


def test_row_gets_every_reason_in_contract_order(reasons):
    assert reasons_of(reasons, ("many", "five")) == [
        "missing_respondent_id",
        "invalid_rd_spend",
        "unknown_cro",
        "invalid_last_engaged",
        "invalid_rating",
    ]


def test_duplicates_with_other_reasons_in_contract_order(reasons):
    assert reasons_of(reasons, ("many", "dup A")) == [
        "invalid_rd_spend",
        "outside_recency_window",
        "no_ratings",
        "duplicate_evaluation",
    ]
    assert reasons_of(reasons, ("many", "dup B")) == [
        "outside_recency_window",
        "invalid_rating",
        "duplicate_evaluation",
    ]


def test_reason_order_column(tmp_path):
    from cro_awards.run.pipeline import run_pipeline
    from helpers_exports import load, write_csv

    config = load(write_config(tmp_path))
    path = write_csv(tmp_path / "e.csv", [row(respondent_id="", cro="x", quality="7"), row(speed="four", cost="0")])
    path.write_text(path.read_text() + "too,few\n")
    table = run_pipeline(config, path, through="validate").validation.reasons
    assert table.column_names == ["source_row", "reason", "reason_order", "attributes"]
    assert table.to_pylist() == [
        {"source_row": 1, "reason": "missing_respondent_id", "reason_order": 1, "attributes": None},
        {"source_row": 1, "reason": "unknown_cro", "reason_order": 3, "attributes": None},
        {"source_row": 1, "reason": "invalid_rating", "reason_order": 6, "attributes": ["quality"]},
        {"source_row": 2, "reason": "invalid_rating", "reason_order": 6, "attributes": ["cost", "speed"]},  # by id
        {"source_row": 3, "reason": "malformed_row", "reason_order": 0, "attributes": None},
    ]


# --- malformed_row ------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["fewer", "more", "fewer and bad", "more and bad", "one field"])
def test_malformed_row_has_only_that_reason(reasons, label):
    assert reasons_of(reasons, ("malformed", label)) == ["malformed_row"]


# --- CSV quoting and numbering ------------------------------------------------------------------


def test_quoted_fields_are_one_field(reasons):
    assert reasons_of(reasons, ("quoted", "cro with comma")) == ["unknown_cro"]
    assert reasons_of(reasons, ("quoted", "rating with line break")) == []
    assert reasons_of(reasons, ("quoted", "id with quote and comma")) == []


def test_source_rows_skip_blank_lines_and_count_multiline_records_once(tmp_path: Path):
    config = write_config(tmp_path)
    header = ",".join(HEADER)
    text = (
        f"{header}\n"
        "\n"
        "A1,1200,Northwind,2023-06-01,4,3,5\n"  # row 1
        "\n\n"
        'A2,1200,"Blue\nfen, ""x""",2023-06-01,4,3,5\n'  # row 2: unknown_cro, one record over 2 lines
        "A3,1200,Northwind,2023-06-01,4\n"  # row 3: malformed
        "\n"
        "A4,1200,Northwind,2023-06-01,4,3,9\n"  # row 4: invalid_rating
        "\n"
    )
    path = tmp_path / "numbers.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert run_rules(config, path) == {2: ["unknown_cro"], 3: ["malformed_row"], 4: ["invalid_rating"]}


# --- Suites: one run's Great Expectations state, prepared in the background -----------------------


def test_suites_prepare_once_in_the_background_and_validation_waits_for_it(monkeypatch):
    import threading

    from cro_awards.method import validate as validation

    release, contexts = threading.Event(), []

    def slow_context():
        release.wait(30)  # held until the test lets it go: validation must wait for it
        contexts.append(threading.current_thread().name)
        return "context"

    monkeypatch.setattr(validation, "_new_context", slow_context)
    monkeypatch.setattr(validation, "_validator", lambda context, name: (context, name))
    suites = validation.Suites.prepare()  # returns at once, the preparation still running
    assert contexts == []
    got = []
    waiter = threading.Thread(target=lambda: got.append(suites.validator("evaluations")))
    waiter.start()
    waiter.join(0.2)
    assert got == [] and waiter.is_alive(), "validation went ahead of the preparation"
    release.set()
    waiter.join(30)
    assert got == [("context", "evaluations")]
    assert suites.validator("rating_values") == ("context", "rating_values")
    assert contexts == ["cro-awards-gx-prepare"], "one preparation, on its own thread"


def test_a_failure_while_preparing_is_raised_where_validation_meets_it(monkeypatch, tmp_path):
    from cro_awards.method import validate as validation
    from cro_awards.run.pipeline import run_pipeline
    from helpers_exports import load, write_csv

    def broken(context, name):
        raise RuntimeError(f"expectations/{name}.json: broken")

    monkeypatch.setattr(validation, "_validator", broken)
    suites = validation.Suites.prepare()  # must not raise: the background thread has no one to report to
    for name in validation.SUITES:
        with pytest.raises(RuntimeError, match=r"expectations/\w+\.json: broken"):
            suites.validator(name)  # every time it is met, whichever suite is asked for

    stages = []

    def recorded(name, function, *args):
        stages.append(name)
        return function(*args)

    export = write_csv(tmp_path / "e.csv", [row()])
    with pytest.raises(RuntimeError, match="broken"):
        run_pipeline(load(write_config(tmp_path)), export, through="validate", run_stage=recorded)
    assert stages == ["extract", "stage", "validate"], "raised by the validate stage, on the run's thread"


def _validate_year(year: int):
    from cro_awards.reading.config import load_config
    from cro_awards.run.pipeline import run_pipeline

    root = Path(__file__).resolve().parent.parent
    return run_pipeline(
        load_config(root / "surveys" / f"{year}.yaml"),
        root / "data" / "sample" / f"export_{year}.csv",
        through="validate",
    )


def test_two_survey_years_validated_at_once_in_two_threads_get_the_same_reasons():
    import threading

    years = (2023, 2024)
    alone = {year: _validate_year(year).validation for year in years}
    together: dict[int, object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(years))

    def run(year: int) -> None:
        try:
            start.wait(30)
            together[year] = _validate_year(year).validation
        except BaseException as error:  # noqa: BLE001 - reported on the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(year,), name=f"validate-{year}") for year in years]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    for year in years:
        assert alone[year].reasons.num_rows > 0, f"{year}: the sample has rejected rows"
        assert together[year].reasons.equals(alone[year].reasons), year
        assert together[year].counts == alone[year].counts, year
        assert together[year].quarantined_by_reason == alone[year].quarantined_by_reason, year
    assert alone[2023].reasons.to_pylist() != alone[2024].reasons.to_pylist(), "two different years"


# --- reason_fields: the export columns behind each reason of a quarantined row -------------------
# One export, read with a four-attribute survey whose `columns` renames two headers, and holding `CRO`
# (another column, ignored) before `cro`. The header's attribute order (reach, speed, quality, cost)
# is neither the YAML's (quality, speed, cost, reach) nor alphabetical.

FIELDS_HEADER = (
    "Respondent ID",
    "rd_spend_musd",
    "CRO",
    "cro",
    "last_engaged",
    "Reach (1-5)",
    "speed",
    "quality",
    "cost",
)
FIELDS_RENAMES = 'columns:\n  "Respondent ID": respondent_id\n  "Reach (1-5)": reach\n'
FIELDS_NAMES = ("respondent_id", "rd_spend_musd", "CRO", "cro", "last_engaged", "reach", "speed", "quality", "cost")
"""FIELDS_HEADER after `columns`: the names `fields` and `reason_fields` use."""

FIELDS_ROWS = {
    "two invalid ratings": ["F1", "1200", "Nobody", "Northwind", "2023-06-01", "6", "3", "4", "four"],
    "five reasons": ["", "$900", "Acme", "Nobody", "2019-01-01", "4", "", "3.5", "n/a"],
    "bad date": ["F3", "1200", "Acme", "Bluefen", "31/12/2023", "4", "3", "4", "5"],
    "no ratings": ["F4", "1200", "Acme", "Bluefen", "2023-06-01", "", "n/a", " ", "NA"],
    "duplicate A": ["F5", "1200", "Acme", "Northwind", "2023-06-01", "4", "3", "4", "5"],
    "duplicate B": ["F5", "1200", "Acme", "NWC", "2023-06-01", "4", "3", "4", "5"],
    "good": ["F6", "1200", "Nobody", "Aldercrest", "2023-06-01", "4", "3", "4", "5"],
    "malformed": "F7,1200,Acme,Aldercrest",
}
FIELDS_ROW_OF = {label: index for index, label in enumerate(FIELDS_ROWS, start=1)}


@pytest.fixture(scope="module")
def quarantine(tmp_path_factory):
    """The quarantine table (Arrow, as the pipeline hands it to be written) of the export above."""
    from cro_awards.run.pipeline import run_pipeline
    from helpers_exports import CONFIG_YAML, load

    folder = tmp_path_factory.mktemp("reason_fields")
    four_attributes = CONFIG_YAML.replace("  cost: Cost\n", "  cost: Cost\n  reach: Reach\n")
    config = write_config(folder, four_attributes, extra=FIELDS_RENAMES)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS_HEADER)
    for item in FIELDS_ROWS.values():
        if isinstance(item, str):
            out.write(item + "\n")
        else:
            writer.writerow(item)
    export = folder / "export.csv"
    export.write_text(out.getvalue(), encoding="utf-8", newline="")
    return run_pipeline(load(config), export, through="validate").validation.rejected


def quarantined(quarantine) -> dict[int, dict]:
    """The quarantine's rows as Python dicts (a map is a list of (key, value) pairs), by source_row."""
    return {rejected["source_row"]: rejected for rejected in quarantine.to_pylist()}


def reason_fields_of(quarantine, label: str) -> list[tuple[str, list[str]]]:
    return quarantined(quarantine)[FIELDS_ROW_OF[label]]["reason_fields"]


def test_quarantine_columns_in_contract_order(quarantine):
    import pyarrow as pa

    assert quarantine.column_names == ["source_row", "reasons", "reason_fields", "raw_text", "fields"]
    kind = quarantine.schema.field("reason_fields").type  # map(varchar, varchar[])
    assert (kind.key_type, kind.item_type.value_type) == (pa.string(), pa.string())
    assert sorted(quarantined(quarantine)) == [FIELDS_ROW_OF[label] for label in FIELDS_ROWS if label != "good"]


def test_invalid_rating_names_exactly_the_invalid_attribute_columns_in_header_order(quarantine):
    # reach (renamed from "Reach (1-5)") and cost are invalid; speed and quality are not
    assert reason_fields_of(quarantine, "two invalid ratings") == [("invalid_rating", ["reach", "cost"])]


def test_every_reason_of_a_row_is_mapped_in_the_reasons_order(quarantine):
    assert reason_fields_of(quarantine, "five reasons") == [
        ("missing_respondent_id", ["respondent_id"]),
        ("invalid_rd_spend", ["rd_spend_musd"]),
        ("unknown_cro", ["cro"]),  # not CRO, another column that differs only in case
        ("outside_recency_window", ["last_engaged"]),
        ("invalid_rating", ["quality"]),
    ]
    assert reason_fields_of(quarantine, "bad date") == [("invalid_last_engaged", ["last_engaged"])]


def test_no_ratings_names_every_attribute_column_in_header_order(quarantine):
    assert reason_fields_of(quarantine, "no ratings") == [("no_ratings", ["reach", "speed", "quality", "cost"])]


def test_duplicate_evaluation_names_respondent_and_cro_on_every_copy(quarantine):
    for label in ("duplicate A", "duplicate B"):
        assert reason_fields_of(quarantine, label) == [("duplicate_evaluation", ["respondent_id", "cro"])]


def test_malformed_row_names_no_field(quarantine):
    assert reason_fields_of(quarantine, "malformed") == [("malformed_row", [])]


def test_reason_fields_use_the_names_of_fields(quarantine):
    for rejected in quarantined(quarantine).values():
        assert [name for name, _ in rejected["fields"]] == list(FIELDS_NAMES)
        assert [reason for reason, _ in rejected["reason_fields"]] == rejected["reasons"]
        named = {name for _, names in rejected["reason_fields"] for name in names}
        assert named <= set(FIELDS_NAMES) - {"CRO"}, rejected["source_row"]


def test_reason_fields_read_back_from_parquet_as_documented(quarantine, tmp_path):
    # docs/contract.md's query: which attribute columns held an invalid rating, and their texts
    import duckdb
    import pyarrow.parquet as pq

    path = tmp_path / "rejected_evaluations.parquet"
    pq.write_table(quarantine, path)
    found = (
        duckdb.connect()
        .execute(
            "select source_row, column_name, fields[column_name] as field_text "
            "from read_parquet($path), unnest(reason_fields['invalid_rating']) as invalid(column_name) "
            "order by source_row, column_name",
            {"path": str(path)},
        )
        .fetchall()
    )
    assert found == [
        (FIELDS_ROW_OF["two invalid ratings"], "cost", "four"),
        (FIELDS_ROW_OF["two invalid ratings"], "reach", "6"),
        (FIELDS_ROW_OF["five reasons"], "quality", "3.5"),
    ]


# --- respondent screens ----------------------------------------------------------------------------
# A second shared export, read with the survey above plus a fourth attribute (reach) and all three
# screens: qualification by decision_role (final or shared decision maker), straight-lining from 3 valid
# ratings alike, speeding under 120 seconds of duration_seconds. One row per case, as above; respondents
# are unique unless a case names them (rows of one respondent rate different CROs, so that they are no
# duplicates).

SCREENS_YAML = """\
screens:
  qualification: {column: decision_role, allowed: [Final decision maker, Shared decision maker]}
  straight_lining: {min_ratings: 3}
  speeding: {column: duration_seconds, min_seconds: 120}
"""
FOUR_ATTRIBUTES = "  cost: Cost\n  reach: Reach\n"
SCREENED_HEADER = (*HEADER, "reach", "decision_role", "duration_seconds")
SCREENED_GOOD = {**GOOD, "reach": "2", "decision_role": "Final decision maker", "duration_seconds": "300"}
"""A row passing every rule and screen (its four ratings differ)."""
SCREEN_CODES = ("not_qualified", "invalid_duration", "speeding", "straight_lining")

SCREEN_CASES: list[tuple[tuple, dict | str]] = []


def screened(key: tuple, **fields: str) -> tuple:
    if "respondent_id" not in fields:
        fields["respondent_id"] = f"S{len(SCREEN_CASES) + 1:03d}"
    SCREEN_CASES.append((key, {**SCREENED_GOOD, **fields}))
    return key


def ratings(quality: str, speed: str, cost: str, reach: str) -> dict[str, str]:
    return {"quality": quality, "speed": speed, "cost": cost, "reach": reach}


screened(("screened good",))

QUALIFIED = [
    "Final decision maker",
    " final DECISION maker ",  # trimmed, any case
    "\u00a0Shared decision maker\t",
    "SHARED DECISION MAKER",
    "Final\u200b decision maker",  # compared as names are: an invisible format character is no difference
]
NOT_QUALIFIED = ["", "   ", "Influencer", "final decision", "Final-decision maker", "n/a"]
for value in QUALIFIED + NOT_QUALIFIED:
    screened(("qualification", value), decision_role=value)

DURATION_VALID = ["300", " 130 ", "120", "120.0", "00130", "130.5", "\u00a0200\t", "99999999999999999999"]
DURATION_INVALID = ["", "  ", "12.", "-5", "1e3", ".5", "2 min", "1,200", "nan", "+130", "130s"]
DURATION_SPEEDING = ["119.99", "119", "60", "0", "0.0"]
for value in DURATION_VALID + DURATION_INVALID + DURATION_SPEEDING:
    screened(("duration", value), duration_seconds=value)

# (quality, speed, cost, reach) -> the reasons; min_ratings 3
STRAIGHT_LINING = {
    "four alike": (("4", "4", "4", "4"), ["straight_lining"]),
    "exactly min_ratings alike, one blank": (("4", "4", "4", ""), ["straight_lining"]),
    "alike as values, written differently": (("4", "04", "4.0", "n/a"), ["straight_lining"]),
    "one fewer than min_ratings": (("4", "4", "", ""), []),
    "one fewer, with n/a": (("4", "N/A", "4", "na"), []),
    "an invalid rating among three alike": (("4", "4", "4", "9"), ["invalid_rating", "straight_lining"]),
    "an invalid number among three alike": (("5", "5", "5", "5.5"), ["invalid_rating", "straight_lining"]),
    "an invalid rating making three": (("4", "4", "x", "4.0"), ["invalid_rating", "straight_lining"]),
    "two valid alike and an invalid one alike": (("4", "4", "4.5", ""), ["invalid_rating"]),
    "two alike and an invalid text": (("4", "4", "x", ""), ["invalid_rating"]),
    "three alike and one different": (("4", "4", "4", "3"), []),
    "lowest and highest of the scale": (("1", "5", "1", "5"), []),
    "no ratings": (("", "n/a", " ", ""), ["no_ratings"]),
}
for label, (values, _) in STRAIGHT_LINING.items():
    screened(("straight_lining", label), **ratings(*values))

# Respondent-level screens: not_qualified and speeding on one row reach every row of the respondent.
screened(("propagation", "P1 qualified"), respondent_id="P1", cro="Northwind")
screened(("propagation", "P1 influencer"), respondent_id="P1", cro="Aldercrest", decision_role="Influencer")
screened(("propagation", "P2 speeding"), respondent_id="P2", cro="Northwind", duration_seconds="60")
screened(("propagation", "P2 slow"), respondent_id="P2", cro="Aldercrest", duration_seconds="300")
screened(("propagation", "P3 straight"), respondent_id="P3", cro="Northwind", **ratings("3", "3", "3", "3"))
screened(("propagation", "P3 varied"), respondent_id="P3", cro="Aldercrest")
screened(("propagation", "P4 qualified"), respondent_id="P4", cro="Northwind")
screened(("propagation", "P4 spaced, influencer"), respondent_id="  P4\t", cro="Bluefen", decision_role="Influencer")
screened(("propagation", "p5 influencer"), respondent_id="p5", cro="Northwind", decision_role="Influencer")
screened(("propagation", "P5 qualified"), respondent_id="P5", cro="Northwind")  # another respondent: case counts
screened(("propagation", "P6 unknown cro, speeding"), respondent_id="P6", cro="Nobody", duration_seconds="50")
screened(("propagation", "P6 fine"), respondent_id="P6", cro="Northwind")
screened(("propagation", "P7 blank duration"), respondent_id="P7", cro="Northwind", duration_seconds="")
screened(("propagation", "P7 fine"), respondent_id="P7", cro="Aldercrest")
screened(("propagation", "P8 malformed duration"), respondent_id="P8", cro="Northwind", duration_seconds="abc")
screened(("propagation", "P8 speeding"), respondent_id="P8", cro="Aldercrest", duration_seconds="30")
screened(("propagation", "P9 duplicate, influencer"), respondent_id="P9", cro="Bluefen", decision_role="Influencer")
screened(("propagation", "P9 duplicate"), respondent_id="P9", cro="Bluefen Biometrics")
screened(("propagation", "no id, unqualified"), respondent_id="", decision_role="", cro="Northwind")
screened(("propagation", "no id, speeding"), respondent_id="  ", duration_seconds="10", cro="Aldercrest")
screened(("propagation", "no id, fine"), respondent_id="", cro="Bluefen")
SCREEN_CASES.append((("propagation", "P10 malformed, influencer"), "P10,1200,Northwind,2023-06-01,4,Influencer,10"))
screened(("propagation", "P10 fine"), respondent_id="P10", cro="Aldercrest")

screened(
    ("many", "seven"),
    rd_spend_musd="-1",
    cro="Nobody",
    last_engaged="2019-01-01",
    decision_role="",
    duration_seconds="1e3",
    **ratings("4", "4", "4", "9"),
)

SCREEN_ROW_OF = {key: index for index, (key, _) in enumerate(SCREEN_CASES, start=1)}
assert len(SCREEN_ROW_OF) == len(SCREEN_CASES), "case keys must be unique"


def screened_export(folder: Path) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SCREENED_HEADER)
    for _, item in SCREEN_CASES:
        if isinstance(item, str):
            out.write(item + "\n")
        else:
            writer.writerow([item[name] for name in SCREENED_HEADER])
    path = folder / "screened.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    return path


def four_attribute_yaml() -> str:
    from helpers_exports import CONFIG_YAML

    return CONFIG_YAML.replace("  cost: Cost\n", FOUR_ATTRIBUTES)


@pytest.fixture(scope="module")
def screen_reasons(tmp_path_factory) -> dict[int, list[str]]:
    folder = tmp_path_factory.mktemp("screens")
    return run_rules(write_config(folder, four_attribute_yaml(), extra=SCREENS_YAML), screened_export(folder))


def screen_reasons_of(found: dict[int, list[str]], key: tuple) -> list[str]:
    return found.get(SCREEN_ROW_OF[key], [])


def test_screened_reference_row_has_no_reason(screen_reasons):
    assert screen_reasons_of(screen_reasons, ("screened good",)) == []


@pytest.mark.parametrize("value", QUALIFIED)
def test_qualified_matched_trimmed_and_ignoring_case(screen_reasons, value):
    assert screen_reasons_of(screen_reasons, ("qualification", value)) == []


@pytest.mark.parametrize("value", NOT_QUALIFIED)
def test_not_qualified_blank_or_not_allowed(screen_reasons, value):
    assert screen_reasons_of(screen_reasons, ("qualification", value)) == ["not_qualified"]


@pytest.mark.parametrize("value", DURATION_VALID)
def test_duration_well_formed_and_at_least_min_seconds(screen_reasons, value):
    assert screen_reasons_of(screen_reasons, ("duration", value)) == []  # 120 itself is not speeding


@pytest.mark.parametrize("value", DURATION_INVALID)
def test_invalid_duration_blank_or_not_a_plain_decimal_number(screen_reasons, value):
    assert screen_reasons_of(screen_reasons, ("duration", value)) == ["invalid_duration"]  # never speeding too


@pytest.mark.parametrize("value", DURATION_SPEEDING)
def test_speeding_below_min_seconds(screen_reasons, value):
    assert screen_reasons_of(screen_reasons, ("duration", value)) == ["speeding"]


@pytest.mark.parametrize("label", list(STRAIGHT_LINING))
def test_straight_lining_counts_valid_ratings_alike(screen_reasons, label):
    assert screen_reasons_of(screen_reasons, ("straight_lining", label)) == STRAIGHT_LINING[label][1]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("P1 qualified", ["not_qualified"]),  # the respondent is not qualified on another row
        ("P1 influencer", ["not_qualified"]),
        ("P2 speeding", ["speeding"]),
        ("P2 slow", ["speeding"]),  # sped on another row
        ("P3 straight", ["straight_lining"]),
        ("P3 varied", []),  # straight-lining is per evaluation
        ("P4 qualified", ["not_qualified"]),  # `  P4\t` is P4 once the whitespace is removed
        ("P4 spaced, influencer", ["not_qualified"]),
        ("p5 influencer", ["not_qualified"]),
        ("P5 qualified", []),  # P5 and p5 are different respondents
        ("P6 unknown cro, speeding", ["unknown_cro", "speeding"]),
        ("P6 fine", ["speeding"]),  # whatever else the row that sped has
        ("P7 blank duration", ["invalid_duration"]),
        ("P7 fine", []),  # invalid_duration is per evaluation
        ("P8 malformed duration", ["invalid_duration", "speeding"]),
        ("P8 speeding", ["speeding"]),
        ("P9 duplicate, influencer", ["duplicate_evaluation", "not_qualified"]),
        ("P9 duplicate", ["duplicate_evaluation", "not_qualified"]),
        ("no id, unqualified", ["missing_respondent_id", "not_qualified"]),
        ("no id, speeding", ["missing_respondent_id", "speeding"]),
        ("no id, fine", ["missing_respondent_id"]),  # rows without a respondent id are judged alone
        ("P10 malformed, influencer", ["malformed_row"]),  # a malformed row is judged on its shape alone
        ("P10 fine", []),
    ],
)
def test_not_qualified_and_speeding_reach_every_row_of_the_respondent(screen_reasons, label, expected):
    assert screen_reasons_of(screen_reasons, ("propagation", label)) == expected


def test_a_row_lists_the_screens_reasons_after_the_others_in_contract_order(screen_reasons):
    assert screen_reasons_of(screen_reasons, ("many", "seven")) == [
        "invalid_rd_spend",
        "unknown_cro",
        "outside_recency_window",
        "invalid_rating",
        "not_qualified",
        "invalid_duration",
        "straight_lining",
    ]


def test_the_screens_only_add_reasons_a_year_without_them_gives_the_others(screen_reasons, tmp_path):
    without = run_rules(write_config(tmp_path, four_attribute_yaml()), screened_export(tmp_path))
    assert without, "the export has rows rejected without screens"
    expected = {row: [r for r in found if r not in SCREEN_CODES] for row, found in screen_reasons.items()}
    assert without == {row: found for row, found in expected.items() if found}
    assert {reason for found in screen_reasons.values() for reason in found} >= set(SCREEN_CODES)


@pytest.mark.parametrize("screen", ["qualification", "straight_lining", "speeding"])
def test_each_screen_alone_gives_its_own_reasons(screen_reasons, tmp_path, screen):
    import yaml

    block = yaml.safe_load(SCREENS_YAML)["screens"][screen]
    alone = yaml.safe_dump({"screens": {screen: block}})
    found = run_rules(write_config(tmp_path, four_attribute_yaml(), extra=alone), screened_export(tmp_path))
    own = {"qualification": ["not_qualified"], "straight_lining": ["straight_lining"]}.get(
        screen, ["invalid_duration", "speeding"]
    )
    others = [code for code in SCREEN_CODES if code not in own]
    expected = {row: [r for r in reasons if r not in others] for row, reasons in screen_reasons.items()}
    assert found == {row: reasons for row, reasons in expected.items() if reasons}


def test_a_screen_failing_nothing_adds_nothing(tmp_path):
    config = write_config(tmp_path, four_attribute_yaml(), extra=SCREENS_YAML)
    rows = [{**SCREENED_GOOD, "respondent_id": f"G{i}", "cro": cro} for i, cro in enumerate(["Northwind", "Bluefen"])]
    from helpers_exports import write_csv

    assert run_rules(config, write_csv(tmp_path / "fine.csv", rows, SCREENED_HEADER)) == {}


def test_screen_suites_run_only_when_configured(tmp_path, monkeypatch):
    from cro_awards.method import validate as validation
    from helpers_exports import write_csv

    ran: list[str] = []
    real = validation.Suites.failures

    def recording(self, name, *args):
        ran.append(name)
        return real(self, name, *args)

    monkeypatch.setattr(validation.Suites, "failures", recording)
    export = write_csv(tmp_path / "e.csv", [SCREENED_GOOD], SCREENED_HEADER)
    run_rules(write_config(tmp_path, four_attribute_yaml()), export)
    assert sorted(ran) == ["evaluations", "rating_values"]
    ran.clear()
    run_rules(
        write_config(
            tmp_path, four_attribute_yaml(), extra="screens:\n  speeding: {column: duration_seconds, min_seconds: 1}\n"
        ),
        export,
    )
    assert sorted(ran) == ["evaluations", "rating_values", "screen_speeding"]


# --- reason_fields of the screens' reasons, through the pipeline ----------------------------------------

SCREENED_FIELDS_HEADER = (
    "Respondent ID",
    "rd_spend_musd",
    "Role",
    "cro",
    "last_engaged",
    "reach",
    "speed",
    "Seconds taken",
    "quality",
    "cost",
)
SCREENED_FIELDS_RENAMES = (
    'columns:\n  "Respondent ID": respondent_id\n  Role: decision_role\n  "Seconds taken": duration_seconds\n'
)
SCREENED_FIELDS_ROWS = {
    "influencer": ["G1", "1200", "Influencer", "Northwind", "2023-06-01", "4", "3", "300", "4", "5"],
    "fine, influencer elsewhere": [
        "G1",
        "1200",
        "Final decision maker",
        "Bluefen",
        "2023-06-01",
        "4",
        "3",
        "300",
        "4",
        "5",
    ],
    "speeding": ["G2", "1200", "Final decision maker", "Northwind", "2023-06-01", "4", "3", "90", "4", "5"],
    "fine, sped elsewhere": ["G2", "1200", "Final decision maker", "Bluefen", "2023-06-01", "4", "3", "200", "4", "5"],
    "straight": ["G3", "1200", "Final decision maker", "Northwind", "2023-06-01", "4", "04", "300", "x", "4.0"],
    "bad duration": ["G4", "1200", "Final decision maker", "Northwind", "2023-06-01", "4", "3", "1e3", "4", "5"],
}
SCREENED_FIELDS_ROW_OF = {label: index for index, label in enumerate(SCREENED_FIELDS_ROWS, start=1)}


@pytest.fixture(scope="module")
def screened_quarantine(tmp_path_factory):
    from cro_awards.run.pipeline import run_pipeline
    from helpers_exports import load, write_csv

    folder = tmp_path_factory.mktemp("screened_fields")
    config = write_config(folder, four_attribute_yaml(), extra=SCREENS_YAML + SCREENED_FIELDS_RENAMES)
    export = write_csv(folder / "export.csv", list(SCREENED_FIELDS_ROWS.values()), SCREENED_FIELDS_HEADER)
    return run_pipeline(load(config), export, through="validate").validation.rejected


def test_screens_reasons_name_their_columns_as_the_header_does_after_columns(screened_quarantine):
    found = {rejected["source_row"]: rejected["reason_fields"] for rejected in screened_quarantine.to_pylist()}
    assert found == {
        SCREENED_FIELDS_ROW_OF["influencer"]: [("not_qualified", ["decision_role"])],
        # the respondent's reason names the screen's column on a row whose own value is fine
        SCREENED_FIELDS_ROW_OF["fine, influencer elsewhere"]: [("not_qualified", ["decision_role"])],
        SCREENED_FIELDS_ROW_OF["speeding"]: [("speeding", ["duration_seconds"])],
        SCREENED_FIELDS_ROW_OF["fine, sped elsewhere"]: [("speeding", ["duration_seconds"])],
        # the valid ratings, in header order (reach, speed, quality, cost): quality's is invalid
        SCREENED_FIELDS_ROW_OF["straight"]: [
            ("invalid_rating", ["quality"]),
            ("straight_lining", ["reach", "speed", "cost"]),
        ],
        SCREENED_FIELDS_ROW_OF["bad duration"]: [("invalid_duration", ["duration_seconds"])],
    }


# --- a year without screens is judged and scored exactly as before ---------------------------------------


def _sample_with_screen_columns(folder: Path, role: str = "Final decision maker", seconds: str = "300") -> Path:
    """The bundled 2024 export with two more columns, decision_role and duration_seconds, the same on every row."""
    source = Path(__file__).resolve().parent.parent / "data" / "sample" / "export_2024.csv"
    with source.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*rows[0], "decision_role", "duration_seconds"])
    for fields in rows[1:]:
        writer.writerow([*fields, role, seconds] if len(fields) == len(rows[0]) else fields)
    path = folder / "export_2024_screens.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    return path


def test_a_year_without_screens_gives_the_same_tables_and_quarantine_with_or_without_screen_columns(tmp_path):
    import yaml

    from cro_awards.reading.config import load_config
    from cro_awards.run.pipeline import run_pipeline

    root = Path(__file__).resolve().parent.parent
    plain = load_config(root / "surveys" / "2024.yaml")
    before = run_pipeline(plain, root / "data" / "sample" / "export_2024.csv")
    extended = _sample_with_screen_columns(tmp_path)
    unconfigured = run_pipeline(plain, extended)
    # screens that set nobody aside: every row qualified and slow, more ratings alike than attributes exist
    document = yaml.safe_load((root / "surveys" / "2024.yaml").read_text(encoding="utf-8"))
    document["sample_export"] = None
    document["screens"] = {
        "qualification": {"column": "decision_role", "allowed": ["final decision maker"]},
        "straight_lining": {"min_ratings": len(document["attributes"]) + 1},
        "speeding": {"column": "duration_seconds", "min_seconds": 300},
    }
    (tmp_path / "2024.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    passing = run_pipeline(load_config(tmp_path / "2024.yaml"), extended)
    for result in (unconfigured, passing):
        assert result.tables.keys() == before.tables.keys()
        for name, table in before.tables.items():
            assert result.tables[name].equals(table), name
        assert result.validation.reasons.equals(before.validation.reasons)
        assert result.counts == before.counts and result.quarantined_by_reason == before.quarantined_by_reason
        for column in ("source_row", "reasons", "reason_fields", "raw_text"):
            assert result.validation.rejected[column].equals(before.validation.rejected[column]), column
    assert before.validation.reasons.num_rows > 0
