"""How sure each award is (cro_awards/method/uncertainty.py): hand-worked cases whose replicates can be
enumerated, properties on generated surveys, and the normal approximation against exact resampling."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from cro_awards.method import uncertainty
from cro_awards.method.uncertainty import Settings, analyse

CATEGORIES = [("k", "a1")]


def survey(ratings: dict[str, dict[str, float]], segment: str = "small_pharma") -> tuple[pa.Table, ...]:
    """{respondent: {cro: rating of a1}} -> (evaluations, ratings, composites): one category of one
    attribute, every respondent in one segment (overall repeats it), every composite eligible."""
    evaluations, rows, by_cro = [], [], {}
    respondents = sorted(ratings)
    for rank, respondent in enumerate(respondents, start=1):
        for cro, value in sorted(ratings[respondent].items()):
            source_row = len(evaluations) + 1
            evaluations.append((source_row, cro, segment, rank))
            rows.append((source_row, "a1", float(value)))
            by_cro.setdefault(cro, []).append(float(value))
    composites = [
        (seg, cro, "k", len(values), sum(values) / len(values), True)
        for seg in (segment, "overall")
        for cro, values in sorted(by_cro.items())
    ]
    return (
        pa.table(
            {name: [e[i] for e in evaluations] for i, name in enumerate(["source_row", "cro", "segment"])}
            | {"respondent_rank": pa.array([e[3] for e in evaluations], pa.int64())}
        ),
        pa.table({name: [r[i] for r in rows] for i, name in enumerate(["source_row", "attribute", "rating_value"])}),
        pa.table(
            {
                name: [c[i] for c in composites]
                for i, name in enumerate(["segment", "cro", "category", "n_evaluations", "composite", "is_eligible"])
            }
        ),
    )


def settings(replicates: int = 1000, **changes) -> Settings:
    base = {
        "replicates": replicates,
        "seed": 7,
        "min_cros_for_awards": 3,
        "champion_sd_multiplier": 1.0,
        "scale": (1.0, 5.0),
    }
    return Settings(**(base | changes))


def by_cro(table: pa.Table, segment: str = "overall") -> dict[str, dict]:
    return {row["cro"]: row for row in table.to_pylist() if row["segment"] == segment}


# --- two respondents, three CROs: the replicates can be enumerated ---------------------------------------
# R1 rates A 5, B 4, C 1; R2 rates A 3, B 4, C 5. Resampling two respondents gives R1 twice (1/4),
# each once (1/2) or R2 twice (1/4):
#   R1 R1: A 5, B 4, C 1 -> A leads; mean 10/3, sd 1.70, threshold 5.03: no champion; ranks A1 B2 C3
#   R1 R2: A 4, B 4, C 3 -> A and B tie (half each); mean 3.67, sd 0.47, threshold 4.14: none; A1 B1 C3
#   R2 R2: A 3, B 4, C 5 -> C leads; mean 4, sd 0.82, threshold 4.82: C is champion; A3 B2 C1
# So p_leader A = 1/4 + 1/4 = 0.5, B = 0.25, C = 0.25; p_champion C = 0.25, A = B = 0.
TWO = {"R1": {"A": 5, "B": 4, "C": 1}, "R2": {"A": 3, "B": 4, "C": 5}}


def test_two_respondents_three_cros_match_the_enumeration():
    figures = by_cro(analyse(*survey(TWO), CATEGORIES, settings(20_000)))
    # Monte Carlo: 20,000 replicates give an SD of at most 0.0035 on a share: allow 0.015.
    assert figures["A"]["p_leader"] == pytest.approx(0.5, abs=0.015)
    assert figures["B"]["p_leader"] == pytest.approx(0.25, abs=0.015)
    assert figures["C"]["p_leader"] == pytest.approx(0.25, abs=0.015)
    assert figures["C"]["p_champion"] == pytest.approx(0.25, abs=0.015)
    assert figures["A"]["p_champion"] == figures["B"]["p_champion"] == 0.0
    assert (figures["A"]["rank_low"], figures["A"]["rank_high"]) == (1, 3)
    assert (figures["B"]["rank_low"], figures["B"]["rank_high"]) == (1, 2)
    assert (figures["C"]["rank_low"], figures["C"]["rank_high"]) == (1, 3)
    # A's composite over the replicates: 5 (1/4), 4 (1/2), 3 (1/4): SD sqrt(0.5); n = 2, t(1) = 12.71:
    # the interval spans the whole scale, clipped to it.
    assert (figures["A"]["ci_low"], figures["A"]["ci_high"]) == (1.0, 5.0)
    # B is 4 in every replicate, but two raters who agree are no evidence of no spread: its variance is
    # moderated towards the cell's pool. Corrected variances A 0.5 x 2 = 1, B 0, C (1, 3, 5 with 1/4,
    # 1/2, 1/4: 2) x 2 = 4; of one evaluation (x n = 2): 2, 0, 8, pooled (1 degree of freedom each) 10/3;
    # B: (1 x 0 + 2 x 10/3) / 3 / 2 = 10/9, t(1 + 2) = 3.18: 4 +/- 3.35, clipped to the scale.
    assert (figures["B"]["ci_low"], figures["B"]["ci_high"]) == (1.0, 5.0)


def test_shares_of_leading_add_up_to_one_and_ties_split():
    figures = by_cro(analyse(*survey(TWO), CATEGORIES, settings(500)))
    assert math.isclose(sum(row["p_leader"] for row in figures.values()), 1.0, abs_tol=1e-9)


def test_the_shrinkage_reading_on_a_hand_worked_cell():
    """Three CROs, ten respondents each rating all three: A about 1 above the others, consistently."""
    ratings = {f"R{i:02}": {"A": 5 if i % 5 else 4, "B": 3 + (i % 3 == 0), "C": 3 + (i % 2)} for i in range(10)}
    figures = by_cro(analyse(*survey(ratings), CATEGORIES, settings(2000)))
    a, b, c = figures["A"], figures["B"], figures["C"]
    # A clear, consistent gap: A leads in nearly every replicate and its award is deserved.
    assert a["p_leader"] > 0.99 and a["p_leader_deserved"] > 0.95
    # Shrinkage pulls each composite towards the cell's mean, never past it, and keeps the order.
    mean = (4.8 + 3.4 + 3.5) / 3
    for row, observed in ((a, 4.8), (b, 3.4), (c, 3.5)):
        assert min(observed, mean) - 1e-9 <= row["composite_shrunk"] <= max(observed, mean) + 1e-9
    assert a["composite_shrunk"] > c["composite_shrunk"] > b["composite_shrunk"]
    assert a["is_co_leader"] and not b["is_co_leader"]


def test_with_no_spread_beyond_noise_no_champion_is_deserved():
    """tau^2 = 0 (the composites differ less than their noise): every posterior sits at the mean, no
    champion award is deserved, and each leader gets 1 / (number of CROs)."""
    ratings = {f"R{i}": {"A": 3 + (i % 2), "B": 4 - (i % 2), "C": 3 + (i % 2)} for i in range(6)}
    figures = by_cro(analyse(*survey(ratings), CATEGORIES, settings(500)))
    for row in figures.values():
        assert row["p_champion_deserved"] == 0.0
        assert row["p_leader_deserved"] == pytest.approx(1 / 3)


def test_cells_without_awards_have_no_award_shares_but_keep_intervals():
    figures = by_cro(analyse(*survey(TWO), CATEGORIES, settings(200, min_cros_for_awards=4)))
    for row in figures.values():
        assert row["p_leader"] is None and row["p_champion"] is None and row["is_co_leader"] is None
        assert row["ci_low"] is not None and row["rank_low"] is not None


def test_no_replicates_no_figures():
    assert analyse(*survey(TWO), CATEGORIES, settings(0)).num_rows == 0


def test_only_eligible_composites_get_figures():
    evaluations, ratings, composites = survey(TWO)
    flags = [row["cro"] != "C" for row in composites.to_pylist()]
    composites = composites.set_column(5, "is_eligible", pa.array(flags))
    figures = analyse(evaluations, ratings, composites, CATEGORIES, settings(100))
    assert {row["cro"] for row in figures.to_pylist()} == {"A", "B"}


# --- properties on generated surveys --------------------------------------------------------------------


def generated(n_respondents: int, n_cros: int, seed: int, winner: float = 0.0) -> dict:
    """Respondents rating 1-4 CROs each, a respondent leniency shared by their ratings; CRO 0 is better
    by `winner`."""
    rng = np.random.default_rng(seed)
    ratings: dict[str, dict[str, float]] = {}
    for r in range(n_respondents):
        leniency = rng.normal(0, 0.4)
        for cro in rng.choice(n_cros, size=rng.integers(1, 5), replace=False):
            mean = 3.5 + leniency + (winner if cro == 0 else 0.0)
            ratings.setdefault(f"R{r:05}", {})[f"CRO{cro:02}"] = float(np.clip(np.rint(rng.normal(mean, 0.7)), 1, 5))
    return ratings


def test_a_planted_clear_winner_leads_in_nearly_every_replicate():
    figures = by_cro(analyse(*survey(generated(300, 6, 1, winner=1.2)), CATEGORIES, settings(500)))
    assert figures["CRO00"]["p_leader"] > 0.97
    assert figures["CRO00"]["rank_low"] == figures["CRO00"]["rank_high"] == 1
    assert sum(row["p_leader"] for row in figures.values()) == pytest.approx(1.0)


def test_shuffling_the_rows_changes_nothing():
    evaluations, ratings, composites = survey(generated(120, 5, 2))
    first = analyse(evaluations, ratings, composites, CATEGORIES, settings(300))
    order = np.random.default_rng(3).permutation(evaluations.num_rows)
    shuffled = analyse(
        evaluations.take(order),
        ratings.take(np.random.default_rng(4).permutation(ratings.num_rows)),
        composites.take(np.random.default_rng(5).permutation(composites.num_rows)),
        CATEGORIES,
        settings(300),
    )
    assert shuffled.equals(first)


def test_the_approximation_agrees_with_exact_resampling(monkeypatch):
    """Where both run: the linearised normal replicates against exact resampling of respondents, on a
    survey of 1,500 respondents. The intervals agree within 0.02 (two-decimal rounding is 0.005) and
    the award shares within 0.05 (Monte Carlo error of 2,000 replicates included)."""
    data = survey(generated(1500, 8, 6, winner=0.15))
    exact = by_cro(analyse(*data, CATEGORIES, settings(2000)))
    monkeypatch.setattr(uncertainty, "EXACT_UP_TO_WORK", 0)
    approximate = by_cro(analyse(*data, CATEGORIES, settings(2000)))
    for cro, row in exact.items():
        other = approximate[cro]
        assert other["ci_low"] == pytest.approx(row["ci_low"], abs=0.02), cro
        assert other["ci_high"] == pytest.approx(row["ci_high"], abs=0.02), cro
        assert other["p_leader"] == pytest.approx(row["p_leader"], abs=0.05), cro
        assert other["p_champion"] == pytest.approx(row["p_champion"], abs=0.05), cro
        assert abs(other["rank_low"] - row["rank_low"]) <= 1 and abs(other["rank_high"] - row["rank_high"]) <= 1
        assert other["composite_shrunk"] == pytest.approx(row["composite_shrunk"], abs=0.01), cro


# --- large surveys: the approximation, with thin composites always exact -------------------------------


def with_a_thin_cro(n_respondents: int, seed: int, thin: tuple[float, ...] = (3.0, 3.0, 4.0, 3.0)) -> dict:
    """`generated` plus THIN, rated `thin` by respondents spread over the survey (who rate other CROs
    too: shared raters)."""
    ratings = generated(n_respondents, 8, seed, winner=0.15)
    for respondent, value in zip(sorted(ratings)[:: len(ratings) // len(thin)], thin, strict=False):
        ratings[respondent]["THIN"] = value
    return ratings


def test_above_the_threshold_a_thin_cro_is_resampled_exactly(monkeypatch):
    """A survey above the threshold (lowered to 0 here: the real one is too large for a unit test) with a
    thin CRO (4 evaluations, by respondents who rate other CROs too): its interval is the one of exact
    resampling of the whole survey with the same seed, within 5% of its width, while the approximation
    alone would give it 11-14% less; a thick CRO keeps the approximation's interval, bit for bit.

    Not bit for bit for the thin CRO: its respondents' counts are drawn from their marginal multinomial
    (the exact distribution), not as the very draws of the whole survey (module docstring). The 5%:
    over seeds 0-7 at 4,000 replicates the ratio of the two widths was 0.985-1.012 (SD about 0.008)."""
    data = survey(with_a_thin_cro(1500, 6))
    assert data[0].filter(pa.compute.equal(data[0]["cro"], "THIN")).num_rows == 4
    # The resampling's own spread (no moderation towards the cell's pool), which is what the paths differ in.
    monkeypatch.setattr(uncertainty, "INTERVAL_PRIOR_DF", 0.0)
    exact = by_cro(analyse(*data, CATEGORIES, settings(4000)))
    monkeypatch.setattr(uncertainty, "EXACT_UP_TO_WORK", 0)
    mixed = by_cro(analyse(*data, CATEGORIES, settings(4000)))
    monkeypatch.setattr(uncertainty, "EXACT_BELOW_EVALUATIONS", 0)
    approximate = by_cro(analyse(*data, CATEGORIES, settings(4000)))

    def width(figures: dict, cro: str) -> float:
        return figures[cro]["ci_high"] - figures[cro]["ci_low"]

    assert exact["THIN"]["ci_low"] > 1.0 and exact["THIN"]["ci_high"] < 5.0  # not clipped: widths compare
    assert width(mixed, "THIN") == pytest.approx(width(exact, "THIN"), rel=0.05)
    assert mixed["THIN"]["ci_low"] == pytest.approx(exact["THIN"]["ci_low"], abs=0.05)
    assert width(approximate, "THIN") < 0.93 * width(exact, "THIN")
    for cro in ("CRO00", "CRO03"):
        assert (mixed[cro]["ci_low"], mixed[cro]["ci_high"]) == (
            approximate[cro]["ci_low"],
            approximate[cro]["ci_high"],
        )
        assert (mixed[cro]["ci_low"], mixed[cro]["ci_high"]) != (exact[cro]["ci_low"], exact[cro]["ci_high"])
    # One replicate matrix per cell: the shares of leading still add up to 1, and THIN's rank interval
    # and award share stay near the exact run's (the other columns of its cell are the approximation's).
    assert sum(row["p_leader"] for row in mixed.values()) == pytest.approx(1.0)
    assert abs(mixed["THIN"]["rank_low"] - exact["THIN"]["rank_low"]) <= 1
    assert abs(mixed["THIN"]["rank_high"] - exact["THIN"]["rank_high"]) <= 1
    assert mixed["THIN"]["p_leader"] == pytest.approx(exact["THIN"]["p_leader"], abs=0.03)


def test_the_threshold_at_its_boundary(monkeypatch):
    """EXACT_UP_TO_WORK, the real constant: at (2 x ratings x replicates) = the largest work not above it
    the survey is resampled exactly; one replicate more, it takes the approximation, all but its thin
    composites (n < EXACT_BELOW_EVALUATIONS), which are still exact. The paths are spied on, not run:
    the exact path at this size takes seconds."""
    data = survey(with_a_thin_cro(5000, 8))
    n_ratings = data[1].num_rows
    calls: list[tuple[str, object]] = []

    def exact(survey_, settings_):
        calls.append(("exact", None))
        return np.tile(survey_.observed, (settings_.replicates, 1))

    def thin(survey_, settings_, indices):
        calls.append(("exact", [survey_.composites[i][1] for i in indices]))
        return np.tile(survey_.observed, (settings_.replicates, 1))

    approximate = uncertainty._approximate_replicates

    def approximation(*args):
        calls.append(("approximation", None))
        return approximate(*args)

    monkeypatch.setattr(uncertainty, "_exact_replicates", exact)
    monkeypatch.setattr(uncertainty, "_thin_replicates", thin)
    monkeypatch.setattr(uncertainty, "_approximate_replicates", approximation)
    below = uncertainty.EXACT_UP_TO_WORK // (2 * n_ratings)
    assert 2 * n_ratings * below <= uncertainty.EXACT_UP_TO_WORK < 2 * n_ratings * (below + 1)
    analyse(*data, CATEGORIES, settings(below))
    assert calls == [("exact", None)]
    calls.clear()
    analyse(*data, CATEGORIES, settings(below + 1))
    assert calls == [("approximation", None), ("exact", ["THIN", "THIN"])]  # its segment and overall
    assert uncertainty.EXACT_BELOW_EVALUATIONS == 20


# --- the arrangement: ratings stored as float32, exactly; influences one category at a time ----------------

PARTS = ("big_pharma", "small_pharma")


def several_attributes(n_respondents: int, seed: int) -> tuple[tuple[pa.Table, ...], list[tuple[str, str]]]:
    """Respondents of both segments rating 1-3 of 5 CROs on a1-a3, each answer blank with chance 0.3;
    categories k1 (a1, a2) and k2 (a2, a3): a2 in both. Every composite eligible."""
    rng = np.random.default_rng(seed)
    evaluations, rows = [], []
    for rank in range(1, n_respondents + 1):
        segment = PARTS[rng.integers(2)]
        for cro in sorted(rng.choice(5, size=rng.integers(1, 4), replace=False)):
            source_row = len(evaluations) + 1
            evaluations.append((source_row, f"CRO{cro}", segment, rank))
            for attribute in ("a1", "a2", "a3"):
                if rng.random() > 0.3:
                    rows.append((source_row, attribute, float(rng.integers(1, 6))))
    categories = [("k1", "a1"), ("k1", "a2"), ("k2", "a2"), ("k2", "a3")]
    keys = sorted({(segment, cro) for _, cro, segment, _ in evaluations})
    keys += sorted({("overall", cro) for _, cro, _, _ in evaluations})
    composites = [(segment, cro, category, 10, 3.0, True) for segment, cro in keys for category in ("k1", "k2")]

    def table(records: list[tuple], names: list[str]) -> pa.Table:
        return pa.table({name: [record[i] for record in records] for i, name in enumerate(names)})

    return (
        table(evaluations, ["source_row", "cro", "segment", "respondent_rank"]),
        table(rows, ["source_row", "attribute", "rating_value"]),
        table(composites, ["segment", "cro", "category", "n_evaluations", "composite", "is_eligible"]),
    ), categories


def test_whole_number_ratings_are_stored_as_float32_and_any_other_as_float64():
    source_rows = np.array([10, 11, 12])
    ratings = pa.table(
        {"source_row": [10, 11, 12, 12], "attribute": ["a1", "a1", "a2", "zz"], "rating_value": [5.0, 1.0, 3.0, 2.5]}
    )
    matrix = uncertainty._rating_matrix(source_rows, ratings, ["a1", "a2"])  # zz: in no category, skipped
    assert matrix.dtype == np.float32 and matrix.flags.f_contiguous
    np.testing.assert_array_equal(matrix, [[5.0, np.nan], [1.0, np.nan], [np.nan, 3.0]])
    # A rating no float32 holds, in a later batch: the whole matrix becomes float64, nothing else changes.
    batches = [
        pa.record_batch({"source_row": [10], "attribute": ["a1"], "rating_value": [5.0]}),
        pa.record_batch({"source_row": [11], "attribute": ["a2"], "rating_value": [0.1]}),
    ]
    matrix = uncertainty._rating_matrix(source_rows, batches, ["a1", "a2"])
    assert matrix.dtype == np.float64 and matrix.flags.f_contiguous
    np.testing.assert_array_equal(matrix, [[5.0, np.nan], [np.nan, 0.1], [np.nan, np.nan]])


def test_the_replicates_of_float32_storage_are_those_of_float64_bit_for_bit():
    """Stored as float32, the ratings are upcast before any arithmetic: every path's replicates are those of
    the same survey stored as float64, to the last bit."""
    import dataclasses

    data, categories = several_attributes(300, 11)
    stored = uncertainty._arrange(*data, categories)
    assert stored.matrix.dtype == np.float32
    wide = dataclasses.replace(stored, matrix=stored.matrix.astype(np.float64, order="F"))
    cells: dict = {}
    for index, (segment, _, category) in enumerate(stored.composites):
        cells.setdefault((segment, category), []).append(index)
    every = np.arange(len(stored.composites))
    for replicates in (
        lambda s: uncertainty._exact_replicates(s, settings(50)),
        lambda s: uncertainty._approximate_replicates(s, settings(50), cells),
        lambda s: uncertainty._thin_replicates(s, settings(50), every),
    ):
        narrow, reference = replicates(stored), replicates(wide)
        assert narrow.tobytes() == reference.tobytes()


def test_each_influence_is_its_definition_and_they_sum_to_zero_per_composite():
    """Per category and segment, an evaluation's influence is (1/k) x the sum over the category's attributes
    it rated of (rating - the CRO's mean there) / the CRO's count there (k: the CRO's rated attributes of
    the category), worked out here evaluation by evaluation; big_pharma and small_pharma are read at their
    own evaluations. An attribute in two categories counts in both."""
    data, categories = several_attributes(200, 12)
    arranged = uncertainty._arrange(*data, categories)
    names = sorted({attribute for _, attribute in categories})
    for category in ("k1", "k2"):
        influences = uncertainty._influences(arranged, category)
        attributes = [names.index(a) for c, a in categories if c == category]
        for segment in (*PARTS, "overall"):
            codes = arranged.groups[segment]
            for code in np.unique(codes[codes >= 0]):
                members = np.flatnonzero(codes == code)
                ratings = arranged.matrix[members][:, attributes].astype(np.float64)
                rated = ~np.isnan(ratings)
                counts = rated.sum(axis=0)
                means = np.nansum(ratings, axis=0) / np.maximum(counts, 1)
                k = (counts > 0).sum()
                expected = np.where(rated, (ratings - means) / np.maximum(counts, 1), 0.0).sum(axis=1) / max(k, 1)
                np.testing.assert_allclose(influences[segment][members], expected, rtol=0, atol=1e-12)
                assert abs(influences[segment][members].sum()) < 1e-12
