"""Unit tests of every file of `sql/`, in the dbt / jaffle-shop unit-test style.

Each test registers tiny literal input tables (the file's direct inputs only) on a fresh in-memory
DuckDB workspace (`cro_awards.engine.graph.Workspace`), runs one file with `cro_awards.engine.sql.run`, and compares the
whole output (column names and order, every row) with a literal expected table worked out by hand. The
published tables are read back as production reads them: sorted by the key their header states
(`sql.sorted_query`); no file sorts its own rows. Doubles are compared with an absolute tolerance of 1e-9;
everything else exactly. Where the rule under test lives between files (the countable cells: a thin
cell counts nowhere downstream), a test runs the short chain of real files from literal inputs and says
so. `min_cell_size` and `min_evaluations` are bound as given (`SQL_LEVEL`): the YAML refuses
min_cell_size below 3, the SQL takes any value. The awards rules are in test_awards_rules.py; the
disclosure audit's checks (sql/audit/) in test_disclosure_audit.py; the graph itself (headers, run
order, the workspace, the output checks) in test_sql_graph.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest

from cro_awards.engine import graph, sql
from cro_awards.method import uncertainty
from cro_awards.method.transform import method_parameters, survey_tables
from cro_awards.reading.config import SurveyConfig

STR = pa.string()
INT = pa.int64()
DBL = pa.float64()
REASONS = pa.list_(pa.string())

STG_RATINGS_SCHEMA = [("source_row", INT), ("attribute", STR), ("rating_text", STR), ("rating_value", DBL)]
RATINGS_SCHEMA = [("segment", STR), ("cro", STR), ("source_row", INT), ("attribute", STR), ("rating_value", DBL)]
ATTRIBUTE_SCORES_SCHEMA = [("segment", STR), ("cro", STR), ("attribute", STR), ("n_ratings", INT), ("score", DBL)]
COMPOSITE_COLUMNS = [
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
]
UNCERTAINTY_SCHEMA = [(field.name, field.type) for field in uncertainty.SCHEMA]


def figures(segment: str, cro: str, category: str, low: float, high: float) -> tuple:
    """A composite_uncertainty row: the interval given, and recognisable values for the rest (shrunk =
    the interval's middle, p_leader 0.25, p_champion 0.5, ranks 1 to 3, a co-leader; adjusted = the
    interval's low end, its probabilities 0.3 and 0.6)."""
    return (segment, cro, category, low, high, (low + high) / 2, 0.25, 0.5, 1, 3, True, 0.2, 0.4, low, 0.3, 0.6)


LABELS = ["cro_name", "category_label"]
"""The label columns composite_scores appends (attribute_scores: cro_name, attribute_label)."""


def given_labels(con) -> None:
    """The label sources: CROs A, B, C are "CRO A", ...; attributes a1, a2 "Attribute one", "Attribute
    two"; categories by their capitalised id ("Quality", ...)."""
    given(con, "cro_labels", [("cro", STR), ("cro_name", STR)], [(cro, f"CRO {cro}") for cro in "ABC"])
    given(
        con,
        "attribute_labels",
        [("attribute", STR), ("attribute_label", STR)],
        [("a1", "Attribute one"), ("a2", "Attribute two")],
    )
    given(
        con,
        "category_labels",
        [("category", STR), ("category_label", STR)],
        [(category, category.capitalize()) for category in ("quality", "delivery", "cost", "k")],
    )


COMPOSITE_SCHEMA = [
    ("segment", STR),
    ("cro", STR),
    ("category", STR),
    ("n_evaluations", INT),
    ("composite", DBL),
    ("is_eligible", pa.bool_()),
    ("rank", INT),
]


# --- helpers ----------------------------------------------------------------------------------------


SQL_LEVEL = ("min_cell_size", "min_evaluations")
"""Knobs bound as given, past the YAML's validation: the YAML refuses min_cell_size below 3 (and
min_evaluations below min_cell_size), but the SQL parameters take any value, and a unit test of one file
may bind a smaller one to keep its literal fixture tiny (each test says which)."""


def params(**knobs: Any) -> dict[str, Any]:
    """The parameters production binds (`method_parameters`), for a survey with these method knobs;
    `SQL_LEVEL` knobs are bound directly."""
    direct = {name: knobs.pop(name) for name in SQL_LEVEL if name in knobs}
    survey = SurveyConfig(
        survey_year=2024,
        survey_close=dt.date(2024, 2, 29),
        cros=[{"name": "Acme"}],
        attributes={"a1": "Attribute one"},
        categories={"k": ("a1",)},
        **knobs,
    )
    return {**method_parameters(survey), **direct}


def given(con, name: str, schema: list[tuple[str, pa.DataType]], rows: list[tuple]) -> None:
    """Register a literal input table `name` with these columns and rows."""
    names = [column for column, _ in schema]
    columns = {column: [row[i] for row in rows] for i, column in enumerate(names)}
    con.register(name, pa.table(columns, schema=pa.schema(schema)))


def columns_of(con, name: str) -> list[str]:
    return [d[0] for d in con.execute(f"select * from {name} limit 0").description]


def rows_of(con, name: str, order_by: str) -> list[tuple]:
    """The rows of a built table (or of `name` with a `where` clause), sorted by `order_by`."""
    return con.execute(f"select * from {name} order by {order_by}").fetchall()


def published_rows(con, name: str) -> list[tuple]:
    """A published table's rows as production reads them back: in the order of its header's key."""
    return con.execute(sql.sorted_query(name)).fetchall()


def assert_rows(actual: list[tuple], expected: list[tuple]) -> None:
    """Whole rows equal, in order; a float in `expected` matches within 1e-9, anything else exactly."""
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}:\n{actual}"
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert len(got) == len(want), f"row {index}: {got} vs {want}"
        for value, wanted in zip(got, want, strict=True):
            if isinstance(wanted, float):
                assert isinstance(value, float) and value == pytest.approx(wanted, abs=1e-9), (
                    f"row {index}: {got} != {want}"
                )
            else:
                assert value == wanted and type(value) is type(wanted), f"row {index}: {got} != {want}"


def segment_ratings(segment: str, cro: str, evaluations: dict[int, dict[str, float]]) -> list[tuple]:
    """int_accepted_ratings rows for one CRO in one segment: {source_row: {attribute: rating}}."""
    return [
        (segment, cro, source_row, attribute, float(value))
        for source_row, answers in evaluations.items()
        for attribute, value in answers.items()
    ]


def given_accepted(con, ratings: list[tuple]) -> None:
    """int_accepted_ratings rows (segment, cro, source_row, attribute, rating_value) and the
    int_accepted_evaluations they imply (one per source_row; respondent R<source_row>)."""
    given(con, "int_accepted_ratings", RATINGS_SCHEMA, ratings)
    evaluations = sorted({(source_row, f"R{source_row}", cro, segment) for segment, cro, source_row, _, _ in ratings})
    given(
        con,
        "int_accepted_evaluations",
        [("source_row", INT), ("respondent_id", STR), ("cro", STR), ("segment", STR), ("respondent_rank", INT)],
        [(*row, rank) for rank, row in enumerate(evaluations, start=1)],
    )


@pytest.fixture
def con():
    """A fresh workspace's connection (memory-bounded, its own spill folder, removed afterwards)."""
    workspace = graph.Workspace.open()
    yield workspace.connection
    workspace.close()


# --- cro_aliases ------------------------------------------------------------------------------------


def test_cro_aliases_keys_trimmed_lower_cased_and_distinct(con):
    given(
        con,
        "ballot",
        [("spelling", STR), ("cro", STR)],
        [
            ("Northwind Clinical", "northwind_clinical"),
            ("  Northwind\t", "northwind_clinical"),
            ("NORTHWIND", "northwind_clinical"),
            ("\u00a0CHT \r\n", "cobalt_harbor_trials"),
            ("Cobalt Harbor Trials", "cobalt_harbor_trials"),
        ],
    )
    sql.run(con, "cro_aliases", params())

    assert columns_of(con, "cro_aliases") == ["cro_key", "cro"]
    assert_rows(
        rows_of(con, "cro_aliases", "cro_key"),
        [
            ("cht", "cobalt_harbor_trials"),
            ("cobalt harbor trials", "cobalt_harbor_trials"),
            ("northwind", "northwind_clinical"),
            ("northwind clinical", "northwind_clinical"),
        ],
    )


# --- stg_ratings ------------------------------------------------------------------------------------


@pytest.fixture
def staged_ratings(con):
    given(
        con,
        "raw_ratings",
        [("source_row", INT), ("a1", STR), ("a2", STR), ("a3", STR)],
        [
            (1, "4", " 5 ", ""),
            (2, "n/a", "NA", "\t3\u00a0"),
            (3, "4.0", None, "N/A"),
            (4, " \t\u00a0", "abc", "na"),
            (5, "\u00a0 2 \r\n", "Na", "04"),
        ],
    )
    sql.run(con, "stg_rating_texts", params())
    sql.run(con, "stg_ratings", params())
    return rows_of(con, "stg_ratings", "source_row, attribute")


def test_stg_rating_texts_each_distinct_field_once_trimmed_judged_answered_or_not(con, staged_ratings):
    assert columns_of(con, "stg_rating_texts") == ["rating_field", "rating_text", "is_answered", "rating_value"]
    assert_rows(
        rows_of(con, "stg_rating_texts", "rating_field"),
        [
            ("", "", False, None),
            ("\t3\u00a0", "3", True, 3.0),
            (" \t\u00a0", "", False, None),
            (" 5 ", "5", True, 5.0),
            ("04", "04", True, 4.0),
            ("4", "4", True, 4.0),
            ("4.0", "4.0", True, 4.0),
            ("N/A", "N/A", False, None),
            ("NA", "NA", False, None),
            ("Na", "Na", False, None),
            ("abc", "abc", True, None),
            ("n/a", "n/a", False, None),
            ("na", "na", False, None),
            ("\u00a0 2 \r\n", "2", True, 2.0),
        ],
    )


def test_stg_ratings_whole_output(con, staged_ratings):
    assert columns_of(con, "stg_ratings") == ["source_row", "attribute", "rating_text", "rating_value"]
    assert_rows(
        staged_ratings,
        [
            (1, "a1", "4", 4.0),
            (1, "a2", "5", 5.0),
            (2, "a3", "3", 3.0),
            (3, "a1", "4.0", 4.0),
            (4, "a2", "abc", None),
            (5, "a1", "2", 2.0),
            (5, "a3", "04", 4.0),
        ],
    )


def test_stg_ratings_blank_na_and_null_leave_no_row(staged_ratings):
    present = {(row[0], row[1]) for row in staged_ratings}
    for missing in [(1, "a3"), (2, "a1"), (2, "a2"), (3, "a2"), (3, "a3"), (4, "a1"), (4, "a3"), (5, "a2")]:
        assert missing not in present


def test_stg_ratings_trims_spaces_tabs_and_no_break_spaces(staged_ratings):
    by_key = {(row[0], row[1]): row[2:] for row in staged_ratings}
    assert by_key[(1, "a2")] == ("5", 5.0)
    assert by_key[(2, "a3")] == ("3", 3.0)
    assert by_key[(5, "a1")] == ("2", 2.0)


def test_stg_ratings_try_cast_of_4_point_0(staged_ratings):
    by_key = {(row[0], row[1]): row[2:] for row in staged_ratings}
    assert by_key[(3, "a1")] == ("4.0", 4.0)
    assert by_key[(4, "a2")] == ("abc", None)  # lenient: kept, judged by validation


# --- stg_evaluations --------------------------------------------------------------------------------


RAW_EVALUATIONS_SCHEMA = [
    ("source_row", INT),
    ("respondent_id", STR),
    ("rd_spend_musd", STR),
    ("cro", STR),
    ("last_engaged", STR),
]
STG_EVALUATIONS_COLUMNS = [
    "source_row",
    "respondent_id",
    "rd_spend_musd_text",
    "rd_spend_musd",
    "rd_spend_musd_exact",
    "cro_text",
    "cro_key",
    "last_engaged_text",
    "last_engaged_on",
]
STG_EVALUATIONS_SCHEMA = [
    ("source_row", INT),
    ("respondent_id", STR),
    ("rd_spend_musd_text", STR),
    ("rd_spend_musd", DBL),
    ("rd_spend_musd_exact", pa.decimal128(38, 18)),
    ("cro_text", STR),
    ("cro_key", STR),
    ("last_engaged_text", STR),
    ("last_engaged_on", pa.date32()),
]


def test_stg_evaluations_trims_blanks_and_casts_without_matching(con):
    given(
        con,
        "raw_evaluations",
        RAW_EVALUATIONS_SCHEMA,
        [
            (1, " R1 ", " 1500.5\t", "\u00a0NorthWind ", "2023-05-01"),
            (2, "", "12", "CHT", " 2024-02-30 "),
            (3, None, "abc", "Unknown CRO", ""),
            (4, "\tR4", "   ", "  ", "2023-13-01"),
        ],
    )
    sql.run(con, "stg_evaluations", params())

    # Staging only trims and casts: no configured CRO (that is int_evaluations), no count of answers.
    # Blank and whitespace-only fields are null; 2024-02-30 and 2023-13-01 are kept as text, not dates.
    assert columns_of(con, "stg_evaluations") == STG_EVALUATIONS_COLUMNS
    assert_rows(
        rows_of(con, "stg_evaluations", "source_row"),
        [
            (
                1,
                "R1",
                "1500.5",
                1500.5,
                decimal.Decimal("1500.5"),
                "NorthWind",
                "northwind",
                "2023-05-01",
                dt.date(2023, 5, 1),
            ),
            (2, None, "12", 12.0, decimal.Decimal("12"), "CHT", "cht", "2024-02-30", None),
            (3, None, "abc", None, None, "Unknown CRO", "unknown cro", None, None),
            (4, "R4", None, None, None, None, None, "2023-13-01", None),
        ],
    )


def test_stg_evaluations_exact_spend_and_dates_only_from_well_formed_text(con):
    given(
        con,
        "raw_evaluations",
        RAW_EVALUATIONS_SCHEMA,
        [
            (1, "R1", "007.50", "Acme", "2024-02-29"),
            (2, "R2", "0.1234567890123456789", "Acme", "2024-2-3"),
            (3, "R3", "123456789012345678901", "Acme", "2023/01/05"),
            (4, "R4", "12345678901234567890", "Acme", "0000-01-01"),
        ],
    )
    sql.run(con, "stg_evaluations", params())

    by_row = {row[0]: (row[3], row[4], row[8]) for row in rows_of(con, "stg_evaluations", "source_row")}
    # Leading zeros dropped: 007.50 is exactly 7.5; 2024-02-29 is a leap day, a real date.
    assert by_row[1] == (7.5, decimal.Decimal("7.5"), dt.date(2024, 2, 29))
    # The 19th decimal is cut off (truncation keeps >= exact); 2024-2-3 is not YYYY-MM-DD: no date.
    assert by_row[2] == (0.1234567890123456789, decimal.Decimal("0.123456789012345678"), None)
    # 21 integer digits: too long for decimal(38, 18), so no exact value (the double decides); a slash date.
    assert by_row[3] == (123456789012345678901.0, None, None)
    # 20 integer digits still fit; year 0000 is refused although DuckDB would cast it.
    assert by_row[4] == (12345678901234567890.0, decimal.Decimal("12345678901234567890"), None)


# --- int_evaluations --------------------------------------------------------------------------------


def test_int_evaluations_matches_aliases_and_counts_answered_ratings(con):
    given(
        con,
        "stg_evaluations",
        STG_EVALUATIONS_SCHEMA,
        [
            (
                1,
                "R1",
                "1500.5",
                1500.5,
                decimal.Decimal("1500.5"),
                "NorthWind",
                "northwind",
                "2023-05-01",
                dt.date(2023, 5, 1),
            ),
            (2, None, "12", 12.0, decimal.Decimal("12"), "CHT", "cht", "2024-02-30", None),
            (3, None, "abc", None, None, "Unknown CRO", "unknown cro", None, None),
            (4, "R4", None, None, None, None, None, "2023-13-01", None),
            (
                5,
                "R5",
                "7",
                7.0,
                decimal.Decimal("7"),
                "NORTHWIND CLINICAL",
                "northwind clinical",
                "2023-06-01",
                dt.date(2023, 6, 1),
            ),
        ],
    )
    given(
        con,
        "cro_aliases",
        [("cro_key", STR), ("cro", STR)],
        [
            ("northwind clinical", "northwind_clinical"),
            ("northwind", "northwind_clinical"),
            ("cht", "cobalt_harbor_trials"),
        ],
    )
    given(
        con,
        "stg_ratings",
        STG_RATINGS_SCHEMA,
        [
            (1, "a1", "4", 4.0),
            (1, "a2", "5", 5.0),
            (2, "a1", "x", None),
            (5, "a3", "3", 3.0),
        ],
    )
    sql.run(con, "int_evaluations", params())

    assert columns_of(con, "int_evaluations") == [
        *STG_EVALUATIONS_COLUMNS[:7],
        "cro",
        *STG_EVALUATIONS_COLUMNS[7:],
        "n_answered",
        "min_rating_value",
        "max_rating_value",
    ]
    # Matched on cro_key, whatever the case written: NorthWind is the alias `northwind`, NORTHWIND CLINICAL
    # the name. Unknown CRO and a blank CRO (null key) match nothing: null cro, the row kept.
    # n_answered counts stg_ratings rows (answered fields): row 2's `x` counts (validation judges it);
    # rows 3 and 4 have none: 0, not null. The lowest and highest answered value: row 1 4 and 5, row 5 3
    # and 3; null where no answer is a number (row 2's `x`) or there is no answer.
    assert_rows(
        rows_of(con, "int_evaluations", "source_row"),
        [
            (
                1,
                "R1",
                "1500.5",
                1500.5,
                decimal.Decimal("1500.5"),
                "NorthWind",
                "northwind",
                "northwind_clinical",
                "2023-05-01",
                dt.date(2023, 5, 1),
                2,
                4.0,
                5.0,
            ),
            (
                2,
                None,
                "12",
                12.0,
                decimal.Decimal("12"),
                "CHT",
                "cht",
                "cobalt_harbor_trials",
                "2024-02-30",
                None,
                1,
                None,
                None,
            ),
            (3, None, "abc", None, None, "Unknown CRO", "unknown cro", None, None, None, 0, None, None),
            (4, "R4", None, None, None, None, None, None, "2023-13-01", None, 0, None, None),
            (
                5,
                "R5",
                "7",
                7.0,
                decimal.Decimal("7"),
                "NORTHWIND CLINICAL",
                "northwind clinical",
                "northwind_clinical",
                "2023-06-01",
                dt.date(2023, 6, 1),
                1,
                3.0,
                3.0,
            ),
        ],
    )


# --- the respondent screens' staging and verdicts ------------------------------------------------------

SCREENS = {
    "qualification": {"column": "decision_role", "allowed": ["Final decision maker"]},
    "straight_lining": {"min_ratings": 3},
    "speeding": {"column": "duration_seconds", "min_seconds": 120},
}


def test_stg_qualification_texts_each_distinct_field_once_keyed_as_names_are(con):
    given(
        con,
        "raw_qualifications",
        [("source_row", INT), ("qualification", STR)],
        [
            (1, "Final decision maker"),
            (2, " FINAL Decision Maker\t"),
            (3, "Final decision maker"),
            (4, None),
            (5, ""),
            (6, " \u00a0"),
            (7, "Influencer"),
            (8, "Final\u200b decision maker"),
        ],
    )
    sql.run(con, "stg_qualification_texts", params())

    # A missing cell and the empty text are one field (''); blank keys are null; the key is the identity
    # (trimmed, format characters removed) lower-cased.
    assert columns_of(con, "stg_qualification_texts") == ["qualification_field", "qualification_key"]
    assert rows_of(con, "stg_qualification_texts", "qualification_field") == [
        ("", None),
        (" FINAL Decision Maker\t", "final decision maker"),
        (" \u00a0", None),
        ("Final decision maker", "final decision maker"),
        ("Final\u200b decision maker", "final decision maker"),
        ("Influencer", "influencer"),
    ]


def test_stg_duration_texts_trims_and_casts_only_plain_decimal_numbers(con):
    fields = [None, "", "  ", " 130 ", "120", "119.99", "12.", "-5", "1e3", ".5", "00130", "\u00a060\t", "2 min"]
    given(con, "raw_durations", [("source_row", INT), ("duration", STR)], list(enumerate(fields, start=1)))
    sql.run(con, "stg_duration_texts", params())

    assert columns_of(con, "stg_duration_texts") == ["duration_field", "duration_text", "duration_seconds"]
    assert_rows(
        rows_of(con, "stg_duration_texts", "duration_field"),
        [
            ("", None, None),  # the missing cell too
            ("  ", None, None),
            (" 130 ", "130", 130.0),
            ("-5", "-5", None),  # kept as text for the rules, no number: never speeding
            (".5", ".5", None),
            ("00130", "00130", 130.0),
            ("119.99", "119.99", 119.99),
            ("12.", "12.", None),
            ("120", "120", 120.0),
            ("1e3", "1e3", None),  # DuckDB would cast it; the rule does not
            ("2 min", "2 min", None),
            ("\u00a060\t", "60", 60.0),
        ],
    )


def test_int_invalid_ratings_lists_the_invalid_ratings_attributes_by_id(con):
    given(
        con,
        "stg_ratings",
        STG_RATINGS_SCHEMA,
        [
            (1, "b", "9", 9.0),
            (1, "a", "x", None),
            (1, "c", "4", 4.0),
            (2, "a", "4", 4.0),
            (3, "c", "3.5", 3.5),
        ],
    )
    sql.run(con, "int_invalid_ratings", {"invalid_rating_texts": ["9", "x", "3.5"]})

    assert columns_of(con, "int_invalid_ratings") == ["source_row", "attributes"]
    assert rows_of(con, "int_invalid_ratings", "source_row") == [(1, ["a", "b"]), (3, ["c"])]  # row 2: none
    sql.run(con, "int_invalid_ratings", {"invalid_rating_texts": []})
    assert rows_of(con, "int_invalid_ratings", "source_row") == []


INT_EVALUATIONS_ANSWERS_SCHEMA = [
    ("source_row", INT),
    ("respondent_id", STR),
    ("n_answered", INT),
    ("min_rating_value", DBL),
    ("max_rating_value", DBL),
]
"""The columns of int_evaluations that the screens' models read."""


def test_int_equal_ratings_counts_the_valid_ratings_of_evaluations_answering_alike(con):
    # Rows 1-4 have no invalid rating (int_evaluations' answers decide); rows 5-8 have one and are
    # counted again from their ratings, the invalid ones left out.
    given(
        con,
        "int_evaluations",
        INT_EVALUATIONS_ANSWERS_SCHEMA,
        [
            (1, "R1", 3, 4.0, 4.0),  # three alike
            (2, "R2", 3, 3.0, 4.0),  # differ
            (3, "R3", 0, None, None),  # no answer
            (4, "R4", 1, 5.0, 5.0),  # one answer: alike, count 1
            (5, "R5", 4, 4.0, 9.0),  # 4, 4, 4 and an invalid 9
            (6, "R6", 2, 4.0, 4.0),  # 4 and an invalid `x` (no value)
            (7, "R7", 3, 2.0, 4.0),  # 2, 4 and an invalid 3.5
            (8, "R8", 1, None, None),  # only an invalid `x`
        ],
    )
    given(
        con,
        "int_invalid_ratings",
        [("source_row", INT), ("attributes", REASONS)],
        [(5, ["d"]), (6, ["b"]), (7, ["c"]), (8, ["a"])],
    )
    given(
        con,
        "stg_ratings",
        STG_RATINGS_SCHEMA,
        [
            *[(1, attribute, "4", 4.0) for attribute in "abc"],
            (5, "a", "4", 4.0),
            (5, "b", "04", 4.0),
            (5, "c", "4.0", 4.0),
            (5, "d", "9", 9.0),
            (6, "a", "4", 4.0),
            (6, "b", "x", None),
            (7, "a", "2", 2.0),
            (7, "b", "4", 4.0),
            (7, "c", "3.5", 3.5),
            (8, "a", "x", None),
        ],
    )
    sql.run(con, "int_equal_ratings", params())

    assert columns_of(con, "int_equal_ratings") == ["source_row", "n_equal_ratings"]
    assert rows_of(con, "int_equal_ratings", "source_row") == [(1, 3), (4, 1), (5, 3), (6, 1)]


def test_int_screen_straight_lining_maps_the_rejected_counts_back(con):
    given(con, "int_equal_ratings", [("source_row", INT), ("n_equal_ratings", INT)], [(1, 3), (2, 4), (3, 2), (4, 3)])
    sql.run(con, "int_screen_straight_lining", {"straight_lining_counts": [3, 4]})

    assert columns_of(con, "int_screen_straight_lining") == ["source_row", "reason"]
    assert rows_of(con, "int_screen_straight_lining", "source_row") == [
        (1, "straight_lining"),
        (2, "straight_lining"),
        (4, "straight_lining"),
    ]


def given_respondents(con, respondents: dict[int, str | None]) -> None:
    """int_evaluations rows: {source_row: respondent_id (as int_evaluations reads it: an identity)}."""
    given(
        con,
        "int_evaluations",
        INT_EVALUATIONS_ANSWERS_SCHEMA,
        [(row, respondent, 1, 4.0, 4.0) for row, respondent in respondents.items()],
    )


def test_int_screen_qualification_reaches_every_row_of_a_respondent_screened_out(con):
    # R1 fails on row 2 (`Influencer`): rows 1 and 2. R2 never fails. Row 5 fails without an id: alone,
    # and not row 6 (no id either). R3 fails on row 7, whose field is missing (''): rows 7 and 8. Row 9
    # is not in int_evaluations (a malformed row is never in raw_qualifications either).
    given(
        con,
        "raw_qualifications",
        [("source_row", INT), ("qualification", STR)],
        [
            (1, "Final decision maker"),
            (2, "Influencer"),
            (3, "Final decision maker"),
            (4, "final decision maker "),
            (5, "Influencer"),
            (6, "Final decision maker"),
            (7, None),
            (8, "Final decision maker"),
        ],
    )
    given_respondents(con, {1: "R1", 2: "R1", 3: "R2", 4: "R2", 5: None, 6: None, 7: "R3", 8: "R3"})
    sql.run(con, "int_screen_qualification", {"not_qualified_fields": ["", "Influencer"]})

    assert columns_of(con, "int_screen_qualification") == ["source_row", "reason"]
    assert rows_of(con, "int_screen_qualification", "source_row") == [(row, "not_qualified") for row in (1, 2, 5, 7, 8)]


def test_int_screen_speeding_carries_speeding_to_the_respondent_and_keeps_invalid_duration_per_row(con):
    # R1 sped on row 1: rows 1-3, row 3 also malformed. R2: a blank duration on row 4 only. Row 6 sped
    # without an id: alone (row 7, also without one, is fine).
    given(
        con,
        "raw_durations",
        [("source_row", INT), ("duration", STR)],
        [(1, "60"), (2, "300"), (3, "abc"), (4, None), (5, "300"), (6, "10"), (7, "300")],
    )
    given_respondents(con, {1: "R1", 2: "R1", 3: "R1", 4: "R2", 5: "R2", 6: None, 7: None})
    sql.run(con, "int_screen_speeding", {"invalid_duration_fields": ["", "abc"], "speeding_fields": ["10", "60"]})

    assert columns_of(con, "int_screen_speeding") == ["source_row", "reason"]
    assert rows_of(con, "int_screen_speeding", "source_row, reason") == [
        (1, "speeding"),
        (2, "speeding"),
        (3, "invalid_duration"),
        (3, "speeding"),
        (4, "invalid_duration"),
        (6, "speeding"),
    ]


def test_int_rejected_reason_fields_maps_the_screens_reasons_to_their_columns(con):
    # The header: d, b, decision_role, a, c, duration_seconds. Row 1 is not qualified and speeds; row 2
    # has both reasons from another row of its respondent (it names the same columns); row 3
    # straight-lines on d, a and c (b blank), row 4 on b, a and c (d invalid, named by invalid_rating
    # only); row 5's duration is malformed.
    given(
        con,
        "rejection_reasons",
        REJECTION_REASONS_SCHEMA,
        [
            (1, "not_qualified", 9, None),
            (1, "speeding", 11, None),
            (2, "not_qualified", 9, None),
            (2, "speeding", 11, None),
            (3, "straight_lining", 12, None),
            (4, "invalid_rating", 6, ["d"]),
            (4, "straight_lining", 12, None),
            (5, "invalid_duration", 10, None),
        ],
    )
    given(
        con,
        "raw_ratings",
        [("source_row", INT), ("d", STR), ("b", STR), ("a", STR), ("c", STR)],
        [
            (1, "4", "3", "4", "5"),
            (2, "4", "3", "4", "5"),
            (3, "4", "n/a", "04", "4"),
            (4, "9", "4", "4", "4.0"),
            (5, "4", "3", "4", "5"),
        ],
    )
    given(
        con,
        "stg_rating_texts",
        STG_RATING_TEXTS_SCHEMA,
        [
            ("9", "9", True, 9.0),
            ("4", "4", True, 4.0),
            ("04", "04", True, 4.0),
            ("4.0", "4.0", True, 4.0),
            ("3", "3", True, 3.0),
            ("5", "5", True, 5.0),
            ("n/a", "n/a", False, None),
        ],
    )
    given_export_columns(
        con,
        [
            "respondent_id",
            "rd_spend_musd",
            "cro",
            "last_engaged",
            "d",
            "b",
            "decision_role",
            "a",
            "c",
            "duration_seconds",
        ],
    )
    sql.run(con, "int_rejected_reason_fields", params(screens=SCREENS))

    assert rows_of(con, "int_rejected_reason_fields", "source_row, reason_order") == [
        (1, "not_qualified", 9, ["decision_role"]),
        (1, "speeding", 11, ["duration_seconds"]),
        (2, "not_qualified", 9, ["decision_role"]),
        (2, "speeding", 11, ["duration_seconds"]),
        (3, "straight_lining", 12, ["d", "a", "c"]),
        (4, "invalid_rating", 6, ["d"]),
        (4, "straight_lining", 12, ["b", "a", "c"]),
        (5, "invalid_duration", 10, ["duration_seconds"]),
    ]


def test_screens_parameters_name_the_screens_columns_and_nothing_without_screens():
    assert (params()["qualification_column"], params()["duration_column"]) == (None, None)
    configured = params(screens=SCREENS)
    assert (configured["qualification_column"], configured["duration_column"]) == ("decision_role", "duration_seconds")
    screens_own = ("qualification_column", "duration_column", "qualification_allowed")
    assert params()["qualification_allowed"] == [] and configured["qualification_allowed"] == ["Final decision maker"]
    without = {key: value for key, value in params().items() if key not in screens_own}
    assert without == {key: value for key, value in configured.items() if key in without}


# --- int_rejected_evaluations -----------------------------------------------------------------------


def test_int_rejected_evaluations_reasons_ordered_by_reason_order_and_deduplicated(con):
    given(
        con,
        "rejection_reasons",
        [("source_row", INT), ("reason", STR), ("reason_order", pa.int32())],
        [
            (7, "no_ratings", 7),
            (3, "unknown_cro", 3),
            (7, "missing_respondent_id", 1),
            (3, "invalid_rd_spend", 2),
            (7, "no_ratings", 7),
            (3, "unknown_cro", 3),
            (9, "malformed_row", 0),
            (3, "duplicate_evaluation", 8),
        ],
    )
    sql.run(con, "int_rejected_evaluations", params())

    assert columns_of(con, "int_rejected_evaluations") == ["source_row", "reasons"]
    assert rows_of(con, "int_rejected_evaluations", "source_row") == [
        (3, ["invalid_rd_spend", "unknown_cro", "duplicate_evaluation"]),
        (7, ["missing_respondent_id", "no_ratings"]),
        (9, ["malformed_row"]),
    ]


# --- int_rejected_reason_fields --------------------------------------------------------------------

REJECTION_REASONS_SCHEMA = [("source_row", INT), ("reason", STR), ("reason_order", pa.int32()), ("attributes", REASONS)]
STG_RATING_TEXTS_SCHEMA = [
    ("rating_field", STR),
    ("rating_text", STR),
    ("is_answered", pa.bool_()),
    ("rating_value", DBL),
]


def test_int_rejected_reason_fields_each_reason_to_its_columns_in_header_order(con):
    # Four attributes, written in the header as d, b, a, c (attribute ids as raw_ratings names them);
    # `CRO` is another column than `cro`. Row 1: two invalid ratings (validation lists them by id);
    # row 2: several reasons; row 3: no ratings (a null, a blank, an n/a); rows 4 and 5: duplicates;
    # row 6: malformed (in no staged table). Row 2's unknown_cro is given twice: one row out.
    given(
        con,
        "rejection_reasons",
        REJECTION_REASONS_SCHEMA,
        [
            (1, "invalid_rating", 6, ["a", "d"]),
            (2, "missing_respondent_id", 1, None),
            (2, "invalid_rd_spend", 2, None),
            (2, "unknown_cro", 3, None),
            (2, "unknown_cro", 3, None),
            (2, "invalid_last_engaged", 4, None),
            (2, "invalid_rating", 6, ["c"]),
            (3, "outside_recency_window", 5, None),
            (3, "no_ratings", 7, None),
            (4, "duplicate_evaluation", 8, None),
            (5, "duplicate_evaluation", 8, None),
            (6, "malformed_row", 0, None),
        ],
    )
    given(
        con,
        "raw_ratings",
        [("source_row", INT), ("d", STR), ("b", STR), ("a", STR), ("c", STR)],
        [
            (1, "9", "4", "four", "3"),
            (2, "4", None, "", "3.5"),
            (3, None, " ", "n/a", ""),
            (4, "4", "4", "4", "4"),
            (5, "4", "4", "4", "4"),
            (7, "", "", "", ""),
        ],
    )
    given(
        con,
        "stg_rating_texts",
        STG_RATING_TEXTS_SCHEMA,
        [
            ("9", "9", True, 9.0),
            ("4", "4", True, 4.0),
            ("four", "four", True, None),
            ("3", "3", True, 3.0),
            ("3.5", "3.5", True, 3.5),
            ("", "", False, None),
            (" ", "", False, None),
            ("n/a", "n/a", False, None),
        ],
    )
    given_export_columns(con, ["CRO", "respondent_id", "rd_spend_musd", "cro", "last_engaged", "d", "b", "a", "c"])
    sql.run(con, "int_rejected_reason_fields", params())

    assert columns_of(con, "int_rejected_reason_fields") == ["source_row", "reason", "reason_order", "column_names"]
    assert sql.key("int_rejected_reason_fields") == ("source_row", "reason")
    assert rows_of(con, "int_rejected_reason_fields", "source_row, reason_order") == [
        (1, "invalid_rating", 6, ["d", "a"]),
        (2, "missing_respondent_id", 1, ["respondent_id"]),
        (2, "invalid_rd_spend", 2, ["rd_spend_musd"]),
        (2, "unknown_cro", 3, ["cro"]),
        (2, "invalid_last_engaged", 4, ["last_engaged"]),
        (2, "invalid_rating", 6, ["c"]),
        (3, "outside_recency_window", 5, ["last_engaged"]),
        (3, "no_ratings", 7, ["d", "b", "a", "c"]),
        (4, "duplicate_evaluation", 8, ["respondent_id", "cro"]),
        (5, "duplicate_evaluation", 8, ["respondent_id", "cro"]),
        (6, "malformed_row", 0, []),
    ]


def run_accepted_ratings(con, knobs) -> None:
    """int_accepted_ratings is a view over int_accepted_evaluations, which the cut decides."""
    sql.run(con, "int_accepted_evaluations", knobs)
    sql.run(con, "int_accepted_ratings", knobs)


# --- int_accepted_ratings ---------------------------------------------------------------------------

INT_EVALUATIONS_SCHEMA = [
    ("source_row", INT),
    ("respondent_id", STR),
    ("cro", STR),
    ("rd_spend_musd", DBL),
    ("rd_spend_musd_exact", pa.decimal128(38, 18)),
]
"""The columns of int_evaluations that int_accepted_evaluations reads."""


def test_int_accepted_ratings_each_rating_once_in_its_segment_rejected_excluded(con):
    given(
        con,
        "int_evaluations",
        INT_EVALUATIONS_SCHEMA,
        [
            (1, "R1", "A", 1000.0, decimal.Decimal("1000")),
            (2, "R2", "A", 999.99, decimal.Decimal("999.99")),
            (3, "R3", "B", 2500.0, decimal.Decimal("2500")),
            (4, "R4", "B", 10.0, decimal.Decimal("10")),
        ],
    )
    given(
        con,
        "stg_ratings",
        STG_RATINGS_SCHEMA,
        [
            (1, "a1", "4", 4.0),
            (1, "a2", "5", 5.0),
            (2, "a1", "3", 3.0),
            (3, "a2", "2", 2.0),
            (4, "a1", "1", 1.0),
        ],
    )
    given(con, "int_rejected_evaluations", [("source_row", INT), ("reasons", REASONS)], [(4, ["no_ratings"])])
    run_accepted_ratings(con, params(big_pharma_min_rd_spend_musd=1000))

    assert columns_of(con, "int_accepted_ratings") == ["segment", "cro", "source_row", "attribute", "rating_value"]
    assert_rows(
        rows_of(con, "int_accepted_ratings", "segment, cro, source_row, attribute"),
        [
            ("big_pharma", "A", 1, "a1", 4.0),
            ("big_pharma", "A", 1, "a2", 5.0),
            ("big_pharma", "B", 3, "a2", 2.0),
            ("small_pharma", "A", 2, "a1", 3.0),
        ],
    )


def test_segment_cut_exactly_at_threshold_is_big_pharma(con):
    given(
        con,
        "int_evaluations",
        INT_EVALUATIONS_SCHEMA,
        [
            (1, "R1", "A", 1000.5, decimal.Decimal("1000.5")),
            (2, "R2", "A", 1000.4999, decimal.Decimal("1000.4999")),
        ],
    )
    given(con, "stg_ratings", STG_RATINGS_SCHEMA, [(1, "a1", "4", 4.0), (2, "a1", "2", 2.0)])
    given(con, "int_rejected_evaluations", [("source_row", INT), ("reasons", REASONS)], [])
    run_accepted_ratings(con, params(big_pharma_min_rd_spend_musd=1000.5))

    assert_rows(
        rows_of(con, "int_accepted_ratings", "segment, source_row"),
        [
            ("big_pharma", "A", 1, "a1", 4.0),
            ("small_pharma", "A", 2, "a1", 2.0),
        ],
    )


def test_spend_written_just_below_cut_is_small_pharma(con):
    # Through staging and int_evaluations: the text, not a double (1000.0 once parsed), decides the segment.
    given(con, "raw_evaluations", RAW_EVALUATIONS_SCHEMA, [(1, "R1", "999.99999999999999999", "Acme", "2023-05-01")])
    given(con, "cro_aliases", [("cro_key", STR), ("cro", STR)], [("acme", "Acme")])
    given(con, "stg_ratings", STG_RATINGS_SCHEMA, [(1, "a1", "4", 4.0)])
    given(con, "int_rejected_evaluations", [("source_row", INT), ("reasons", REASONS)], [])
    sql.run(con, "stg_evaluations", params())
    sql.run(con, "int_evaluations", params())
    run_accepted_ratings(con, params(big_pharma_min_rd_spend_musd=1000))

    assert rows_of(con, "int_accepted_ratings", "segment") == [("small_pharma", "Acme", 1, "a1", 4.0)]


# --- int_rating_cells / int_counted_ratings / int_attribute_scores -----------------------------------

RATING_CELLS_SCHEMA = [
    ("segment", STR),
    ("cro", STR),
    ("attribute", STR),
    ("n_ratings", INT),
    ("rating_sum", DBL),
    ("is_countable", pa.bool_()),
]


def test_int_rating_cells_countable_at_exactly_min_cell_size_not_one_below_per_segment(con):
    # min_cell_size 3. A/a1: 3 Big Pharma ratings (exactly 3: countable) and 2 Small Pharma ones (one
    # below: not countable): each segment is its own cell, never pooled. B/a1: 4 Small Pharma ratings.
    given(
        con,
        "int_accepted_ratings",
        RATINGS_SCHEMA,
        segment_ratings("big_pharma", "A", {1: {"a1": 4}, 2: {"a1": 5}, 3: {"a1": 3}})
        + segment_ratings("small_pharma", "A", {4: {"a1": 1}, 5: {"a1": 2}})
        + segment_ratings("small_pharma", "B", {6: {"a1": 2}, 7: {"a1": 2}, 8: {"a1": 3}, 9: {"a1": 5}}),
    )
    sql.run(con, "int_rating_cells", params(min_cell_size=3))

    assert columns_of(con, "int_rating_cells") == [name for name, _ in RATING_CELLS_SCHEMA]
    assert_rows(
        rows_of(con, "int_rating_cells", "segment, cro, attribute"),
        [
            ("big_pharma", "A", "a1", 3, 12.0, True),
            ("small_pharma", "A", "a1", 2, 3.0, False),
            ("small_pharma", "B", "a1", 4, 12.0, True),
        ],
    )


def test_int_counted_ratings_thin_big_pharma_cell_beside_a_countable_small_pharma_cell(con):
    # A/a1 has 2 Big Pharma ratings (thin at min_cell_size 3) and 3 Small Pharma ones (countable): only the
    # Small Pharma ratings count; the Big Pharma ones are dropped although the CRO's a1 has 5 ratings.
    # A/a2 (Big Pharma, 3 ratings) passes whole: the cell, not the CRO or the evaluation, decides.
    given(
        con,
        "int_accepted_ratings",
        RATINGS_SCHEMA,
        segment_ratings("big_pharma", "A", {1: {"a1": 5, "a2": 1}, 2: {"a1": 5, "a2": 2}, 3: {"a2": 3}})
        + segment_ratings("small_pharma", "A", {4: {"a1": 2}, 5: {"a1": 3}, 6: {"a1": 4}}),
    )
    knobs = params(min_cell_size=3)
    sql.run(con, "int_rating_cells", knobs)
    sql.run(con, "int_counted_ratings", knobs)

    assert sql.materialization("int_counted_ratings") == "view"
    assert columns_of(con, "int_counted_ratings") == ["segment", "cro", "source_row", "attribute", "rating_value"]
    assert_rows(
        rows_of(con, "int_counted_ratings", "source_row, attribute"),
        [
            ("big_pharma", "A", 1, "a2", 1.0),
            ("big_pharma", "A", 2, "a2", 2.0),
            ("big_pharma", "A", 3, "a2", 3.0),
            ("small_pharma", "A", 4, "a1", 2.0),
            ("small_pharma", "A", 5, "a1", 3.0),
            ("small_pharma", "A", 6, "a1", 4.0),
        ],
    )


def test_int_attribute_scores_mean_and_count_per_segment_and_overall_without_zero_rating_rows(con):
    # Every cell countable (min_cell_size 1, bound at the SQL level): the arithmetic alone.
    given(
        con,
        "int_accepted_ratings",
        RATINGS_SCHEMA,
        [
            ("big_pharma", "A", 1, "a1", 4.0),
            ("big_pharma", "A", 1, "a2", 2.0),
            ("small_pharma", "A", 2, "a1", 5.0),
            ("small_pharma", "A", 3, "a1", 5.0),
            ("small_pharma", "B", 4, "a1", 1.0),
            ("small_pharma", "B", 5, "a1", 2.0),
        ],
    )
    knobs = params(min_cell_size=1)
    sql.run(con, "int_rating_cells", knobs)
    sql.run(con, "int_attribute_scores", knobs)

    assert columns_of(con, "int_attribute_scores") == ["segment", "cro", "attribute", "n_ratings", "score"]
    # overall pools both segments: A/a1 is (4 + 5 + 5) / 3; no small_pharma row for A/a2 (no rating).
    assert_rows(
        rows_of(con, "int_attribute_scores", "segment, cro, attribute"),
        [
            ("big_pharma", "A", "a1", 1, 4.0),
            ("big_pharma", "A", "a2", 1, 2.0),
            ("overall", "A", "a1", 3, 14 / 3),
            ("overall", "A", "a2", 1, 2.0),
            ("overall", "B", "a1", 2, 1.5),
            ("small_pharma", "A", "a1", 2, 5.0),
            ("small_pharma", "B", "a1", 2, 1.5),
        ],
    )


def test_int_attribute_scores_overall_is_the_pooled_mean_bit_for_bit(con):
    # Ratings whose pooled mean is not the mean of the segment means: overall = 17 / 6, not (3.5 + 8/3) / 2.
    # Both cells countable at min_cell_size 2 (bound at the SQL level; Big Pharma has 2 ratings).
    ratings = [("big_pharma", "A", 1, "a1", 5.0), ("big_pharma", "A", 2, "a1", 2.0)] + [
        ("small_pharma", "A", row, "a1", value) for row, value in [(3, 1.0), (4, 4.0), (5, 3.0), (6, 2.0)]
    ]
    given(con, "int_accepted_ratings", RATINGS_SCHEMA, ratings)
    knobs = params(min_cell_size=2)
    sql.run(con, "int_rating_cells", knobs)
    sql.run(con, "int_attribute_scores", knobs)
    [(n_ratings, score)] = con.execute(
        "select n_ratings, score from int_attribute_scores where segment = 'overall'"
    ).fetchall()
    assert (n_ratings, score) == (6, 17 / 6)


def test_int_attribute_scores_overall_pools_countable_cells_only_and_none_when_both_are_thin(con):
    # min_cell_size 3 (int_rating_cells given: the file's input).
    # A/a1: Big Pharma 3 ratings summing 12 (countable), Small Pharma 2 summing 2 (thin): overall is the
    #   Big Pharma cell alone, 3 ratings, 4.0 (not (12 + 2) / 5 = 2.8).
    # B/a1: Big Pharma 2 and Small Pharma 2, both thin: no row at all, not even overall, although the
    #   pooled count (4) would reach min_cell_size. This is the spec's rule (disclosure-control.md:
    #   Overall pools the countable segment cells; none countable -> no Overall row): a pooled overall
    #   would be a function of the thin cells' ratings.
    # C/a1: both countable: overall pools them, (9 + 20) / (3 + 5).
    given(
        con,
        "int_rating_cells",
        RATING_CELLS_SCHEMA,
        [
            ("big_pharma", "A", "a1", 3, 12.0, True),
            ("small_pharma", "A", "a1", 2, 2.0, False),
            ("big_pharma", "B", "a1", 2, 8.0, False),
            ("small_pharma", "B", "a1", 2, 10.0, False),
            ("big_pharma", "C", "a1", 3, 9.0, True),
            ("small_pharma", "C", "a1", 5, 20.0, True),
        ],
    )
    sql.run(con, "int_attribute_scores", params(min_cell_size=3))

    assert_rows(
        rows_of(con, "int_attribute_scores", "segment, cro, attribute"),
        [
            ("big_pharma", "A", "a1", 3, 4.0),
            ("big_pharma", "C", "a1", 3, 3.0),
            ("overall", "A", "a1", 3, 4.0),
            ("overall", "C", "a1", 8, 29 / 8),
            ("small_pharma", "C", "a1", 5, 4.0),
        ],
    )


# --- int_contributions / int_not_counted ------------------------------------------------------------


def test_int_contributions_mask_of_counted_attributes_and_no_row_for_an_evaluation_counted_nowhere(con):
    # From the accepted ratings through the real int_rating_cells and int_counted_ratings (min_cell_size 3).
    # a1, a2, a3 of A (Small Pharma) are countable (3 ratings each); a4 is thin (rows 3 and 4 only).
    # Bits by attribute id (int_attribute_bits): a1 = 1, a2 = 2, a3 = 4, a4 = 8. Row 1 answers a3 before
    # a1 (the input's order changes nothing): 5. Row 3's a4 is not in its mask (3); row 4's only rating is
    # a4: row 4 has no row at all (it still counts as read and accepted, elsewhere).
    given_accepted(
        con,
        segment_ratings(
            "small_pharma",
            "A",
            {
                1: {"a3": 5, "a1": 4},
                2: {"a2": 3, "a1": 4, "a3": 1},
                3: {"a4": 2, "a2": 3, "a1": 4},
                4: {"a4": 2},
                5: {"a3": 2, "a2": 3},
            },
        ),
    )
    run_chain(con, ("int_contributions",), params(min_cell_size=3))

    assert columns_of(con, "int_contributions") == ["source_row", "respondent_id", "cro", "segment", "attribute_mask"]
    assert_rows(
        rows_of(con, "int_contributions", "source_row"),
        [
            (1, "R1", "A", "small_pharma", 5),
            (2, "R2", "A", "small_pharma", 7),
            (3, "R3", "A", "small_pharma", 3),
            (5, "R5", "A", "small_pharma", 6),
        ],
    )


def test_int_not_counted_per_segment_with_zeros_for_a_segment_without_thin_cells(con):
    # Big Pharma has only countable cells: 0 cells, 0 ratings (a row all the same). Small Pharma has two
    # thin cells of 1 and 2 ratings: 2 cells, 3 ratings; its countable cell is not counted here.
    given(
        con,
        "int_rating_cells",
        RATING_CELLS_SCHEMA,
        [
            ("big_pharma", "A", "a1", 3, 12.0, True),
            ("small_pharma", "A", "a1", 1, 4.0, False),
            ("small_pharma", "B", "a2", 2, 6.0, False),
            ("small_pharma", "B", "a1", 7, 21.0, True),
        ],
    )
    sql.run(con, "int_not_counted", params())

    assert columns_of(con, "int_not_counted") == ["segment", "cells", "ratings"]
    assert sql.key("int_not_counted") == ("segment",)
    assert_rows(rows_of(con, "int_not_counted", "segment"), [("big_pharma", 0, 0), ("small_pharma", 2, 3)])


def test_int_not_counted_zeros_for_both_segments_without_any_cell(con):
    given(con, "int_rating_cells", RATING_CELLS_SCHEMA, [])
    sql.run(con, "int_not_counted", params())
    assert_rows(rows_of(con, "int_not_counted", "segment"), [("big_pharma", 0, 0), ("small_pharma", 0, 0)])


# --- int_composite_scores ---------------------------------------------------------------------------

CATEGORY_SCHEMA = [("category", STR), ("attribute", STR)]
ACCEPTED = ("int_accepted_ratings", "int_accepted_evaluations")
"""Given as literals (given_accepted): the chains below start from them."""


def run_chain(con, targets: tuple[str, ...], knobs: dict[str, Any], literal: tuple[str, ...] = ()) -> None:
    """Run, in graph order, every real file `targets` need from the accepted ratings and evaluations on
    (given as literals, as is every model of `literal`), e.g. int_rating_cells, int_counted_ratings and
    int_contributions on the way to int_composite_scores. The label sources are given the attributes of
    int_accepted_ratings when none are (a file may number the attributes from them)."""
    if (
        "attribute_labels" in graph.sources_of(targets)
        and not con.execute(
            "select count(*) from information_schema.tables where table_name = 'attribute_labels'"
        ).fetchall()[0][0]
    ):
        attributes = [row[0] for row in con.execute("select distinct attribute from int_accepted_ratings").fetchall()]
        given(
            con,
            "attribute_labels",
            [("attribute", STR), ("attribute_label", STR)],
            [(attribute, attribute.upper()) for attribute in sorted(attributes)],
        )
    skipped = set(graph.run_order(ACCEPTED)) | set(literal)
    for name in graph.run_order(targets):
        if name not in skipped:
            sql.run(con, name, knobs)


def build_composites(con, categories, ratings, attribute_scores, **knobs) -> list[tuple]:
    """int_composite_scores from literal category_attributes, int_accepted_ratings (and the evaluations
    they imply) and a hand-written int_attribute_scores; the files between the ratings and the
    evaluations a composite counts (int_rating_cells, int_counted_ratings, int_contributions) are built by
    the real files first, with the same knobs (min_cell_size decides which ratings count)."""
    given(con, "category_attributes", CATEGORY_SCHEMA, categories)
    given_accepted(con, ratings)
    given(con, "int_attribute_scores", ATTRIBUTE_SCORES_SCHEMA, attribute_scores)
    run_chain(con, ("int_composite_scores",), params(**knobs), literal=("int_attribute_scores",))
    assert {"int_rating_cells", "int_counted_ratings", "int_contributions"} <= set(
        graph.run_order(("int_composite_scores",))
    )
    assert columns_of(con, "int_composite_scores") == COMPOSITE_COLUMNS[:7]
    return rows_of(con, "int_composite_scores", "segment, cro, category")


def test_int_composite_scores_eligibility_and_rank_ties_skip(con):
    # min_cell_size 2 (bound at the SQL level), min_evaluations 3: D's cell (2 ratings) is countable, so D
    # has a composite, but D is not eligible and ranks nowhere, its 5.0 above everyone notwithstanding.
    ratings = (
        segment_ratings("small_pharma", "A", {1: {"a1": 4}, 2: {"a1": 4}, 3: {"a1": 4}})
        + segment_ratings("small_pharma", "B", {4: {"a1": 3}, 5: {"a1": 5}, 6: {"a1": 4}})
        + segment_ratings("small_pharma", "C", {7: {"a1": 3}, 8: {"a1": 3}, 9: {"a1": 3}, 10: {"a1": 3}})
        + segment_ratings("small_pharma", "D", {11: {"a1": 5}, 12: {"a1": 5}})
    )
    scores = [
        ("overall", "A", "a1", 3, 4.0),
        ("overall", "B", "a1", 3, 4.0),
        ("overall", "C", "a1", 4, 3.0),
        ("overall", "D", "a1", 2, 5.0),
    ]
    result = build_composites(con, [("k", "a1")], ratings, scores, min_evaluations=3, min_cell_size=2)
    assert_rows(
        result,
        [
            ("overall", "A", "k", 3, 4.0, True, 1),
            ("overall", "B", "k", 3, 4.0, True, 1),
            ("overall", "C", "k", 4, 3.0, True, 3),
            ("overall", "D", "k", 2, 5.0, False, None),
        ],
    )


def test_int_composite_scores_n_evaluations_counts_counted_ratings_only(con):
    # min_cell_size 3, min_evaluations 4. delivery = a1, a2; quality = a2, a3 (a2 in both categories).
    # A (Small Pharma): a1 rated by rows 1, 2, 3, 6 (4.0); a2 by rows 1, 2, 4 (2.0); a3 by rows 5 and 6
    # only: a thin cell, so int_attribute_scores (given, as the real file makes it) has no a3 row.
    # delivery: (4 + 2) / 2 = 3.0 over rows {1, 2, 3, 4, 6}: 5 evaluations, eligible.
    # quality: a2 alone, 2.0, over rows {1, 2, 4}: 3, not eligible. Row 5 (its only rating is the thin a3)
    #   and row 6 (a3 thin; its counted a1 is not in quality) do not count: under the old rule quality
    #   would have been (2 + 5) / 2 over 5 evaluations, eligible.
    # a2 in both categories: rows 1, 2 and 4 count in both.
    categories = [("delivery", "a1"), ("delivery", "a2"), ("quality", "a2"), ("quality", "a3")]
    ratings = segment_ratings(
        "small_pharma",
        "A",
        {
            1: {"a1": 4, "a2": 2},
            2: {"a1": 4, "a2": 2},
            3: {"a1": 4},
            4: {"a2": 2},
            5: {"a3": 5},
            6: {"a1": 4, "a3": 5},
        },
    )
    scores = [
        ("overall", "A", "a1", 4, 4.0),
        ("overall", "A", "a2", 3, 2.0),
        ("small_pharma", "A", "a1", 4, 4.0),
        ("small_pharma", "A", "a2", 3, 2.0),
    ]
    result = build_composites(con, categories, ratings, scores, min_evaluations=4, min_cell_size=3)
    assert_rows(
        result,
        [
            ("overall", "A", "delivery", 5, 3.0, True, 1),
            ("overall", "A", "quality", 3, 2.0, False, None),
            ("small_pharma", "A", "delivery", 5, 3.0, True, 1),
            ("small_pharma", "A", "quality", 3, 2.0, False, None),
        ],
    )


def test_rank_distinguishes_composites_more_than_1e_9_apart(con):
    ratings = (
        segment_ratings("small_pharma", "A", {1: {"a1": 3}})
        + segment_ratings("small_pharma", "B", {2: {"a1": 3}})
        + segment_ratings("small_pharma", "C", {3: {"a1": 3}})
    )
    scores = [
        ("overall", "A", "a1", 1, 3.0 + 2e-9),
        ("overall", "B", "a1", 1, 3.0),
        ("overall", "C", "a1", 1, 3.0 + 5e-10),
    ]
    # min_cell_size and min_evaluations 1 (bound at the SQL level): every single rating counts.
    result = build_composites(con, [("k", "a1")], ratings, scores, min_evaluations=1, min_cell_size=1)
    # A beats B by 2e-9 (> 1e-9) and C by 1.5e-9; C beats B by only 5e-10: B and C both rank 2.
    assert [(row[1], row[6]) for row in result] == [("A", 1), ("B", 2), ("C", 2)]


def test_equal_composites_computed_two_ways_share_rank(con):
    ratings = (
        segment_ratings(
            "small_pharma",
            "A",
            {
                1: {"a1": 1, "a2": 3},
                2: {"a1": 1, "a2": 3},
                3: {"a1": 2, "a2": 3},
                4: {"a1": 2, "a2": 3},
                5: {"a1": 2, "a2": 4},
            },
        )
        + segment_ratings(
            "small_pharma",
            "B",
            {
                6: {"a1": 2, "a2": 2},
                7: {"a1": 2, "a2": 2},
                8: {"a1": 2, "a2": 2},
                9: {"a1": 3, "a2": 3},
                10: {"a1": 3, "a2": 3},
            },
        )
        + segment_ratings("small_pharma", "C", {11: {"a1": 2, "a2": 2}, 12: {"a1": 2, "a2": 2}, 13: {"a1": 2, "a2": 2}})
    )
    scores = [
        ("overall", "A", "a1", 5, 1.6),  # 8/5
        ("overall", "A", "a2", 5, 3.2),  # 16/5
        ("overall", "B", "a1", 5, 2.4),  # 12/5
        ("overall", "B", "a2", 5, 2.4),
        ("overall", "C", "a1", 3, 2.0),
        ("overall", "C", "a2", 3, 2.0),
    ]
    result = build_composites(con, [("k", "a1"), ("k", "a2")], ratings, scores, min_evaluations=3)
    # Precondition: in binary, (1.6 + 3.2) / 2 is one ulp above 2.4, so only the tolerance makes them tie.
    assert result[0][4] == 2.4000000000000004 and result[1][4] == 2.4
    assert_rows(
        result,
        [
            ("overall", "A", "k", 5, 2.4, True, 1),
            ("overall", "B", "k", 5, 2.4, True, 1),
            ("overall", "C", "k", 3, 2.0, True, 3),
        ],
    )


def test_attribute_in_two_categories_counts_in_both(con):
    categories = [("delivery", "a1"), ("delivery", "a2"), ("quality", "a2"), ("quality", "a3")]
    ratings = segment_ratings("small_pharma", "A", {1: {"a1": 4, "a2": 2}, 2: {"a2": 2}, 3: {"a3": 5}})
    scores = [
        ("overall", "A", "a1", 1, 4.0),
        ("overall", "A", "a2", 2, 2.0),
        ("overall", "A", "a3", 1, 5.0),
    ]
    # Every cell countable (min_cell_size 1, bound at the SQL level); the new rule's case (a2 in both,
    # beside a thin cell) is test_int_composite_scores_n_evaluations_counts_counted_ratings_only.
    result = build_composites(con, categories, ratings, scores, min_evaluations=3, min_cell_size=1)
    # delivery = (4 + 2) / 2 over evaluations {1, 2}; quality = (2 + 5) / 2 over evaluations {1, 2, 3}.
    assert_rows(
        result,
        [
            ("overall", "A", "delivery", 2, 3.0, False, None),
            ("overall", "A", "quality", 3, 3.5, True, 1),
        ],
    )


def test_attribute_with_no_ratings_is_left_out_of_composite(con):
    categories = [("k", "a1"), ("k", "a2"), ("k", "a3")]
    ratings = segment_ratings("small_pharma", "A", {1: {"a1": 4}, 2: {"a2": 2}, 3: {"a1": 4, "a2": 2}})
    scores = [("overall", "A", "a1", 2, 4.0), ("overall", "A", "a2", 2, 2.0)]
    # min_cell_size 2 (bound at the SQL level): a1 and a2 (2 ratings each) are countable; a3 has no rating.
    result = build_composites(con, categories, ratings, scores, min_evaluations=3, min_cell_size=2)
    # (4 + 2) / 2 = 3.0, not (4 + 2 + 0) / 3 = 2.0; evaluation 3 (two ratings in k) counts once.
    assert_rows(result, [("overall", "A", "k", 3, 3.0, True, 1)])


def test_composites_are_per_segment(con):
    ratings = segment_ratings("big_pharma", "A", {1: {"a1": 5}}) + segment_ratings(
        "small_pharma", "A", {2: {"a1": 1}, 3: {"a1": 2}}
    )
    scores = [
        ("big_pharma", "A", "a1", 1, 5.0),
        ("overall", "A", "a1", 3, 8 / 3),
        ("small_pharma", "A", "a1", 2, 1.5),
    ]
    # Every cell countable (min_cell_size 1, bound at the SQL level): the segments alone decide.
    result = build_composites(con, [("k", "a1")], ratings, scores, min_evaluations=2, min_cell_size=1)
    assert_rows(
        result,
        [
            ("big_pharma", "A", "k", 1, 5.0, False, None),
            ("overall", "A", "k", 3, 8 / 3, True, 1),
            ("small_pharma", "A", "k", 2, 1.5, True, 1),
        ],
    )


# --- attribute_scores / composite_scores (published) ------------------------------------------------


def test_attribute_scores_publishes_every_countable_row_labelled_sorted_contract_columns(con):
    # int_attribute_scores holds countable cells only (every row at least min_cell_size ratings): the
    # published table is each of its rows, labelled, read back in key order. The thin cells' rows never
    # reach it (test_thin_cell_counts_nowhere_not_in_overall_composite_or_n_evaluations).
    given(
        con,
        "int_attribute_scores",
        ATTRIBUTE_SCORES_SCHEMA,
        [
            ("overall", "B", "a1", 10, 2.0),
            ("overall", "A", "a2", 4, 3.25),
            ("big_pharma", "A", "a1", 3, 4.0),
            ("big_pharma", "A", "a2", 4, 3.25),
            ("big_pharma", "B", "a1", 3, 1.0),
            ("overall", "A", "a1", 3, 4.0),
            ("small_pharma", "B", "a1", 7, 16 / 7),
        ],
    )
    given_labels(con)
    sql.run(con, "attribute_scores", params(min_cell_size=3))

    assert columns_of(con, "attribute_scores") == [
        "segment",
        "cro",
        "attribute",
        "n_ratings",
        "score",
        "cro_name",
        "attribute_label",
    ]
    assert sql.key("attribute_scores") == ("segment", "cro", "attribute")
    assert_rows(
        published_rows(con, "attribute_scores"),
        [
            ("big_pharma", "A", "a1", 3, 4.0, "CRO A", "Attribute one"),
            ("big_pharma", "A", "a2", 4, 3.25, "CRO A", "Attribute two"),
            ("big_pharma", "B", "a1", 3, 1.0, "CRO B", "Attribute one"),
            ("overall", "A", "a1", 3, 4.0, "CRO A", "Attribute one"),
            ("overall", "A", "a2", 4, 3.25, "CRO A", "Attribute two"),
            ("overall", "B", "a1", 10, 2.0, "CRO B", "Attribute one"),
            ("small_pharma", "B", "a1", 7, 16 / 7, "CRO B", "Attribute one"),
        ],
    )


def test_composite_scores_every_composite_figures_only_on_eligible_rows_sorted_contract_columns(con):
    # int_composite_scores holds composites of countable cells only (n_evaluations >= min_cell_size follows):
    # every row is published; the uncertainty figures only on eligible rows (rule D3), null elsewhere.
    given(
        con,
        "int_composite_scores",
        COMPOSITE_SCHEMA,
        [
            ("overall", "B", "quality", 12, 3.5, True, 2),
            ("overall", "A", "quality", 10, 4.0, True, 1),
            ("overall", "A", "delivery", 4, 5.0, False, None),
            ("big_pharma", "C", "delivery", 3, 1.0, False, None),
            ("overall", "A", "cost", 11, 2.5, True, 1),
            ("overall", "B", "cost", 10, 2.0, True, 2),
        ],
    )
    given(
        con,
        "composite_uncertainty",
        UNCERTAINTY_SCHEMA,
        [
            figures("overall", "A", "cost", 2.0, 3.0),
            # not eligible (4 and 3 evaluations < 10): published without their figures (rule D3)
            figures("overall", "A", "delivery", 4.0, 5.0),
            figures("big_pharma", "C", "delivery", 1.0, 1.0),
            figures("overall", "B", "quality", 3.0, 4.0),
        ],
    )
    given_labels(con)
    sql.run(con, "composite_scores", params(min_cell_size=3, min_evaluations=10))

    assert columns_of(con, "composite_scores") == [*COMPOSITE_COLUMNS, *LABELS]
    assert sql.key("composite_scores") == ("segment", "cro", "category")
    assert_rows(
        published_rows(con, "composite_scores"),
        [
            ("big_pharma", "C", "delivery", 3, 1.0, False, None, *[None] * 9, "CRO C", "Delivery"),
            ("overall", "A", "cost", 11, 2.5, True, 1, 2.0, 3.0, 2.5, 0.25, 0.5, 1, 3, True, 2.0, "CRO A", "Cost"),
            ("overall", "A", "delivery", 4, 5.0, False, None, *[None] * 9, "CRO A", "Delivery"),
            ("overall", "A", "quality", 10, 4.0, True, 1, *[None] * 9, "CRO A", "Quality"),
            ("overall", "B", "cost", 10, 2.0, True, 2, *[None] * 9, "CRO B", "Cost"),
            (
                "overall",
                "B",
                "quality",
                12,
                3.5,
                True,
                2,
                3.0,
                4.0,
                3.5,
                0.25,
                0.5,
                1,
                3,
                True,
                3.0,
                "CRO B",
                "Quality",
            ),
        ],
    )


def test_thin_cell_counts_nowhere_not_in_overall_composite_or_n_evaluations(con):
    # The chain from the accepted ratings to the published tables, by the real files. min_cell_size 3,
    # min_evaluations 3; k = a1, a2.
    # A, Small Pharma: a1 by rows 1, 2, 3 (3 each: countable, 3.0); a2 by rows 1 and 4 only (5 each: thin).
    # A, Big Pharma: a1 by rows 5, 6, 7 (5 each: countable, 5.0); a2 by rows 5 and 6 (1 each: thin).
    # B, Small Pharma: a1 by rows 8 and 9 only (thin): B has no row anywhere.
    # So: no a2 row in any segment, not even overall although A's two a2 cells pool to 4 ratings;
    # overall a1 pools the countable cells, (9 + 15) / 6 = 4.0. A's Small Pharma composite is 3.0, not
    # (3 + 5) / 2 = 4.0 (the old rule counted the thin a2 in it), over rows {1, 2, 3}: row 4, whose only
    # rating is the thin a2, is not an evaluation of the category. Big Pharma: 5.0 over {5, 6, 7}.
    # Overall: the mean of the overall attribute scores, a1 alone, 4.0, over the 6 evaluations {1, 2, 3,
    # 5, 6, 7} (not 8: rows 4 and 8, 9 count nowhere).
    given(con, "category_attributes", CATEGORY_SCHEMA, [("k", "a1"), ("k", "a2")])
    given_accepted(
        con,
        segment_ratings("small_pharma", "A", {1: {"a1": 3, "a2": 5}, 2: {"a1": 3}, 3: {"a1": 3}, 4: {"a2": 5}})
        + segment_ratings("big_pharma", "A", {5: {"a1": 5, "a2": 1}, 6: {"a1": 5, "a2": 1}, 7: {"a1": 5}})
        + segment_ratings("small_pharma", "B", {8: {"a1": 2}, 9: {"a1": 4}}),
    )
    given(con, "composite_uncertainty", UNCERTAINTY_SCHEMA, [])
    given_labels(con)
    run_chain(
        con,
        ("int_not_counted", "int_contributions", "attribute_scores", "composite_scores"),
        params(min_cell_size=3, min_evaluations=3),
    )

    assert_rows(
        published_rows(con, "attribute_scores"),
        [
            ("big_pharma", "A", "a1", 3, 5.0, "CRO A", "Attribute one"),
            ("overall", "A", "a1", 6, 4.0, "CRO A", "Attribute one"),
            ("small_pharma", "A", "a1", 3, 3.0, "CRO A", "Attribute one"),
        ],
    )
    assert_rows(
        rows_of(con, "int_composite_scores", "segment, cro, category"),
        [
            ("big_pharma", "A", "k", 3, 5.0, True, 1),
            ("overall", "A", "k", 6, 4.0, True, 1),
            ("small_pharma", "A", "k", 3, 3.0, True, 1),
        ],
    )
    assert_rows(
        published_rows(con, "composite_scores"),
        [
            ("big_pharma", "A", "k", 3, 5.0, True, 1, *[None] * 9, "CRO A", "K"),
            ("overall", "A", "k", 6, 4.0, True, 1, *[None] * 9, "CRO A", "K"),
            ("small_pharma", "A", "k", 3, 3.0, True, 1, *[None] * 9, "CRO A", "K"),
        ],
    )
    assert [row[0] for row in rows_of(con, "int_contributions", "source_row")] == [1, 2, 3, 5, 6, 7]
    # D6 accounting: Big Pharma A/a2 (2 ratings); Small Pharma A/a2 and B/a1 (2 + 2).
    assert_rows(rows_of(con, "int_not_counted", "segment"), [("big_pharma", 1, 2), ("small_pharma", 2, 4)])


# --- rejected_evaluations ---------------------------------------------------------------------------


FIELDS_SCHEMA = [("source_row", INT), ("field_1", STR), ("field_2", STR), ("field_3", STR), ("field_4", STR)]
EXPORT_COLUMNS_SCHEMA = [("field", STR), ("position", INT), ("column_name", STR)]


def given_export_columns(con, names: list[str]) -> None:
    given(con, "export_columns", EXPORT_COLUMNS_SCHEMA, [(f"field_{i}", i, n) for i, n in enumerate(names, start=1)])


def given_reason_fields(con, rows: list[tuple[int, str, int, list[str]]]) -> None:
    """int_rejected_reason_fields rows: (source_row, reason, reason_order, column_names)."""
    given(
        con,
        "int_rejected_reason_fields",
        [("source_row", INT), ("reason", STR), ("reason_order", pa.int32()), ("column_names", REASONS)],
        rows,
    )


def test_rejected_evaluations_joins_well_formed_and_malformed_rows_sorted(con):
    given(
        con,
        "int_rejected_evaluations",
        [("source_row", INT), ("reasons", REASONS)],
        [
            (4, ["malformed_row"]),
            (3, ["invalid_rd_spend", "unknown_cro"]),
            (1, ["no_ratings"]),
        ],
    )
    given(
        con,
        "raw_export",
        FIELDS_SCHEMA,
        [
            (1, "R1", "10", "Acme", " "),
            (2, "R2", "20", "Acme", "4"),
            (3, "R3", "lots", "Nobody", "5"),
        ],
    )
    given(con, "malformed_rows", [*FIELDS_SCHEMA, ("raw_text", STR)], [(4, "R4", "30", None, None, "R4,30")])
    given_export_columns(con, ["respondent_id", "rd_spend_musd", "cro", "a1"])
    given_reason_fields(
        con,
        [
            (4, "malformed_row", 0, []),
            (3, "unknown_cro", 3, ["cro"]),
            (3, "invalid_rd_spend", 2, ["rd_spend_musd"]),
            (1, "no_ratings", 7, ["a1"]),
        ],
    )
    sql.run(con, "rejected_evaluations", params())

    assert columns_of(con, "rejected_evaluations") == ["source_row", "reasons", "reason_fields", "raw_text", "fields"]
    assert sql.key("rejected_evaluations") == ("source_row",)
    assert [(row[0], row[1], row[3]) for row in published_rows(con, "rejected_evaluations")] == [
        (1, ["no_ratings"], None),
        (3, ["invalid_rd_spend", "unknown_cro"], None),
        (4, ["malformed_row"], "R4,30"),
    ]
    # reason_fields: a map from each reason, in the reasons' order, to its columns
    assert [list(row[2].items()) for row in published_rows(con, "rejected_evaluations")] == [
        [("no_ratings", ["a1"])],
        [("invalid_rd_spend", ["rd_spend_musd"]), ("unknown_cro", ["cro"])],
        [("malformed_row", [])],
    ]
    # fields: a map from column name to text, in header order (DuckDB gives a map back as a dict)
    assert [list(row[4].items()) for row in published_rows(con, "rejected_evaluations")] == [
        [("respondent_id", "R1"), ("rd_spend_musd", "10"), ("cro", "Acme"), ("a1", " ")],
        [("respondent_id", "R3"), ("rd_spend_musd", "lots"), ("cro", "Nobody"), ("a1", "5")],
        [("respondent_id", "R4"), ("rd_spend_musd", "30"), ("cro", None), ("a1", None)],
    ]


def test_rejected_evaluations_keeps_colliding_column_names_apart(con, tmp_path):
    # Export columns named like the quarantine's own columns, and two differing only in case: each is one
    # entry of `fields` under its name as written; the quarantine's source_row, reasons and raw_text stand.
    given(con, "int_rejected_evaluations", [("source_row", INT), ("reasons", REASONS)], [(2, ["unknown_cro"])])
    given(
        con,
        "raw_export",
        FIELDS_SCHEMA,
        [(1, "Acme", "acme", "9", "ok"), (2, "Nobody", "NOBODY", "77", "text")],
    )
    given(con, "malformed_rows", [*FIELDS_SCHEMA, ("raw_text", STR)], [])
    given_export_columns(con, ["cro", "CRO", "source_row", "raw_text"])
    given_reason_fields(con, [(2, "unknown_cro", 3, ["cro"])])
    sql.run(con, "rejected_evaluations", params())

    [(source_row, reasons, reason_fields, raw_text, fields)] = published_rows(con, "rejected_evaluations")
    assert (source_row, reasons, reason_fields, raw_text) == (2, ["unknown_cro"], {"unknown_cro": ["cro"]}, None)
    assert list(fields.items()) == [("cro", "Nobody"), ("CRO", "NOBODY"), ("source_row", "77"), ("raw_text", "text")]
    # As Parquet (as the quarantine is written), read back by column name in DuckDB
    import pyarrow.parquet as pq

    path = tmp_path / "rejected_evaluations.parquet"
    pq.write_table(con.sql("select * from rejected_evaluations").to_arrow_table(), path)
    assert con.execute(
        "select source_row, fields['cro'], fields['CRO'], fields['source_row'], fields['nothing'] "
        "from read_parquet($path)",
        {"path": str(path)},
    ).fetchall() == [(2, "Nobody", "NOBODY", "77", None)]


def test_rejected_evaluations_empty_quarantine(con):
    given(con, "int_rejected_evaluations", [("source_row", INT), ("reasons", REASONS)], [])
    given(con, "raw_export", FIELDS_SCHEMA, [(1, "R1", "10", "Acme", "4")])
    given(con, "malformed_rows", [*FIELDS_SCHEMA, ("raw_text", STR)], [])
    given_export_columns(con, ["respondent_id", "rd_spend_musd", "cro", "a1"])
    given_reason_fields(con, [])
    sql.run(con, "rejected_evaluations", params())
    assert columns_of(con, "rejected_evaluations") == ["source_row", "reasons", "reason_fields", "raw_text", "fields"]
    assert published_rows(con, "rejected_evaluations") == []


def test_parameters_bound_as_production_binds_them():
    bound = params()
    assert bound["tolerance"] == 1e-9
    assert bound["whitespace"] == " \t\r\n\u00a0"


def test_spend_too_long_for_a_decimal_is_compared_as_a_double(con):
    given(con, "int_evaluations", INT_EVALUATIONS_SCHEMA, [(1, "R1", "A", 1e25, None)])
    given(con, "stg_ratings", STG_RATINGS_SCHEMA, [(1, "a1", "4", 4.0)])
    given(con, "int_rejected_evaluations", [("source_row", INT), ("reasons", REASONS)], [])
    run_accepted_ratings(con, params(big_pharma_min_rd_spend_musd=1000))
    assert rows_of(con, "int_accepted_ratings", "segment") == [("big_pharma", "A", 1, "a1", 4.0)]


# --- the survey year's sources (cro_awards.method.transform.survey_tables) ---------------------------------


def test_survey_tables_map_every_spelling_to_the_cro_id_and_label_ids():
    # One id given (`nw`), one derived from a name with an accent and punctuation (`cafe_labs_inc`).
    survey = SurveyConfig(
        survey_year=2024,
        survey_close=dt.date(2024, 2, 29),
        cros=[
            {"id": "nw", "name": "Northwind Clinical", "aliases": ["Northwind", "NWC"]},
            {"name": "Café Labs, Inc."},
        ],
        attributes={"a1": "Attribute one", "a2": "Attribute two"},
        categories={"quality": ("a1", "a2"), "phase_iv": ("a2",)},
    )
    tables = {name: table.to_pylist() for name, table in survey_tables(survey).items()}
    assert set(tables) == {"ballot", "category_attributes", "cro_labels", "attribute_labels", "category_labels"}
    assert tables["ballot"] == [
        {"spelling": "Northwind Clinical", "cro": "nw"},
        {"spelling": "Northwind", "cro": "nw"},
        {"spelling": "NWC", "cro": "nw"},
        {"spelling": "Café Labs, Inc.", "cro": "cafe_labs_inc"},
    ]
    assert tables["cro_labels"] == [
        {"cro": "nw", "cro_name": "Northwind Clinical"},
        {"cro": "cafe_labs_inc", "cro_name": "Café Labs, Inc."},
    ]
    assert tables["attribute_labels"] == [
        {"attribute": "a1", "attribute_label": "Attribute one"},
        {"attribute": "a2", "attribute_label": "Attribute two"},
    ]
    assert tables["category_labels"] == [
        {"category": "quality", "category_label": "Quality"},
        {"category": "phase_iv", "category_label": "Phase iv"},
    ]
    assert all(name in sql.SOURCES for name in tables)
