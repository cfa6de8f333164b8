"""The disclosure audit's checks (sql/audit/*.sql, run by `cro_awards.disclosure.audit.audit`), unit-tested on
literal published tables (Arrow, as they would be written).

A clean set of attribute_scores, composite_scores and awards, worked out by hand below, passes every
check; each planted breach is found by exactly the check it breaks, which names the cell (segment, CRO,
attribute or category) and nothing else. The end-to-end guard (a planted bug in the pipeline stopping a
run) is in test_disclosure_planted.py and test_disclosure_rule.py.

The clean set (min_cell_size 3, min_evaluations 5, min_cros_for_awards 2, champion_sd_multiplier 1;
category k = a1, a2). Rating sums are whole numbers: score x n_ratings.
- A: big_pharma a1 3 ratings, 4.0 (12); small_pharma a1 4, 3.0 (12) and a2 3, 5.0 (15); overall a1
  7, 24/7 (12 + 12); overall a2 3, 5.0.
  Composites: big_pharma (4.0) over 3 evaluations (not eligible); small_pharma (3 + 5) / 2 = 4.0 over 5
  (between the thickest attribute, 4, and the total, 7); overall (24/7 + 5) / 2 = 59/14 over 3 + 5 = 8.
- B: small_pharma and overall a1 5 ratings, 2.0 (10); composites 2.0 over 5, eligible.
- C: small_pharma and overall a1 3 ratings, 3.0 (9) and a2 4 ratings, 4.0 (16); composites 3.5 over 4
  evaluations (not eligible: no award, no figure).
- Awards, small_pharma/k: A 4.0 and B 2.0, w = 5 each: mean 3, sd = sqrt((5 + 5) / 10) = 1, threshold 4:
  A leads and is champion (at the threshold). overall/k: A 59/14 (w 8) and B 2.0 (w 5): A leads, below
  its threshold (computed below): no champion.
- Uncertainty figures on the eligible rows only.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from cro_awards.disclosure import audit as disclosure
from cro_awards.engine import graph, sql
from cro_awards.method import uncertainty

STR = pa.string()
INT = pa.int64()
DBL = pa.float64()
BOOL = pa.bool_()

ATTRIBUTE_SCHEMA = pa.schema(
    [
        ("segment", STR),
        ("cro", STR),
        ("attribute", STR),
        ("n_ratings", INT),
        ("score", DBL),
        ("cro_name", STR),
        ("attribute_label", STR),
    ]
)
COMPOSITE_SCHEMA = pa.schema(
    [
        ("segment", STR),
        ("cro", STR),
        ("category", STR),
        ("n_evaluations", INT),
        ("composite", DBL),
        ("is_eligible", BOOL),
        ("rank", INT),
        ("ci_low", DBL),
        ("ci_high", DBL),
        ("composite_shrunk", DBL),
        ("p_leader", DBL),
        ("p_champion", DBL),
        ("rank_low", INT),
        ("rank_high", INT),
        ("is_co_leader", BOOL),
        ("composite_adjusted", DBL),
        ("cro_name", STR),
        ("category_label", STR),
    ]
)
AWARDS_SCHEMA = pa.schema(
    [
        ("segment", STR),
        ("category", STR),
        ("cro", STR),
        ("award", STR),
        ("composite", DBL),
        ("weighted_mean", DBL),
        ("weighted_sd", DBL),
        ("threshold", DBL),
        ("p_award", DBL),
        ("is_robust", BOOL),
        ("cro_name", STR),
        ("category_label", STR),
    ]
)
CATEGORY_ROWS = [("k", "a1"), ("k", "a2")]
PARAMS: dict[str, Any] = {
    "min_cell_size": 3,
    "min_evaluations": 5,
    "min_cros_for_awards": 2,
    "champion_sd_multiplier": 1.0,
    "tolerance": sql.TOLERANCE,
}

A_OVERALL = (24 / 7 + 5.0) / 2  # 59/14


def overall_cell() -> tuple[float, float]:
    """overall/k's weighted mean and SD over A (59/14, w 8) and B (2.0, w 5), by the formulas."""
    mean = (8 * A_OVERALL + 5 * 2.0) / 13
    sd = math.sqrt((8 * (A_OVERALL - mean) ** 2 + 5 * (2.0 - mean) ** 2) / 13)
    return mean, sd


def attribute(segment: str, cro: str, name: str, n_ratings: int, score: float) -> dict[str, Any]:
    label = {"a1": "Attribute one", "a2": "Attribute two"}[name]
    return dict(zip(ATTRIBUTE_SCHEMA.names, (segment, cro, name, n_ratings, score, f"CRO {cro}", label), strict=True))


def composite(segment: str, cro: str, n: int, value: float, rank: int | None, interval: bool = True) -> dict:
    """A k composite: eligible when ranked, with recognisable figures on eligible rows (none elsewhere)."""
    eligible = rank is not None
    figures = (value - 0.5, value + 0.5, value, 0.5, 0.25, 1, 2, True, value) if eligible and interval else (None,) * 9
    row = (segment, cro, "k", n, value, eligible, rank, *figures, f"CRO {cro}", "K")
    return dict(zip(COMPOSITE_SCHEMA.names, row, strict=True))


def award(segment: str, cro: str, kind: str, value: float, mean: float, sd: float) -> dict[str, Any]:
    row = (segment, "k", cro, kind, value, mean, sd, mean + sd, None, None, f"CRO {cro}", "K")
    return dict(zip(AWARDS_SCHEMA.names, row, strict=True))


def clean() -> dict[str, list[dict[str, Any]]]:
    """The clean set of the module docstring, as rows (dicts) to plant breaches in."""
    mean, sd = overall_cell()
    return {
        "attribute_scores": [
            attribute("big_pharma", "A", "a1", 3, 4.0),
            attribute("overall", "A", "a1", 7, 24 / 7),
            attribute("overall", "A", "a2", 3, 5.0),
            attribute("overall", "B", "a1", 5, 2.0),
            attribute("overall", "C", "a1", 3, 3.0),
            attribute("overall", "C", "a2", 4, 4.0),
            attribute("small_pharma", "A", "a1", 4, 3.0),
            attribute("small_pharma", "A", "a2", 3, 5.0),
            attribute("small_pharma", "B", "a1", 5, 2.0),
            attribute("small_pharma", "C", "a1", 3, 3.0),
            attribute("small_pharma", "C", "a2", 4, 4.0),
        ],
        "composite_scores": [
            composite("big_pharma", "A", 3, 4.0, None),
            composite("overall", "A", 8, A_OVERALL, 1),
            composite("overall", "B", 5, 2.0, 2),
            composite("overall", "C", 4, 3.5, None),
            composite("small_pharma", "A", 5, 4.0, 1),
            composite("small_pharma", "B", 5, 2.0, 2),
            composite("small_pharma", "C", 4, 3.5, None),
        ],
        "awards": [
            award("overall", "A", "leader", A_OVERALL, mean, sd),
            award("small_pharma", "A", "champion", 4.0, 3.0, 1.0),
            award("small_pharma", "A", "leader", 4.0, 3.0, 1.0),
        ],
    }


SCHEMAS = {"attribute_scores": ATTRIBUTE_SCHEMA, "composite_scores": COMPOSITE_SCHEMA, "awards": AWARDS_SCHEMA}


def audit(rows: dict[str, list[dict[str, Any]]], params: dict[str, Any] = PARAMS) -> list[disclosure.Finding]:
    tables = {name: pa.Table.from_pylist(rows[name], schema=schema) for name, schema in SCHEMAS.items()}
    return disclosure.audit(tables, CATEGORY_ROWS, params)


def find(rows: list[dict[str, Any]], **key: Any) -> dict[str, Any]:
    [row] = [row for row in rows if all(row[column] == value for column, value in key.items())]
    return row


# --- the clean set ----------------------------------------------------------------------------------


def test_the_audit_has_the_checks_planted_below():
    assert set(sql.checks(sql.AUDIT_DIR)) == {check for check, _, _ in PLANTS.values()}


def test_the_clean_set_passes_every_check():
    # Preconditions worked by hand: overall/k's threshold is above A's composite (no champion there).
    mean, sd = overall_cell()
    assert mean + sd > A_OVERALL
    assert audit(clean()) == []


def test_the_clean_set_passes_without_awards_or_figures():
    # A year with no award cell and no resampling (bootstrap_replicates 0): nothing to break.
    rows = clean()
    rows["awards"] = []
    for row in rows["composite_scores"]:
        for column in (
            "ci_low", "ci_high", "composite_shrunk", "p_leader", "p_champion", "rank_low", "rank_high",
            "composite_adjusted",
        ):  # fmt: skip
            row[column] = None
        row["is_co_leader"] = None
    assert audit(rows) == []


# --- one planted breach per check -------------------------------------------------------------------


def thin_attribute_rows(rows):
    # D: a cell of 2 ratings (below min_cell_size 3), consistent with everything else (its overall row
    # pools it, its composites average it over 2 evaluations): only the countable-cells check sees it.
    rows["attribute_scores"] += [attribute("small_pharma", "D", "a2", 2, 4.0), attribute("overall", "D", "a2", 2, 4.0)]
    rows["composite_scores"] += [composite("small_pharma", "D", 2, 4.0, None), composite("overall", "D", 2, 4.0, None)]


def overall_count_differs(rows):
    # overall A/a1 says 8 ratings where its segments have 3 + 4 (its score, and so every composite, unchanged;
    # round(24/7 x 8) = 27 is no longer the segments' 24 either).
    find(rows["attribute_scores"], segment="overall", cro="A", attribute="a1")["n_ratings"] = 8


def overall_sum_differs(rows):
    # overall C/a1 at 10/3: 3 ratings summing 10, where the Small Pharma cell's sum to 9 (a rating of a thin
    # Big Pharma cell slipped into overall, say); its overall composite follows it, so only the pooling breaks.
    find(rows["attribute_scores"], segment="overall", cro="C", attribute="a1")["score"] = 10 / 3
    find(rows["composite_scores"], segment="overall", cro="C")["composite"] = (10 / 3 + 4.0) / 2


def overall_missing(rows):
    # C's Small Pharma a1 row is published, its overall row is not; C's overall composite follows (a2 alone,
    # 4.0, over its 4 evaluations), so only the pooling breaks.
    rows["attribute_scores"].remove(find(rows["attribute_scores"], segment="overall", cro="C", attribute="a1"))
    find(rows["composite_scores"], segment="overall", cro="C")["composite"] = 4.0


def composite_includes_a_thin_attribute(rows):
    # C's Small Pharma composite averages a thin a1 rating of 5 in with its published a2: (5 + 4) / 2 = 4.5,
    # not the mean of its published attributes (3 + 4) / 2 = 3.5.
    find(rows["composite_scores"], segment="small_pharma", cro="C")["composite"] = 4.5


def composite_n_below_thickest(rows):
    # C's composites claim 3 evaluations although its a2 alone has 4 ratings (one per evaluation): the
    # count includes fewer evaluations than a published attribute rests on (overall still sums the segments).
    find(rows["composite_scores"], segment="small_pharma", cro="C")["n_evaluations"] = 3
    find(rows["composite_scores"], segment="overall", cro="C")["n_evaluations"] = 3


def composite_without_attributes(rows):
    # A Big Pharma composite of B with no published Big Pharma attribute of B (it rests on thin cells only);
    # B's overall composite (5 evaluations) no longer adds up its segments' (5 + 3): both named.
    rows["composite_scores"].append(composite("big_pharma", "B", 3, 2.0, None))


def award_weighted_mean_differs(rows):
    # The Small Pharma leader's cell statistics weigh in a composite not published (mean 3.1, not 3.0).
    leader = find(rows["awards"], segment="small_pharma", award="leader")
    leader["weighted_mean"], leader["threshold"] = 3.1, 4.1


def award_to_a_composite_not_eligible(rows):
    # An award in big_pharma/k, where A's composite (3 evaluations) is published but not eligible.
    rows["awards"].append(award("big_pharma", "A", "leader", 4.0, 4.0, 0.0))


def figures_on_a_non_eligible_row(rows):
    find(rows["composite_scores"], segment="big_pharma", cro="A")["ci_low"] = 3.5


def co_leader_flag_on_a_non_eligible_row(rows):
    find(rows["composite_scores"], segment="overall", cro="C")["is_co_leader"] = False


ATTRIBUTES = "attribute_rows_rest_on_countable_cells"
OVERALL = "overall_pools_the_published_segments"
COMPOSITES = "composites_average_the_published_attributes"
AWARDS = "awards_rest_on_published_eligible_composites"
UNCERTAINTY = "uncertainty_only_on_eligible_rows"

PLANTS = {
    "attribute_row_below_min_cell_size": (
        ATTRIBUTES,
        thin_attribute_rows,
        [("overall", "D", "a2"), ("small_pharma", "D", "a2")],
    ),
    "overall_count_differs_from_its_segments": (OVERALL, overall_count_differs, [("overall", "A", "a1")]),
    "overall_whole_number_sum_differs_from_its_segments": (OVERALL, overall_sum_differs, [("overall", "C", "a1")]),
    "segment_row_without_its_overall_row": (OVERALL, overall_missing, [("overall", "C", "a1")]),
    "composite_includes_a_thin_attribute": (
        COMPOSITES,
        composite_includes_a_thin_attribute,
        [("small_pharma", "C", "k")],
    ),
    "composite_n_evaluations_below_its_thickest_attribute": (
        COMPOSITES,
        composite_n_below_thickest,
        [("overall", "C", "k"), ("small_pharma", "C", "k")],
    ),
    "composite_without_published_attributes": (
        COMPOSITES,
        composite_without_attributes,
        [("big_pharma", "B", "k"), ("overall", "B", "k")],
    ),
    "award_weighted_mean_differs_from_the_published_eligible_composites": (
        AWARDS,
        award_weighted_mean_differs,
        [("small_pharma", "A", "k")],
    ),
    "award_to_a_composite_not_eligible": (AWARDS, award_to_a_composite_not_eligible, [("big_pharma", "A", "k")]),
    "interval_on_a_non_eligible_row": (UNCERTAINTY, figures_on_a_non_eligible_row, [("big_pharma", "A", "k")]),
    "co_leader_flag_on_a_non_eligible_row": (
        UNCERTAINTY,
        co_leader_flag_on_a_non_eligible_row,
        [("overall", "C", "k")],
    ),
}


@pytest.mark.parametrize("plant", PLANTS)
def test_a_planted_breach_is_found_by_exactly_its_check_naming_the_cell(plant):
    check, breach, cells = PLANTS[plant]
    rows = clean()
    breach(rows)
    assert audit(rows) == [disclosure.Finding(check, *cell) for cell in cells]


def test_the_countable_cells_check_reads_the_runs_min_cell_size():
    # The same clean tables at min_cell_size 4: every row of 3 ratings is now below it, and only they.
    findings = audit(clean(), {**PARAMS, "min_cell_size": 4})
    assert {finding.check for finding in findings} == {ATTRIBUTES}
    assert [(f.segment, f.cro, f.item) for f in findings] == [
        ("big_pharma", "A", "a1"),
        ("overall", "A", "a2"),
        ("overall", "C", "a1"),
        ("small_pharma", "A", "a2"),
        ("small_pharma", "C", "a1"),
    ]


def test_findings_in_check_order_then_key_order():
    rows = clean()
    figures_on_a_non_eligible_row(rows)
    thin_attribute_rows(rows)
    composite_includes_a_thin_attribute(rows)
    assert [(f.check, f.segment, f.cro) for f in audit(rows)] == [
        (ATTRIBUTES, "overall", "D"),
        (ATTRIBUTES, "small_pharma", "D"),
        (COMPOSITES, "small_pharma", "C"),
        (UNCERTAINTY, "big_pharma", "A"),
    ]


def test_explain_names_the_first_cell_and_how_many_more_never_a_value():
    rows = clean()
    thin_attribute_rows(rows)
    text = disclosure.explain(audit(rows), min_cell_size=3)
    assert "(overall, D, a2)" in text and "1 more" in text and "min_cell_size = 3" in text
    # No score or count of the rows (4.0, 2 ratings) is in the message.
    assert "4.0" not in text and " 2 " not in text


# --- on tables the SQL builds -----------------------------------------------------------------------


def built_tables(min_cell_size: int) -> dict[str, pa.Table]:
    """The published tables built by the real files from literal accepted ratings (k = a1, a2; all Small
    Pharma but A's 2 Big Pharma a2 ratings and B's 2 Big Pharma a1 ratings: thin cells at min_cell_size 3),
    with SQL parameter min_cell_size as given."""
    ratings = [
        *(("small_pharma", "A", row, "a1", float(3 + row % 2)) for row in range(1, 6)),
        *(("small_pharma", "A", row, "a2", 4.0) for row in range(1, 4)),
        ("big_pharma", "A", 6, "a2", 1.0),
        ("big_pharma", "A", 7, "a2", 2.0),
        *(("small_pharma", "B", row, "a1", 2.0) for row in range(8, 13)),
        ("big_pharma", "B", 13, "a1", 5.0),
        ("big_pharma", "B", 14, "a1", 5.0),
        *(("small_pharma", "C", row, "a2", float(1 + row % 3)) for row in range(15, 20)),
    ]
    evaluations = sorted({(row, f"R{row}", cro, segment) for segment, cro, row, _, _ in ratings})
    names = ["segment", "cro", "source_row", "attribute", "rating_value"]
    params = {**PARAMS, "min_cell_size": min_cell_size, "robust_award_probability": 0.8, "award_rule": "official"}
    with graph.Workspace.open() as workspace:
        con = workspace.connection
        con.register("int_accepted_ratings", pa.table({n: [r[i] for r in ratings] for i, n in enumerate(names)}))
        con.register(
            "int_accepted_evaluations",
            pa.table(
                {
                    n: [e[i] for e in evaluations]
                    for i, n in enumerate(["source_row", "respondent_id", "cro", "segment"])
                }
            ),
        )
        con.register("category_attributes", pa.table({"category": ["k", "k"], "attribute": ["a1", "a2"]}))
        con.register("cro_labels", pa.table({"cro": list("ABC"), "cro_name": ["CRO A", "CRO B", "CRO C"]}))
        con.register("attribute_labels", pa.table({"attribute": ["a1", "a2"], "attribute_label": ["One", "Two"]}))
        con.register("category_labels", pa.table({"category": ["k"], "category_label": ["K"]}))
        con.register("composite_uncertainty", uncertainty.SCHEMA.empty_table())
        given = set(graph.run_order(("int_accepted_ratings", "int_accepted_evaluations")))
        for name in graph.run_order(sql.PUBLISHED):
            if name not in given:
                sql.run(con, name, params)
        return {name: workspace.table(name) for name in sql.PUBLISHED}


def test_tables_built_with_thin_cells_pass_and_a_lower_min_cell_size_is_caught():
    tables = built_tables(3)
    assert tables["awards"].num_rows > 0  # the audit has awards to check
    assert ("big_pharma", "A", "a2") not in {
        (row["segment"], row["cro"], row["attribute"]) for row in tables["attribute_scores"].to_pylist()
    }
    assert disclosure.audit(tables, CATEGORY_ROWS, PARAMS) == []
    # Built at min_cell_size 1 (a run that let the thin cells in), audited at the promised 3: the thin
    # cells' rows are found, by the countable-cells check.
    findings = disclosure.audit(built_tables(1), CATEGORY_ROWS, PARAMS)
    assert {(f.check, f.segment, f.cro, f.item) for f in findings if f.check == ATTRIBUTES} == {
        (ATTRIBUTES, "big_pharma", "A", "a2"),
        (ATTRIBUTES, "big_pharma", "B", "a1"),
    }
