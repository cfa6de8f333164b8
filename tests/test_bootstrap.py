"""The bootstrap interval of a composite: deterministic, order-free, and as wide as the data warrant."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cro_awards.bootstrap import INTERVALS_SCHEMA, cell_interval, composite_intervals

CATEGORIES = [("quality", "a1"), ("quality", "a2"), ("speed", "a2"), ("speed", "a3")]


def _ratings(rows):
    """(evaluations, ratings) as sql/int_accepted_evaluations.sql and int_accepted_ratings.sql give them,
    from rows (segment, cro, respondent, attribute, rating): one evaluation per (cro, respondent), in
    its segment (the bootstrap derives overall), respondents ranked in respondent_id order, source rows
    numbered in the order the evaluations first appear. Rows given as "overall" are read as a
    small_pharma sponsor's, so their overall cell is the same evaluations."""
    ranks = {respondent: rank for rank, respondent in enumerate(sorted({row[2] for row in rows}), start=1)}
    source_rows: dict[tuple[str, str], int] = {}
    segments: dict[tuple[str, str], str] = {}
    for segment, cro, respondent, _, _ in rows:
        source_rows.setdefault((cro, respondent), len(source_rows) + 1)
        segments[(cro, respondent)] = "small_pharma" if segment == "overall" else segment
    evaluations = pa.table(
        {
            "source_row": pa.array(list(source_rows.values()), pa.int64()),
            "cro": [cro for cro, _ in source_rows],
            "segment": [segments[key] for key in source_rows],
            "respondent_rank": pa.array([ranks[respondent] for _, respondent in source_rows], pa.int64()),
        }
    )
    ratings = pa.table(
        {
            "source_row": pa.array([source_rows[(r[1], r[2])] for r in rows], pa.int64()),
            "attribute": [r[3] for r in rows],
            "rating_value": [float(r[4]) for r in rows],
        }
    )
    return evaluations, ratings


def _overall(table):
    return table.filter(pc.equal(table["segment"], "overall"))


def _evaluations(n, rng, cro="A", segment="overall"):
    rows = []
    for index in range(n):
        respondent = f"R{index:04d}"
        for attribute in ("a1", "a2", "a3"):
            if rng.random() < 0.85:
                rows.append((segment, cro, respondent, attribute, int(rng.integers(1, 6))))
    return rows


def test_constant_ratings_give_a_point_interval():
    rows = [("overall", "A", f"R{i}", "a1", 4) for i in range(6)]
    result = _overall(composite_intervals(*_ratings(rows), CATEGORIES, 200, seed=1)).to_pylist()
    assert result == [{"segment": "overall", "cro": "A", "category": "quality", "ci_low": 4.0, "ci_high": 4.0}]


def test_two_evaluations_span_their_extremes():
    # resamples of {3, 5}: composite 3, 4 or 5 with chances 1/4, 1/2, 1/4; 2.5th and 97.5th percentiles: 3 and 5
    rows = [("overall", "A", "R1", "a1", 3), ("overall", "A", "R2", "a1", 5)]
    [cell] = _overall(composite_intervals(*_ratings(rows), CATEGORIES, 1000, seed=7)).to_pylist()
    assert (cell["ci_low"], cell["ci_high"]) == (3.0, 5.0)


def test_an_attribute_in_two_categories_counts_in_both_and_missing_ones_are_skipped():
    rows = [("overall", "A", "R1", "a2", 2), ("overall", "A", "R2", "a2", 2)]
    result = _overall(composite_intervals(*_ratings(rows), CATEGORIES, 100, seed=1)).to_pylist()
    assert [(r["category"], r["ci_low"], r["ci_high"]) for r in result] == [("quality", 2.0, 2.0), ("speed", 2.0, 2.0)]


def test_identical_for_a_seed_and_for_shuffled_rows():
    rows = _evaluations(40, np.random.default_rng(3)) + _evaluations(30, np.random.default_rng(4), cro="B")
    first = composite_intervals(*_ratings(rows), CATEGORIES, 500, seed=11)
    shuffled = [rows[i] for i in np.random.default_rng(5).permutation(len(rows))]
    assert composite_intervals(*_ratings(shuffled), CATEGORIES, 500, seed=11).equals(first)
    assert not composite_intervals(*_ratings(rows), CATEGORIES, 500, seed=12).equals(first)


def test_one_cro_s_interval_does_not_depend_on_the_others():
    a_only = _evaluations(40, np.random.default_rng(3))
    with_b = a_only + _evaluations(30, np.random.default_rng(4), cro="B")
    alone = composite_intervals(*_ratings(a_only), CATEGORIES, 300, seed=2).to_pylist()
    together = [
        r for r in composite_intervals(*_ratings(with_b), CATEGORIES, 300, seed=2).to_pylist() if r["cro"] == "A"
    ]
    assert alone == together


def test_far_wider_for_5_evaluations_than_for_500():
    narrow = composite_intervals(*_ratings(_evaluations(500, np.random.default_rng(8))), CATEGORIES, 1000, seed=3)
    wide = composite_intervals(*_ratings(_evaluations(5, np.random.default_rng(8))), CATEGORIES, 1000, seed=3)
    for n, w in zip(narrow.to_pylist(), wide.to_pylist(), strict=False):
        assert (w["ci_high"] - w["ci_low"]) > 4 * (n["ci_high"] - n["ci_low"])


def test_the_interval_contains_the_composite_of_the_data():
    matrix = np.array([[3.0, np.nan], [4.0, 5.0], [2.0, 4.0], [5.0, np.nan], [4.0, 3.0]])
    composite = np.mean([np.nanmean(matrix[:, 0]), np.nanmean(matrix[:, 1])])
    low, high = cell_interval(matrix, 2000, np.random.default_rng(0))
    assert low < composite < high


def test_no_replicates_no_intervals():
    rows = [("overall", "A", "R1", "a1", 3)]
    assert composite_intervals(*_ratings(rows), CATEGORIES, 0, seed=1).equals(INTERVALS_SCHEMA.empty_table())


@pytest.mark.parametrize("replicates", [1, 251, 1000])
def test_any_number_of_replicates(replicates):
    rows = [("overall", "A", "R1", "a1", 3), ("overall", "A", "R2", "a1", 5)]
    [cell] = _overall(composite_intervals(*_ratings(rows), CATEGORIES, replicates, seed=1)).to_pylist()
    assert 3.0 <= cell["ci_low"] <= cell["ci_high"] <= 5.0


@pytest.mark.parametrize("n", [2500, 501])
def test_large_cells_use_the_normal_approximation_close_to_exact_resampling(n):
    from cro_awards import bootstrap

    assert n > bootstrap.EXACT_UP_TO  # 501: the smallest cell that takes the approximation
    rng = np.random.default_rng(21)
    matrix = rng.integers(1, 6, size=(n, 3)).astype(float)
    matrix[rng.random((n, 3)) < 0.2] = np.nan
    matrix[np.all(np.isnan(matrix), axis=1), 0] = 3.0  # every evaluation rates the category
    approximate = cell_interval(matrix, 2000, np.random.default_rng(1))
    exact_limit, bootstrap.EXACT_UP_TO = bootstrap.EXACT_UP_TO, 10**9
    try:
        exact = cell_interval(matrix, 2000, np.random.default_rng(1))
    finally:
        bootstrap.EXACT_UP_TO = exact_limit
    assert approximate != exact  # two methods, not one
    assert approximate[0] == pytest.approx(exact[0], abs=0.01)
    assert approximate[1] == pytest.approx(exact[1], abs=0.01)


def test_overall_pools_both_segments_and_each_segment_has_its_own_cell():
    rows = [
        ("big_pharma", "A", "R1", "a1", 5),
        ("big_pharma", "A", "R2", "a1", 5),
        ("small_pharma", "A", "R3", "a1", 1),
        ("small_pharma", "A", "R4", "a1", 1),
    ]
    result = {
        r["segment"]: (r["ci_low"], r["ci_high"])
        for r in composite_intervals(*_ratings(rows), CATEGORIES, 1000, seed=3).to_pylist()
    }
    assert result["big_pharma"] == (5.0, 5.0) and result["small_pharma"] == (1.0, 1.0)
    assert result["overall"][0] < 3.0 < result["overall"][1]


def test_large_cells_drawn_from_the_cell_s_own_moments(monkeypatch):
    # Above EXACT_UP_TO the moments come from one pass over each segment (evaluations that rate none of
    # a category's attributes add zeros) and overall adds the segments': the same draws as
    # cell_interval on the cell's own matrix (its evaluations rating the category, in respondent order).
    from cro_awards import bootstrap

    monkeypatch.setattr(bootstrap, "EXACT_UP_TO", 5)
    rng = np.random.default_rng(31)
    rows = []
    for index in range(60):
        segment = "big_pharma" if index % 3 else "small_pharma"
        rated = ("a1",) if index % 4 == 0 else ("a1", "a2", "a3") if index % 4 == 1 else ("a3",)
        rows.extend((segment, "A", f"R{index:03d}", attribute, int(rng.integers(1, 6))) for attribute in rated)
    result = composite_intervals(*_ratings(rows), CATEGORIES, 400, seed=5).to_pylist()

    attributes = {"quality": ("a1", "a2"), "speed": ("a2", "a3")}
    for cell in result:
        chosen = [r for r in rows if cell["segment"] in ("overall", r[0]) and r[3] in attributes[cell["category"]]]
        respondents = sorted({r[2] for r in chosen})
        matrix = np.full((len(respondents), 2), np.nan)
        for _, _, respondent, attribute, value in chosen:
            matrix[respondents.index(respondent), attributes[cell["category"]].index(attribute)] = value
        expected = cell_interval(matrix, 400, bootstrap._generator(5, cell["segment"], "A", cell["category"]))
        assert (cell["ci_low"], cell["ci_high"]) == expected, cell
    assert {(c["segment"], c["category"]) for c in result} == {
        (s, k) for s in ("big_pharma", "small_pharma", "overall") for k in ("quality", "speed")
    }
