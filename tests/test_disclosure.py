"""Disclosure control (cro_awards/disclosure.py): the exact determination test, the suppression plan on
hand-worked cells, and the audit. The attack on whole publications is tests/test_disclosure_attack.py.

Cells are (segment, attribute) of one CRO; `cro(...)` builds one from literal counts:
`ratings` {(segment, attribute): n_ratings}, `categories` {category: [attributes]}, `evaluations`
{(segment, category): n_evaluations} (derived from the ratings when omitted: the largest count among the
category's rated attributes, which is right when every evaluation rates every attribute it can).
"""

from __future__ import annotations

import random
from fractions import Fraction

import pyarrow as pa
import pytest

from cro_awards import disclosure
from cro_awards.disclosure import CroCells, Inventory, Solver, plan_cro

F = Fraction
BIG, SMALL, OVERALL = "big_pharma", "small_pharma", "overall"


def cro(
    ratings: dict[tuple[str, str], int],
    categories: dict[str, list[str]] | None = None,
    evaluations: dict[tuple[str, str], int] | None = None,
    *,
    eligible: set[tuple[str, str]] = frozenset(),
    name: str = "Alpha",
) -> CroCells:
    categories = categories or {}
    if evaluations is None:
        evaluations = {}
        for segment in {s for s, _ in ratings}:
            for category, attributes in categories.items():
                counts = [ratings[(segment, a)] for a in attributes if (segment, a) in ratings]
                if counts:
                    evaluations[(segment, category)] = max(counts)
    members = {
        (segment, category): tuple(
            sorted(((segment, a) for a in categories[category] if (segment, a) in ratings), key=lambda c: c[1])
        )
        for segment, category in evaluations
    }
    return CroCells(name, ratings, evaluations, members, frozenset(eligible))


def published_tables(cells: CroCells, plan: disclosure.CroPlan, min_cell_size: int, awarded=()) -> dict:
    """The tables a plan publishes for one CRO (scores are placeholders: the audit reads keys and counts)."""
    withheld_cells = {*plan.primary_cells, *plan.complementary_cells}
    withheld_composites = {*plan.primary_composites, *plan.complementary_composites}
    attributes = [
        {"segment": s, "cro": cells.cro, "attribute": a, "n_ratings": n, "score": 3.0}
        for (s, a), n in cells.n_ratings.items()
        if (s, a) not in withheld_cells
    ]
    composites = [
        {
            "segment": s,
            "cro": cells.cro,
            "category": c,
            "n_evaluations": n,
            "composite": 3.0,
            "is_eligible": (s, c) in cells.eligible,
            "rank": None,
            "ci_low": None,
            "ci_high": None,
        }
        for (s, c), n in cells.n_evaluations.items()
        if (s, c) not in withheld_composites
    ]
    awards = [{"segment": s, "category": c, "cro": cells.cro, "award": "leader", "composite": 3.0} for s, c in awarded]
    return {
        "attribute_scores": pa.Table.from_pylist(attributes, schema=ATTRIBUTE_SCHEMA),
        "composite_scores": pa.Table.from_pylist(composites, schema=COMPOSITE_SCHEMA),
        "awards": pa.Table.from_pylist(awards, schema=AWARD_SCHEMA),
    }


ATTRIBUTE_SCHEMA = pa.schema(
    [("segment", pa.string()), ("cro", pa.string()), ("attribute", pa.string()), ("n_ratings", pa.int64()),
     ("score", pa.float64())]
)  # fmt: skip
COMPOSITE_SCHEMA = pa.schema(
    [("segment", pa.string()), ("cro", pa.string()), ("category", pa.string()), ("n_evaluations", pa.int64()),
     ("composite", pa.float64()), ("is_eligible", pa.bool_()), ("rank", pa.int64()), ("ci_low", pa.float64()),
     ("ci_high", pa.float64())]
)  # fmt: skip
COMPOSITE_SCHEMA_FIGURES = pa.schema([*COMPOSITE_SCHEMA, ("rank_low", pa.int64())])
AWARD_SCHEMA = pa.schema(
    [("segment", pa.string()), ("category", pa.string()), ("cro", pa.string()), ("award", pa.string()),
     ("composite", pa.float64())]
)  # fmt: skip


def audit_one(cells: CroCells, plan: disclosure.CroPlan, min_cell_size: int = 3) -> list[disclosure.Finding]:
    tables = published_tables(cells, plan, min_cell_size, awarded=cells.eligible)
    return disclosure.audit(Inventory((cells,)), min_cell_size, tables)


# --- the exact test ---------------------------------------------------------------------------------


def test_span_membership_is_exact():
    o, b, s, c = (OVERALL, "a"), (BIG, "a"), (SMALL, "a"), (BIG, "c")
    span = disclosure.Span()
    assert span.add({o: F(1), b: F(-1), s: F(-1)})
    assert span.add({b: F(1, 3), c: F(1, 7)})
    assert not span.add({o: F(2), b: F(-2), s: F(-2)})  # a multiple: no new row
    # o - s = b, and b/3 + c/7 is known: so o/3 - s/3 + c/7 is in the span; nudged by 1e-30 it is not.
    assert span.contains({o: F(1, 3), s: F(-1, 3), c: F(1, 7)})
    assert not span.contains({o: F(1, 3), s: F(-1, 3), c: F(1, 7) + F(1, 10**30)})


def test_segments_adding_up_determine_a_single_rating():
    # The case: overall 4.4 on 5 ratings and Big Pharma 4.5 on 4 give Small Pharma's one rating.
    cells = cro({(OVERALL, "a"): 5, (BIG, "a"): 4, (SMALL, "a"): 1})
    value = {(SMALL, "a"): F(1)}
    assert disclosure.determined([value], [(SMALL, "a")], cells.r1()) == [True]
    assert disclosure.determined([value], [(SMALL, "a"), (BIG, "a")], cells.r1()) == [False]


def test_a_composite_determines_its_last_attribute():
    # 2 x 3.6 - 4.2 = 3.0: the composite and one published attribute give the other.
    cells = cro({(BIG, "a"): 5, (BIG, "b"): 1}, {"k": ["a", "b"]})
    relations = [cells.r2((BIG, "k"))]
    assert disclosure.determined([{(BIG, "b"): F(1)}], [(BIG, "b")], relations) == [True]
    assert disclosure.determined([{(BIG, "b"): F(1)}], [(BIG, "b"), (BIG, "a")], relations) == [False]


def test_modular_and_exact_solvers_agree_on_random_systems():
    rng = random.Random(7)
    cells = [(segment, attribute) for segment in (BIG, SMALL, OVERALL) for attribute in "abcdef"]
    for _ in range(200):
        relations = [
            {cell: F(rng.randint(-3, 3), rng.randint(1, 9)) for cell in rng.sample(cells, rng.randint(1, 4))}
            for _ in range(rng.randint(1, 8))
        ]
        relations = [{c: v for c, v in r.items() if v} for r in relations]
        values = [{cell: F(1)} for cell in rng.sample(cells, 5)]
        withheld = rng.sample(cells, rng.randint(1, 12))
        exact = Solver(relations, values).set_withheld(withheld)
        assert Solver(relations, values, exact=False).set_withheld(withheld) == exact


def test_trying_a_cell_agrees_with_recomputing():
    """`count_if_withheld` (the column-space shortcut) and `count_if_released` give what a full recompute gives."""
    rng = random.Random(11)
    cells = [(segment, attribute) for segment in (BIG, SMALL, OVERALL) for attribute in "abcde"]
    for _ in range(150):
        relations = [
            {cell: F(rng.choice([-1, 1]), rng.randint(1, 6)) for cell in rng.sample(cells, rng.randint(1, 4))}
            for _ in range(rng.randint(2, 9))
        ]
        values = [{cell: F(1)} for cell in rng.sample(cells, 4)]
        withheld = set(rng.sample(cells, 6)) | {next(iter(v)) for v in values}
        for exact in (True, False):
            solver = Solver(relations, values, exact=exact)
            solver.set_withheld(withheld)
            for cell in sorted(set(cells) - withheld):
                expected = sum(Solver(relations, values, exact=exact).set_withheld(withheld | {cell}))
                assert solver.count_if_withheld(cell) == expected
            for cell in sorted(withheld):
                expected = sum(Solver(relations, values, exact=exact).set_withheld(withheld - {cell}))
                assert solver.count_if_released(cell) == expected


# --- the plan, hand-worked ---------------------------------------------------------------------------


def test_nothing_sensitive_withholds_nothing():
    plan = plan_cro(cro({(OVERALL, "a"): 5, (BIG, "a"): 3, (SMALL, "a"): 2}), min_cell_size=2)
    assert plan.primary_cells == [] and plan.complementary_cells == []


def test_differencing_is_closed_by_withholding_the_thinner_partner():
    cells = cro({(OVERALL, "a"): 9, (BIG, "a"): 7, (SMALL, "a"): 2})
    plan = plan_cro(cells, min_cell_size=3)
    assert plan.primary_cells == [(SMALL, "a")]
    assert plan.complementary_cells == [(BIG, "a")]  # 7 ratings is thinner than overall's 9
    assert audit_one(cells, plan) == []


def test_a_tie_between_partners_goes_to_the_first_in_key_order():
    # Big and overall both hold 4 ratings of b?  No: overall must add up. Two attributes tie instead:
    # the composite (a + b + c) / 3 with c sensitive is freed by withholding a or b, both 6 ratings.
    cells = cro({(BIG, "a"): 6, (BIG, "b"): 6, (BIG, "c"): 1}, {"k": ["a", "b", "c"]})
    # Only Big Pharma rated: overall repeats it; withholding a in one segment alone is undone by R1.
    cells = cro(
        {**cells.n_ratings, (OVERALL, "a"): 6, (OVERALL, "b"): 6, (OVERALL, "c"): 1},
        {"k": ["a", "b", "c"]},
    )
    plan = plan_cro(cells, min_cell_size=3)
    assert plan.primary_cells == [(BIG, "c"), (OVERALL, "c")]
    assert plan.complementary_cells == [(BIG, "a"), (OVERALL, "a")]  # a before b, by name
    assert audit_one(cells, plan) == []


def test_segment_and_composite_relations_together():
    """The composite pins a in Big Pharma; R1 carries it to overall; both segments' rows must go."""
    cells = cro({(BIG, "a"): 5, (BIG, "b"): 1, (OVERALL, "a"): 5, (OVERALL, "b"): 1}, {"k": ["a", "b"]})
    plan = plan_cro(cells, min_cell_size=3)
    assert plan.complementary_cells == [(BIG, "a"), (OVERALL, "a")]
    assert audit_one(cells, plan) == []
    # Withholding only Big Pharma's a is not enough: overall's a equals it (R1) and pins it again.
    partial = disclosure.CroPlan(cells.cro, plan.primary_cells, [(BIG, "a")], plan.primary_composites, [])
    assert {f.key for f in audit_one(cells, partial)} >= {(BIG, "Alpha", "b")}


def test_an_attribute_in_two_categories_is_one_unknown_in_two_relations():
    # b sits in k1 = {a, b} and k2 = {b, c}; a and c published would give b twice over. c is sensitive too.
    ratings = {(BIG, "a"): 8, (BIG, "b"): 2, (BIG, "c"): 4, (BIG, "d"): 5}
    ratings |= {(OVERALL, attribute): n for (_, attribute), n in ratings.items()}
    cells = cro(ratings, {"k1": ["a", "b"], "k2": ["b", "c", "d"]})
    plan = plan_cro(cells, min_cell_size=3)
    assert plan.primary_cells == [(BIG, "b"), (OVERALL, "b")]
    assert audit_one(cells, plan) == []
    # Every withheld row is needed: putting any one back reveals b.
    for cell in plan.complementary_cells:
        rest = [c for c in plan.complementary_cells if c != cell]
        back = disclosure.CroPlan(cells.cro, plan.primary_cells, rest, plan.primary_composites, [])
        assert audit_one(cells, back), f"{cell} was not needed"


def test_a_composite_is_withheld_only_where_no_attribute_row_protects():
    """Everyone rated both attributes: overall's and Small Pharma's composites give Big Pharma's,
    whatever attribute rows are withheld (8 x overall - 6 x small = 2 x big). The thinner one goes."""
    ratings = {(BIG, "a"): 2, (BIG, "b"): 2, (SMALL, "a"): 6, (SMALL, "b"): 6, (OVERALL, "a"): 8, (OVERALL, "b"): 8}
    cells = cro(ratings, {"k": ["a", "b"]})
    plan = plan_cro(cells, min_cell_size=3)
    assert plan.primary_composites == [(BIG, "k")]
    assert plan.complementary_composites == [(SMALL, "k")]
    assert plan.unprotectable == []
    assert audit_one(cells, plan) == []
    # With the composite back, the audit names Big Pharma's composite.
    back = disclosure.CroPlan(cells.cro, plan.primary_cells, plan.complementary_cells, plan.primary_composites, [])
    assert any(f.key == (BIG, "Alpha", "k") and f.table == "composite_scores" for f in audit_one(cells, back))


def test_only_composites_that_are_not_eligible_are_withheld():
    ratings = {(BIG, "a"): 2, (BIG, "b"): 2, (SMALL, "a"): 6, (SMALL, "b"): 6, (OVERALL, "a"): 8, (OVERALL, "b"): 8}
    cells = cro(ratings, {"k": ["a", "b"]}, eligible={(SMALL, "k")})
    assert plan_cro(cells, 3).complementary_composites == [(OVERALL, "k")]  # the one not eligible, thicker
    cells = cro(ratings, {"k": ["a", "b"]}, eligible={(SMALL, "k"), (OVERALL, "k")})
    plan = plan_cro(cells, 3)  # both eligible: neither may go, and the value is unprotectable
    assert plan.complementary_composites == [] and plan.unprotectable == [("composite", (BIG, "k"))]


def test_composites_the_awards_publish_cannot_be_withheld_and_the_audit_says_so():
    ratings = {(BIG, "a"): 2, (BIG, "b"): 2, (SMALL, "a"): 6, (SMALL, "b"): 6, (OVERALL, "a"): 8, (OVERALL, "b"): 8}
    both = {(SMALL, "k"), (OVERALL, "k")}
    cells = cro(ratings, {"k": ["a", "b"]}, eligible=both)
    plan = plan_cro(cells, 3)
    assert plan.complementary_composites == []
    assert plan.unprotectable == [("composite", (BIG, "k"))]
    findings = audit_one(cells, plan)
    assert [(f.rule, f.table, f.key) for f in findings] == [("D2", "composite_scores", (BIG, "Alpha", "k"))]
    message = disclosure.explain(findings, 3, [(cells.cro, "composite", (BIG, "k"))])
    assert "Raise min_evaluations" in message and "(big_pharma, Alpha, k)" in message and "bug" not in message
    assert "bug" in disclosure.explain(findings, 3, [])


def test_the_plan_does_not_depend_on_the_order_of_the_rows():
    ratings = {(BIG, "a"): 2, (BIG, "b"): 5, (BIG, "c"): 4, (SMALL, "a"): 3, (SMALL, "b"): 1, (SMALL, "c"): 6}
    ratings |= {(OVERALL, x): ratings[(BIG, x)] + ratings[(SMALL, x)] for x in "abc"}
    categories = {"k1": ["a", "b"], "k2": ["b", "c"]}
    first = plan_cro(cro(ratings, categories), 3)
    items = list(ratings.items())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        again = plan_cro(cro(dict(items), {k: list(reversed(v)) for k, v in categories.items()}), 3)
        assert (again.complementary_cells, again.complementary_composites) == (
            first.complementary_cells,
            first.complementary_composites,
        )


# --- the audit -----------------------------------------------------------------------------------------


def test_audit_names_a_small_row_published_and_an_interval_on_a_row_not_eligible():
    cells = cro({(OVERALL, "a"): 2, (BIG, "a"): 2}, {"k": ["a"]})
    nothing = disclosure.CroPlan(cells.cro)
    tables = published_tables(cells, nothing, 3)
    composites = tables["composite_scores"].to_pylist()
    for row in composites:
        row["ci_low"], row["ci_high"] = 1.0, 5.0
    composites.append({**composites[0], "category": "j", "ci_low": None, "ci_high": None, "rank": 2})
    composites[-1]["segment"], composites[-1]["n_evaluations"] = OVERALL, 5
    tables["composite_scores"] = pa.Table.from_pylist(composites, schema=COMPOSITE_SCHEMA)
    rules = {(f.rule, f.table, f.key) for f in disclosure.audit(Inventory((cells,)), 3, tables)}
    assert ("D1", "attribute_scores", (BIG, "Alpha", "a")) in rules
    assert ("D1", "composite_scores", (BIG, "Alpha", "k")) in rules
    assert ("D3", "composite_scores", (BIG, "Alpha", "k")) in rules
    # not only the interval: any per-CRO figure on a row that is not eligible (here a rank interval)
    composites = [row for row in composites if row["category"] == "j"]
    composites[0]["rank_low"] = 1
    tables["composite_scores"] = pa.Table.from_pylist(composites, schema=COMPOSITE_SCHEMA_FIGURES)
    rules = {(f.rule, f.key) for f in disclosure.audit(Inventory((cells,)), 3, tables)}
    assert ("D3", (OVERALL, "Alpha", "j")) in rules


def test_audit_counts_an_award_row_as_publishing_its_composite():
    ratings = {(BIG, "a"): 2, (BIG, "b"): 2, (SMALL, "a"): 6, (SMALL, "b"): 6, (OVERALL, "a"): 8, (OVERALL, "b"): 8}
    cells = cro(ratings, {"k": ["a", "b"]})
    plan = plan_cro(cells, 3)
    assert audit_one(cells, plan) == []
    tables = published_tables(cells, plan, 3, awarded=[(SMALL, "k")])  # the withheld composite won an award
    assert disclosure.audit(Inventory((cells,)), 3, tables)


@pytest.mark.parametrize("exact", [False, True])
def test_inventory_from_tables_reads_counts_and_eligibility(exact):
    inventory = Inventory.from_tables(
        pa.table(
            {
                "segment": [BIG, OVERALL, BIG],
                "cro": ["A", "A", "A"],
                "attribute": ["a", "a", "b"],
                "n_ratings": [3, 3, 1],
            }
        ),
        pa.table(
            {
                "segment": [BIG, OVERALL],
                "cro": ["A", "A"],
                "category": ["k", "k"],
                "n_evaluations": [3, 3],
                "is_eligible": [True, False],
            }
        ),
        [("k", "a"), ("k", "b"), ("j", "b")],
    )
    [cells] = inventory.cros
    assert cells.members == {(BIG, "k"): ((BIG, "a"), (BIG, "b")), (OVERALL, "k"): ((OVERALL, "a"),)}
    assert cells.eligible == {(BIG, "k")}
    assert cells.r2((BIG, "k")) == {(BIG, "a"): F(1, 3), (BIG, "b"): F(1)}


# --- D4: the report and the artifacts show only published values ---------------------------------------


def test_report_profiles_show_exactly_the_published_attribute_scores():
    """Every cell of every CRO profile is a published row's score, and every row withheld (primary or
    complementary) is an empty cell: the report is drawn from the published tables alone."""
    from cro_awards import transform
    from cro_awards.config import load_config
    from cro_awards.manifest import manifest
    from cro_awards.pipeline import run_pipeline
    from cro_awards.report import SEGMENT_ORDER, fmt2, report_context
    from cro_awards.summary import awards_markdown
    from tests.conftest import SAMPLE_CONFIG

    captured = {}
    inventory = transform.inventory

    def keep(workspace, survey):
        captured["inventory"] = inventory(workspace, survey)
        return captured["inventory"]

    loaded = load_config(SAMPLE_CONFIG)
    transform.inventory, original = keep, transform.inventory
    try:
        result = run_pipeline(loaded, loaded.export_path(None))
    finally:
        transform.inventory = original
    assert result.withheld["attribute_scores"]["complementary"] > 0
    context = report_context(
        result.tables, manifest(result, loaded, "run-1", "2024-03-01T00:00:00+00:00"), loaded.survey
    )
    published = {(r["segment"], r["cro"], r["attribute"]): r for r in result.tables["attribute_scores"].to_pylist()}
    labels = dict(loaded.survey.attributes)
    shown = {}
    for profile in context["profiles"]:
        for row in profile["attribute_rows"]:
            for segment, cell in zip(SEGMENT_ORDER, row["cells"], strict=True):
                shown[(segment, profile["cro"], row["label"])] = cell
    withheld = 0
    for cells in captured["inventory"].cros:
        for (segment, attribute), n in cells.n_ratings.items():
            cell = shown.get((segment, cells.cro, labels[attribute]))
            row = published.get((segment, cells.cro, attribute))
            if row is None:
                withheld += 1
                assert cell is None, f"withheld ({segment}, {cells.cro}, {attribute}) is shown"
            else:
                assert cell == {"value": fmt2(row["score"]), "n": n}
    assert withheld == sum(result.withheld["attribute_scores"].values())
    # The artifacts: the awards' table (published rows) and counts, nothing else.
    summary = {"survey_year": 2024, "awards": result.tables["awards"].to_pylist(), "counts": result.counts}
    text = awards_markdown(summary)
    composites = {fmt2(r["composite"]) for r in result.tables["awards"].to_pylist()}
    assert composites and all(value in text for value in composites)
