"""The awards rules (sql/awards.sql), unit-tested on literal `int_composite_scores` tables.

Every expected value is worked out by hand in the comments: weights are n_evaluations, the weighted
standard deviation is the population form sqrt(sum w (x - mean)^2 / sum w), threshold = mean +
champion_sd_multiplier * sd, and every comparison carries the 1e-9 tolerance. The CROs' ids are A, B,
...; their labels (`cro_labels`: "CRO A", ...; `category_labels`: "Delivery", ...) are appended last.
Expected rows are (segment, category, cro, award, composite, weighted_mean, weighted_sd, threshold), in
published order:
the order of the key in awards.sql's header (segment, category, cro, award), which is how production
reads the table back (`sql.sorted_query`; the file itself does not sort).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pytest

from cro_awards.engine import graph, sql
from cro_awards.method import uncertainty
from cro_awards.method.transform import method_parameters
from cro_awards.reading.config import SurveyConfig

STR = pa.string()
INT = pa.int64()
DBL = pa.float64()

AWARDS_COLUMNS = [
    "segment", "category", "cro", "award", "composite", "weighted_mean", "weighted_sd", "threshold",
    "p_award", "is_robust", "cro_name", "category_label",
]  # fmt: skip
OFFICIAL_COLUMNS = AWARDS_COLUMNS[:8]
"""What the official rule decides; p_award and is_robust come from the resampling (tested at the end)."""
COMPOSITE_SCHEMA = pa.schema(
    [
        ("segment", STR),
        ("cro", STR),
        ("category", STR),
        ("n_evaluations", INT),
        ("composite", DBL),
        ("is_eligible", pa.bool_()),
        ("rank", INT),
    ]
)


def params(**knobs: Any) -> dict[str, Any]:
    """The parameters production binds (`method_parameters`), for a survey with these method knobs."""
    survey = SurveyConfig(
        survey_year=2024,
        survey_close=dt.date(2024, 2, 29),
        cros=[{"name": "Acme"}],
        attributes={"a1": "Attribute one"},
        categories={"k": ("a1",)},
        **knobs,
    )
    return method_parameters(survey)


def eligible(
    cro: str, n_evaluations: int, composite: float, rank: int = 1, segment: str = "overall", category: str = "delivery"
) -> tuple:
    """One eligible int_composite_scores row (rank is not read by awards.sql)."""
    return (segment, cro, category, n_evaluations, composite, True, rank)


def ineligible(
    cro: str, n_evaluations: int, composite: float, segment: str = "overall", category: str = "delivery"
) -> tuple:
    return (segment, cro, category, n_evaluations, composite, False, None)


def given_labels(con, composites: list[tuple]) -> None:
    """The label sources for the CROs and categories of these int_composite_scores rows: "CRO A", "Delivery"."""
    cros = sorted({row[1] for row in composites})
    categories = sorted({row[2] for row in composites})
    con.register("cro_labels", pa.table({"cro": cros, "cro_name": [f"CRO {cro}" for cro in cros]}))
    con.register(
        "category_labels",
        pa.table({"category": categories, "category_label": [category.capitalize() for category in categories]}),
    )


def awards(con, composites: list[tuple], figures: list[tuple] = (), **knobs: Any) -> list[tuple]:
    """Run awards.sql on these int_composite_scores rows (and composite_uncertainty rows, none by default);
    return its official columns in published (key) order."""
    columns = {name: [row[i] for row in composites] for i, name in enumerate(COMPOSITE_SCHEMA.names)}
    con.register("int_composite_scores", pa.table(columns, schema=COMPOSITE_SCHEMA))
    names = uncertainty.SCHEMA.names
    con.register(
        "composite_uncertainty",
        pa.table({name: [row[i] for row in figures] for i, name in enumerate(names)}, schema=uncertainty.SCHEMA),
    )
    given_labels(con, composites)
    sql.run(con, "int_award_readings", params(**knobs))
    sql.run(con, "awards", params(**knobs))
    assert [d[0] for d in con.execute("select * from awards limit 0").description] == AWARDS_COLUMNS
    return published(con)


def published(con, columns: list[str] = OFFICIAL_COLUMNS) -> list[tuple]:
    """The awards table as production reads it back: sorted by the key of its header."""
    assert sql.key("awards") == ("segment", "category", "cro", "award")
    return con.execute(f"select {', '.join(columns)} from ({sql.sorted_query('awards')})").fetchall()


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


@pytest.fixture
def con():
    """A fresh workspace's connection (memory-bounded, its own spill folder, removed afterwards)."""
    workspace = graph.Workspace.open()
    yield workspace.connection
    workspace.close()


def test_leader_and_champion_are_two_rows(con):
    # w = 10, 30, 10; x = 4, 3, 2. mean = (40 + 90 + 20) / 50 = 3.0.
    # sum w (x - mean)^2 = 10 + 0 + 10 = 20; sd = sqrt(20 / 50); threshold = 3 + sqrt(0.4) = 3.632...
    rows = awards(con, [eligible("A", 10, 4.0), eligible("B", 30, 3.0, 2), eligible("C", 10, 2.0, 3)])
    sd = math.sqrt(20 / 50)
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "champion", 4.0, 3.0, sd, 3.0 + sd),
            ("overall", "delivery", "A", "leader", 4.0, 3.0, sd, 3.0 + sd),
        ],
    )


def test_weighted_sd_is_population_form(con):
    # w = 10, 10, 20; x = 5, 3, 3. mean = (50 + 30 + 60) / 40 = 3.5.
    # sum w (x - mean)^2 = 10 * 2.25 + 10 * 0.25 + 20 * 0.25 = 30.
    # population: sqrt(30 / 40) = 0.8660...; not the sample form sqrt(30 / 39) = 0.8770...,
    # nor the unweighted sd of (5, 3, 3) = sqrt(8 / 9) = 0.9428...
    rows = awards(con, [eligible("A", 10, 5.0), eligible("B", 10, 3.0, 2), eligible("C", 20, 3.0, 2)])
    sd = math.sqrt(30 / 40)
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "champion", 5.0, 3.5, sd, 3.5 + sd),
            ("overall", "delivery", "A", "leader", 5.0, 3.5, sd, 3.5 + sd),
        ],
    )
    assert rows[0][6] == pytest.approx(0.8660254037844386, abs=1e-12)
    assert abs(rows[0][6] - math.sqrt(30 / 39)) > 1e-3


# w = 10, 10, 60; x = 5, 1, 3. mean = (50 + 10 + 180) / 80 = 3 and sum w (x - mean)^2 = 40 + 40 + 0 = 80,
# so sd = sqrt(80 / 80) = 1, all exact in binary: with champion_sd_multiplier m the threshold is 3 + m.
EXACT_CELL = [eligible("A", 10, 5.0), eligible("B", 10, 1.0, 3), eligible("C", 60, 3.0, 2)]


def test_champion_exactly_at_threshold(con):
    rows = awards(con, EXACT_CELL, champion_sd_multiplier=2.0)
    assert rows[0][7] == 5.0  # precondition: the threshold is exactly A's composite
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "champion", 5.0, 3.0, 1.0, 5.0),
            ("overall", "delivery", "A", "leader", 5.0, 3.0, 1.0, 5.0),
        ],
    )


def test_champion_within_1e_9_below_threshold(con):
    rows = awards(con, EXACT_CELL, champion_sd_multiplier=2.0 + 5e-10)
    assert rows[0][7] > 5.0  # precondition: A (5.0) is below the threshold 5 + 5e-10
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "champion", 5.0, 3.0, 1.0, 5.0 + 5e-10),
            ("overall", "delivery", "A", "leader", 5.0, 3.0, 1.0, 5.0 + 5e-10),
        ],
    )


def test_more_than_1e_9_below_threshold_is_not_champion(con):
    rows = awards(con, EXACT_CELL, champion_sd_multiplier=2.0 + 2e-9)
    assert_rows(rows, [("overall", "delivery", "A", "leader", 5.0, 3.0, 1.0, 5.0 + 2e-9)])


def test_tie_for_leader_both_lead(con):
    # w = 10, 20, 10; x = 4, 4, 2. mean = (40 + 80 + 20) / 40 = 3.5;
    # sum w (x - mean)^2 = 2.5 + 5 + 22.5 = 30; sd = sqrt(0.75) = 0.866; threshold 4.366 > 4: no champion.
    rows = awards(con, [eligible("A", 10, 4.0), eligible("B", 20, 4.0), eligible("C", 10, 2.0, 3)])
    sd = math.sqrt(30 / 40)
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "leader", 4.0, 3.5, sd, 3.5 + sd),
            ("overall", "delivery", "B", "leader", 4.0, 3.5, sd, 3.5 + sd),
        ],
    )


def test_leader_within_1e_9_of_max_also_leads(con):
    # x = 4, 4 - 5e-10, 4 - 2e-9, 2 (w = 10 each): B is within 1e-9 of the max, C is not.
    # mean = 3.5 - 6.25e-10, sd = sqrt(0.75) up to ~1e-9; threshold 4.366: no champion.
    rows = awards(
        con,
        [
            eligible("A", 10, 4.0),
            eligible("B", 10, 4.0 - 5e-10),
            eligible("C", 10, 4.0 - 2e-9, 3),
            eligible("D", 10, 2.0, 4),
        ],
    )
    sd = math.sqrt(0.75)
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "leader", 4.0, 3.5, sd, 3.5 + sd),
            ("overall", "delivery", "B", "leader", 4.0 - 5e-10, 3.5, sd, 3.5 + sd),
        ],
    )


def test_cell_below_min_cros_for_awards_gets_no_awards(con):
    # delivery: 2 eligible CROs (< 3) and an ineligible one: no awards at all.
    # quality: 3 eligible, w = 10 each, x = 4, 3, 2: mean 3, sd = sqrt(2 / 3), threshold 3.816.
    rows = awards(
        con,
        [
            eligible("A", 10, 4.0),
            eligible("B", 10, 3.0, 2),
            ineligible("C", 9, 5.0),
            eligible("A", 10, 4.0, category="quality"),
            eligible("B", 10, 3.0, 2, category="quality"),
            eligible("C", 10, 2.0, 3, category="quality"),
        ],
        min_cros_for_awards=3,
    )
    sd = math.sqrt(2 / 3)
    assert_rows(
        rows,
        [
            ("overall", "quality", "A", "champion", 4.0, 3.0, sd, 3.0 + sd),
            ("overall", "quality", "A", "leader", 4.0, 3.0, sd, 3.0 + sd),
        ],
    )


def test_cell_with_exactly_min_cros_for_awards_gets_awards(con):
    rows = awards(con, [eligible("A", 10, 4.0), eligible("B", 10, 3.0, 2)], min_cros_for_awards=2)
    # w = 10, 10; x = 4, 3: mean 3.5, sd 0.5, threshold 4.0 = A: champion at the threshold.
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "champion", 4.0, 3.5, 0.5, 4.0),
            ("overall", "delivery", "A", "leader", 4.0, 3.5, 0.5, 4.0),
        ],
    )


@pytest.mark.parametrize("multiplier", [0.0, 1.0])
def test_all_equal_composites_give_leaders_but_no_champions(con, multiplier):
    # 2.4000000000000004 is (1.6 + 3.2) / 2 in binary, one ulp above 2.4: equal within the tolerance.
    # mean = 2.4, sd ~ 0: everyone reaches the threshold, but nobody is above the mean by > 1e-9.
    rows = awards(
        con,
        [
            eligible("A", 10, 2.4000000000000004),
            eligible("B", 20, 2.4),
            eligible("C", 30, 2.4),
        ],
        champion_sd_multiplier=multiplier,
    )
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "leader", 2.4, 2.4, 0.0, 2.4),
            ("overall", "delivery", "B", "leader", 2.4, 2.4, 0.0, 2.4),
            ("overall", "delivery", "C", "leader", 2.4, 2.4, 0.0, 2.4),
        ],
    )


def test_ineligible_cro_not_ranked_nor_awarded_and_a_thin_cro_counted_nowhere(con):
    # int_composite_scores by the real chain from literal accepted ratings (all Small Pharma, so overall
    # repeats that segment), then awards. min_cell_size 3, min_evaluations 4, min_cros_for_awards 3.
    # A: 4 evaluations of 4; B: 4 of 3; C: 4 of 2; D: 3 of 5 (highest composite, countable, but not
    # eligible); E: 2 of 5 (a thin cell: no composite at all, in no weight or mean).
    ratings = [
        ("small_pharma", cro, row, "a1", value)
        for cro, rows, value in [
            ("A", (1, 2, 3, 4), 4.0),
            ("B", (5, 6, 7, 8), 3.0),
            ("C", (9, 10, 11, 12), 2.0),
            ("D", (13, 14, 15), 5.0),
            ("E", (16, 17), 5.0),
        ]
        for row in rows
    ]
    con.register(
        "int_accepted_ratings",
        pa.table(
            {
                name: [r[i] for r in ratings]
                for i, name in enumerate(["segment", "cro", "source_row", "attribute", "rating_value"])
            },
            schema=pa.schema(
                [("segment", STR), ("cro", STR), ("source_row", INT), ("attribute", STR), ("rating_value", DBL)]
            ),
        ),
    )
    con.register(
        "int_accepted_evaluations",
        pa.table(
            {
                "source_row": pa.array([r[2] for r in ratings], INT),
                "respondent_id": [f"R{r[2]}" for r in ratings],
                "cro": [r[1] for r in ratings],
                "segment": [r[0] for r in ratings],
            }
        ),
    )
    con.register("category_attributes", pa.table({"category": ["delivery"], "attribute": ["a1"]}))
    con.register("composite_uncertainty", uncertainty.SCHEMA.empty_table())
    given_labels(con, [("overall", cro, "delivery") for cro in "ABCDE"])
    con.register("attribute_labels", pa.table({"attribute": ["a1"], "attribute_label": ["Attribute one"]}))
    knobs = params(min_evaluations=4, min_cell_size=3, min_cros_for_awards=3)
    # Every file from the accepted ratings on (int_rating_cells, int_counted_ratings, int_attribute_scores,
    # int_contributions, int_composite_scores), in graph order, then awards.
    given = set(graph.run_order(("int_accepted_ratings", "int_accepted_evaluations")))
    for name in graph.run_order(("awards",)):
        if name not in given:
            sql.run(con, name, knobs)

    # D is not counted above anyone: A, B, C rank 1, 2, 3; D has no rank; E has no row.
    for segment in ("overall", "small_pharma"):
        assert_rows(
            con.execute(f"select * from int_composite_scores where segment = '{segment}' order by cro").fetchall(),
            [
                (segment, "A", "delivery", 4, 4.0, True, 1),
                (segment, "B", "delivery", 4, 3.0, True, 2),
                (segment, "C", "delivery", 4, 2.0, True, 3),
                (segment, "D", "delivery", 3, 5.0, False, None),
            ],
        )
    # Awards over A, B, C only: w = 4 each, mean 3, sd = sqrt((4 + 0 + 4) / 12), threshold 3.816.
    sd = math.sqrt(8 / 12)
    assert_rows(
        published(con),
        [
            ("overall", "delivery", "A", "champion", 4.0, 3.0, sd, 3.0 + sd),
            ("overall", "delivery", "A", "leader", 4.0, 3.0, sd, 3.0 + sd),
            ("small_pharma", "delivery", "A", "champion", 4.0, 3.0, sd, 3.0 + sd),
            ("small_pharma", "delivery", "A", "leader", 4.0, 3.0, sd, 3.0 + sd),
        ],
    )


def test_awards_per_cell_sorted_by_segment_category_cro_award(con):
    # Three cells given in scrambled order; w = 10 everywhere.
    # overall/cost: x = 4, 4, 1 -> mean 3, sum w (x - mean)^2 = 10 + 10 + 40 = 60, sd = sqrt(60 / 30),
    #   threshold 4.414: A and B lead, no champion.
    # overall/delivery: x = 1, 3, 2 -> mean 2, sd = sqrt(20 / 30), threshold 2.816: B leads and is champion.
    # small_pharma/quality: x = 2, 2, 5 -> mean 3, sd = sqrt(60 / 30), threshold 4.414: C leads, champion.
    rows = awards(
        con,
        [
            eligible("C", 10, 5.0, segment="small_pharma", category="quality"),
            eligible("B", 10, 3.0),
            eligible("B", 10, 4.0, category="cost"),
            eligible("A", 10, 2.0, segment="small_pharma", category="quality"),
            eligible("A", 10, 1.0),
            eligible("C", 10, 1.0, category="cost"),
            eligible("B", 10, 2.0, segment="small_pharma", category="quality"),
            eligible("A", 10, 4.0, category="cost"),
            eligible("C", 10, 2.0),
        ],
    )
    sd2, sd_delivery = math.sqrt(2.0), math.sqrt(20 / 30)
    assert_rows(
        rows,
        [
            ("overall", "cost", "A", "leader", 4.0, 3.0, sd2, 3.0 + sd2),
            ("overall", "cost", "B", "leader", 4.0, 3.0, sd2, 3.0 + sd2),
            ("overall", "delivery", "B", "champion", 3.0, 2.0, sd_delivery, 2.0 + sd_delivery),
            ("overall", "delivery", "B", "leader", 3.0, 2.0, sd_delivery, 2.0 + sd_delivery),
            ("small_pharma", "quality", "C", "champion", 5.0, 3.0, sd2, 3.0 + sd2),
            ("small_pharma", "quality", "C", "leader", 5.0, 3.0, sd2, 3.0 + sd2),
        ],
    )


def test_two_champions_one_leader_sorted_by_cro_then_award(con):
    # w = 10 each; x = 5, 4, 1, 2: mean 3, sum w (x - mean)^2 = 40 + 10 + 40 + 10 = 100, sd = sqrt(100 / 40);
    # multiplier 0.5: threshold 3 + 0.5 * 1.581 = 3.79. A (max) leads and is champion; B is champion only.
    rows = awards(
        con,
        [
            eligible("D", 10, 2.0, 3),
            eligible("B", 10, 4.0, 2),
            eligible("C", 10, 1.0, 4),
            eligible("A", 10, 5.0),
        ],
        champion_sd_multiplier=0.5,
    )
    sd = math.sqrt(100 / 40)
    assert_rows(
        rows,
        [
            ("overall", "delivery", "A", "champion", 5.0, 3.0, sd, 3.0 + 0.5 * sd),
            ("overall", "delivery", "A", "leader", 5.0, 3.0, sd, 3.0 + 0.5 * sd),
            ("overall", "delivery", "B", "champion", 4.0, 3.0, sd, 3.0 + 0.5 * sd),
        ],
    )


# --- p_award, is_robust and the shrunk rule (figures from cro_awards/method/uncertainty.py, given literally) ------


def figure(
    cro: str,
    shrunk: float,
    p_leader: float,
    p_champion: float,
    category: str = "delivery",
    adjusted: tuple[float, float, float] = (None, None, None),
) -> tuple:
    """A composite_uncertainty row: only composite_shrunk, the posterior probabilities and the adjusted
    reading (composite_adjusted, p_leader_adjusted, p_champion_adjusted) matter here."""
    return ("overall", cro, category, None, None, shrunk, None, None, None, None, None, p_leader, p_champion, *adjusted)


THREE = [eligible("A", 10, 4.6), eligible("B", 40, 4.5), eligible("C", 50, 3.9)]
# mean (46 + 180 + 195) / 100 = 4.21; sd sqrt((10 * 0.1521 + 40 * 0.0841 + 50 * 0.0961) / 100) = 0.3105;
# threshold 4.5205: A (4.6) leads and is champion; B (4.5) is 0.02 below the threshold.
SHRUNK = [figure("A", 4.40, 0.35, 0.55), figure("B", 4.45, 0.60, 0.85), figure("C", 3.95, 0.05, 0.0)]


def test_p_award_is_the_posterior_probability_of_the_award_and_robust_from_the_knob(con):
    awards(con, THREE, SHRUNK)
    rows = published(con, ["cro", "award", "p_award", "is_robust"])
    assert rows == [("A", "champion", 0.55, False), ("A", "leader", 0.35, False)]
    awards(con, THREE, SHRUNK, robust_award_probability=0.5)
    assert published(con, ["cro", "award", "is_robust"]) == [("A", "champion", True), ("A", "leader", False)]


def test_the_labels_come_last_from_the_label_sources(con):
    # Two cells (delivery, quality), each led by its own CRO: the labels follow the row's cro and category.
    composites = [
        eligible("A", 10, 4.0),
        eligible("B", 10, 2.0, 2),
        eligible("C", 10, 3.0, 3),
        eligible("A", 10, 1.0, 3, category="quality"),
        eligible("B", 10, 5.0, 1, category="quality"),
        eligible("C", 10, 3.0, 2, category="quality"),
    ]
    awards(con, composites, min_cros_for_awards=3, champion_sd_multiplier=2.0)
    assert published(con, ["category", "cro", "award", "cro_name", "category_label"]) == [
        ("delivery", "A", "leader", "CRO A", "Delivery"),
        ("quality", "B", "leader", "CRO B", "Quality"),
    ]


def test_without_figures_p_award_and_is_robust_are_null(con):
    awards(con, THREE)
    assert published(con, ["cro", "award", "p_award", "is_robust"]) == [
        ("A", "champion", None, None),
        ("A", "leader", None, None),
    ]


def test_the_shrunk_rule_names_the_highest_shrunk_composite_and_probable_champions(con):
    # Shrunk, B (4.45) overtakes A (4.40): B leads. Champions: p_champion_deserved >= 0.8: B (0.85) only.
    awards(con, THREE, SHRUNK, award_rule="shrunk")
    assert published(con, ["cro", "award", "composite", "p_award", "is_robust"]) == [
        ("B", "champion", 4.5, 0.85, True),
        ("B", "leader", 4.5, 0.60, False),
    ]
    # The official rule on the same figures: A leads and is champion, whatever the probabilities.
    awards(con, THREE, SHRUNK, award_rule="official")
    assert [row[:2] for row in published(con)] == [("overall", "delivery")] * 2
    assert published(con, ["cro", "award"]) == [("A", "champion"), ("A", "leader")]


def test_the_shrunk_rule_names_no_leader_where_every_composite_shrinks_to_the_mean(con):
    # tau^2 = 0: every shrunk composite is the cell's mean (4.21); p_champion_deserved is 0, p_leader 1/3.
    flat = [figure(cro, 4.21, 1 / 3, 0.0) for cro in ("A", "B", "C")]
    assert awards(con, THREE, flat, award_rule="shrunk") == []
    assert [row[3] for row in awards(con, THREE, flat)] == ["champion", "leader"]  # official: A still wins


ADJUSTED = [
    figure("A", 4.40, 0.35, 0.55, adjusted=(4.20, 0.30, 0.40)),
    figure("B", 4.45, 0.60, 0.85, adjusted=(4.30, 0.65, 0.50)),
    figure("C", 3.95, 0.05, 0.0, adjusted=(4.25, 0.05, 0.10)),
]
# Adjusted composites 4.20, 4.30, 4.25: mean (42 + 172 + 212.5) / 100 = 4.265; sd sqrt((10 * 0.004225 +
# 40 * 0.001225 + 50 * 0.000225) / 100) = 0.010259; threshold 4.27526: B (4.30) leads and is champion.


def test_the_adjusted_rule_is_the_official_rule_on_the_adjusted_composites(con):
    awards(con, THREE, ADJUSTED, award_rule="adjusted")
    # composite stays the official figure (4.5); p_award is the adjusted reading's, below 0.8: not robust
    rows = published(con, ["cro", "award", "composite", "p_award", "is_robust"])
    assert rows == [("B", "champion", 4.5, 0.50, False), ("B", "leader", 4.5, 0.65, False)]


def test_every_reading_is_kept_for_the_report_whichever_rule_names_the_awards(con):
    awards(con, THREE, ADJUSTED, award_rule="official")
    readings = con.execute(f"select reading, cro, award from ({sql.sorted_query('int_award_readings')})").fetchall()
    assert readings == [
        ("adjusted", "B", "champion"),
        ("adjusted", "B", "leader"),
        ("official", "A", "champion"),
        ("official", "A", "leader"),
        ("shrunk", "B", "champion"),
        ("shrunk", "B", "leader"),
    ]


def test_without_an_adjusted_composite_the_adjusted_reading_names_nobody(con):
    # No resampling (no composite_uncertainty rows): only the official reading names awards.
    awards(con, THREE)
    assert con.execute("select distinct reading from int_award_readings").fetchall() == [("official",)]
