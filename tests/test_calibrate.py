"""The calibration command's pieces (bench/calibrate.py) on a tiny setting: the truth it compares with (the
leniency mixture, computed exactly, against Monte Carlo), the data-generating process it draws from (the
lenient share, the clustering of lenient raters on favoured CROs, response rates, planted winners), one
survey through the real pipeline (every award rule, the approximation forced), the targets' arithmetic and
the report. Quick: no timing is asserted."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest

from bench import calibrate
from cro_awards import uncertainty
from cro_awards.uncertainty import EXACT_UP_TO_WORK

TINY = calibrate.Kind("tiny", "spread", 300, 3, 3, True)
"""min_evaluations 3: the least the YAML accepts beside min_cell_size 3 (every published composite eligible)."""


def phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def simulate_ratings(mu: float, draws: int, lenient_share: float, rng: np.random.Generator) -> np.ndarray:
    """The process of one rating, drawn term by term as the module docstring states it."""
    lenient = rng.random(draws) < lenient_share
    leniency = rng.normal(0, 0.35, draws) + 0.6 * lenient
    halo = rng.normal(0, 0.3, draws)
    noise = rng.normal(0, 0.6, draws)
    return np.clip(np.rint(mu + leniency + halo + noise), 1, 5)


def test_expected_rating_by_hand():
    # Symmetry: the cut points 1.5 .. 4.5 lie symmetrically around 3.
    assert calibrate.expected_rating(3.0) == pytest.approx(3.0, abs=1e-12)
    # Far outside the scale: always the end of the scale.
    assert calibrate.expected_rating(50.0) == pytest.approx(5.0, abs=1e-12)
    assert calibrate.expected_rating(-50.0) == pytest.approx(1.0, abs=1e-12)
    # Without noise: the rounded value.
    assert calibrate.expected_rating(4.2, sd=1e-6) == pytest.approx(4.0, abs=1e-9)
    assert calibrate.expected_rating(4.6, sd=1e-6) == pytest.approx(5.0, abs=1e-9)
    # mu = 4: 1 + P(X >= 1.5) + P(X >= 2.5) + P(X >= 3.5) + P(X >= 4.5), the last two adding up to 1.
    sd = math.sqrt(0.35**2 + 0.3**2 + 0.6**2)
    assert math.isclose(calibrate.RATING_SD, sd, abs_tol=1e-12)
    assert calibrate.expected_rating(4.0) == pytest.approx(1 + phi(2.5 / sd) + phi(1.5 / sd) + 1, abs=1e-12)


def test_mixture_rating_by_hand():
    # The two components: no lenient respondent, or only lenient ones (every rating 0.6 higher).
    for mu in (2.0, 4.2):
        assert calibrate.mixture_rating(mu, 0.0) == pytest.approx(calibrate.expected_rating(mu), abs=1e-12)
        assert calibrate.mixture_rating(mu, 1.0) == pytest.approx(calibrate.expected_rating(mu + 0.6), abs=1e-12)
    # The population: 0.8 x the one + 0.2 x the other, each by the normal CDF at the cut points.
    sd = math.sqrt(0.35**2 + 0.3**2 + 0.6**2)

    def component(mu: float) -> float:
        return 1 + sum(phi((mu - cut) / sd) for cut in (1.5, 2.5, 3.5, 4.5))

    assert calibrate.mixture_rating(4.2) == pytest.approx(0.8 * component(4.2) + 0.2 * component(4.8), abs=1e-12)
    # Leniency lifts the population above the non-lenient expectation; clipping at 5 keeps it below mu + 0.12.
    assert calibrate.expected_rating(4.2) < calibrate.mixture_rating(4.2) < 4.2 + 0.2 * 0.6


@pytest.mark.parametrize(("mu", "share"), [(3.5, 0.2), (4.2, 0.2), (4.8, 0.2), (4.2, 0.35)])
def test_mixture_truth_matches_monte_carlo(mu, share):
    rng = np.random.default_rng(11)
    draws = simulate_ratings(mu, 1_000_000, share, rng)
    # SD of one rating < 1: the Monte Carlo SE is below 0.001.
    assert calibrate.mixture_rating(mu, share) == pytest.approx(draws.mean(), abs=0.004)


def test_true_composites_and_champion_truth():
    mu = np.full((2, len(calibrate.CATEGORIES)), 3.0)
    offsets = np.zeros(len(calibrate.ATTRIBUTES))
    assert calibrate.true_composites(mu, offsets) == pytest.approx(np.full((2, 3), calibrate.mixture_rating(3.0)))
    # The mean over a category's attributes: quality has two, offsets +1 and -1 around mu = 3.
    offsets[list(calibrate.ATTRIBUTES).index("data_quality")] = 1.0
    offsets[list(calibrate.ATTRIBUTES).index("project_manager_quality")] = -1.0
    quality = list(calibrate.CATEGORIES).index("quality")
    expected = (calibrate.mixture_rating(4.0) + calibrate.mixture_rating(2.0)) / 2
    assert calibrate.true_composites(mu, offsets)[:, quality] == pytest.approx([expected, expected], abs=1e-12)
    # A CRO's raters' truth: its own lenient share, per CRO.
    raters = calibrate.true_composites(mu, np.zeros(len(calibrate.ATTRIBUTES)), np.array([0.0, 1.0]))
    assert raters[:, 0] == pytest.approx([calibrate.expected_rating(3.0), calibrate.expected_rating(3.6)], abs=1e-12)
    # Weighted mean (3 + 3 + 2 x 4) / 4 = 3.5, weighted SD 0.5: the threshold is 4.0, met by the third only.
    truly = calibrate.champion_truth(np.array([3.0, 3.0, 4.0]), np.array([1.0, 1.0, 2.0]))
    assert truly.tolist() == [False, False, True]
    # No spread: nobody.
    assert not calibrate.champion_truth(np.full(4, 3.7), np.ones(4)).any()


def test_drawn_survey_is_well_formed():
    survey = calibrate.draw_survey(TINY, 0, 7, 300)
    again = calibrate.draw_survey(TINY, 0, 7, 300)
    assert survey.n_evaluations == 300
    np.testing.assert_array_equal(survey.ratings, again.ratings)
    pairs = set(zip(survey.respondent.tolist(), survey.cro.tolist(), strict=True))
    assert len(pairs) == 300  # no respondent rates a CRO twice
    assert (~np.isnan(survey.ratings)).any(axis=1).all()  # every row has a rating
    rated = survey.ratings[~np.isnan(survey.ratings)]
    assert set(np.unique(rated)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    weights = calibrate.popularity(300, 3)
    assert 300 * weights.min() == pytest.approx(3, rel=1e-6)
    assert (survey.planted == -1).all()


@pytest.fixture(scope="module")
def big() -> calibrate.Survey:
    return calibrate.draw_survey(calibrate.Kind("big", "spread", 30_000, 12, 10, True), 1, 5, 30_000)


def test_the_lenient_share_and_the_favoured_third(big):
    n_respondents = len(big.lenient)
    assert big.lenient.mean() == pytest.approx(0.2, abs=3 * math.sqrt(0.16 / n_respondents))
    assert big.favoured.sum() == calibrate.N_CROS // 3 == 12
    # Leniency is not mean-zero: the lenient respondents' ratings sit higher.
    by_respondent = np.bincount(big.respondent, weights=np.nan_to_num(big.ratings).sum(axis=1))
    counts = np.bincount(big.respondent, weights=(~np.isnan(big.ratings)).sum(axis=1))
    mean = by_respondent / counts
    assert mean[big.lenient].mean() - mean[~big.lenient].mean() > 0.2


def test_choose_cros_multiplies_the_favoured_weights_for_lenient_respondents():
    # Uniform weights, one pick each: a lenient respondent picks a favoured CRO with probability
    # 12 x 3 / (12 x 3 + 24) = 0.6, another respondent with 12 / 36.
    rng = np.random.default_rng(3)
    favoured = np.zeros(36, dtype=bool)
    favoured[:12] = True
    weights = np.full(36, 1 / 36)
    ones = np.ones(60_000, dtype=np.int64)
    for lenient, expected in ((True, 0.6), (False, 1 / 3)):
        respondent, cro = calibrate.choose_cros(rng, weights, favoured, np.full(60_000, lenient), ones)
        assert len(cro) == 60_000 and (respondent == np.arange(60_000)).all()
        assert favoured[cro].mean() == pytest.approx(expected, abs=0.01)


def test_lenient_raters_cluster_on_the_favoured_cros(big):
    raters_lenient = big.lenient[big.respondent]
    counts = np.bincount(big.cro, minlength=calibrate.N_CROS)
    realised = np.bincount(big.cro, weights=raters_lenient, minlength=calibrate.N_CROS) / counts
    favoured = big.favoured
    # The expected share among each CRO's raters (simulated apart) matches the drawn survey's, pooled...
    for group in (favoured, ~favoured):
        expected = counts[group] @ big.raters_share[group] / counts[group].sum()
        assert realised[group] @ counts[group] / counts[group].sum() == pytest.approx(expected, abs=0.015)
    # ...and the favoured CROs' raters are clearly more lenient than the population, the others' less.
    assert big.raters_share[favoured].min() > 0.25 > 0.2 > 0.17 > big.raters_share[~favoured].max()
    # So the raw composite's limit (the raters' truth) lies above the truth for favoured CROs, below for others.
    difference = big.raters_attribute_truth - big.attribute_truth
    assert (difference[favoured] > 0).all() and (difference[~favoured] < 0).all()


def test_response_rates_vary_by_respondent_and_attribute_within_bounds(big):
    low, high = calibrate.RESPONSE_RATE
    assert (low, high) == (0.35, 0.97)
    extreme = calibrate.response_rates(np.array([-50.0, 0.0, 50.0]), np.array([-50.0, 0.0, 50.0]))
    assert extreme.min() >= low and extreme.max() <= high
    assert extreme[0, 0] == pytest.approx(low) and extreme[2, 2] == pytest.approx(high)
    assert big.rates.min() >= low and big.rates.max() <= high
    assert big.rates.std(axis=0).min() > 0.05  # each attribute's rate differs between respondents
    assert np.ptp(big.rates.mean(axis=0)) > 0.05  # and the attributes' rates differ
    # Answered as drawn: per attribute, the share answered is the mean of its rates over the evaluations
    # (a row left blank gets one attribute back, at most 0.65^8 of rows).
    answered = (~np.isnan(big.ratings)).mean(axis=0)
    assert answered == pytest.approx(big.rates[big.respondent].mean(axis=0), abs=0.015)
    # The mean rate by quadrature against Monte Carlo over alpha and u.
    rng = np.random.default_rng(2)
    alpha = rng.uniform(*calibrate.ATTRIBUTE_LOGIT, 400_000)
    u = rng.normal(0, calibrate.PROPENSITY_SD, 400_000)
    monte_carlo = (low + (high - low) / (1 + np.exp(-(alpha + u)))).mean()
    assert calibrate.mean_response_rate() == pytest.approx(monte_carlo, abs=0.002)


def test_planted_winners_lead_their_category():
    kind = calibrate.Kind("planted", "planted", 1500, 12, 10, True)
    survey = calibrate.draw_survey(kind, 4, 9, 1500)
    assert len(set(survey.planted.tolist())) == len(calibrate.CATEGORIES)
    for k, winner in enumerate(survey.planted):
        others = np.delete(survey.truth[:, k], winner)
        assert survey.truth[winner, k] > others.max() + 0.15  # clipping compresses the 0.5 of mu
    mu = np.arange(12, dtype=np.float64).reshape(4, 3) / 10
    planted = calibrate.plant_winners(mu, np.array([0, 1, 2]))
    assert planted[:, 0].tolist() == pytest.approx([0.9 + 0.5, 0.3, 0.6, 0.9])
    assert planted[1, 1] == pytest.approx(1.0 + 0.5) and planted[2, 2] == pytest.approx(1.1 + 0.5)


def test_composite_truth_leaves_out_the_attributes_of_thin_cells():
    # Two CROs; compatibility's three attributes have expected scores 3, 4, 5 (CRO 0) and 2, 2, 2 (CRO 1).
    truth = np.zeros((2, len(calibrate.ATTRIBUTES)))
    first, second, third = calibrate.CATEGORIES["compatibility"]
    for name, value in zip((first, second, third), (3.0, 4.0, 5.0), strict=True):
        truth[0, calibrate.ATTRIBUTES.index(name)] = value
        truth[1, calibrate.ATTRIBUTES.index(name)] = 2.0
    rows = (
        [{"segment": "overall", "cro": "a", "attribute": name} for name in (first, second, third)]
        + [  # Small Pharma: the third attribute's cell is thin (no row), so the composite is (3 + 4) / 2
            {"segment": "small_pharma", "cro": "a", "attribute": name} for name in (first, second)
        ]
        + [{"segment": "overall", "cro": "b", "attribute": first}]
    )
    assert calibrate.composite_truth(truth, rows, {"a": 0, "b": 1}) == {
        ("overall", "a", "compatibility"): 4.0,
        ("small_pharma", "a", "compatibility"): 3.5,
        ("overall", "b", "compatibility"): 2.0,
    }
    # With every attribute published it is true_composites' value.
    mu = np.full((1, len(calibrate.CATEGORIES)), 3.6)
    offsets = np.linspace(-0.2, 0.2, len(calibrate.ATTRIBUTES))
    everything = [{"segment": "overall", "cro": "a", "attribute": name} for name in calibrate.ATTRIBUTES]
    by_category = calibrate.composite_truth(calibrate.true_attributes(mu, offsets), everything, {"a": 0})
    composites = calibrate.true_composites(mu, offsets)[0]
    for k, category in enumerate(calibrate.CATEGORIES):
        assert by_category["overall", "a", category] == pytest.approx(composites[k], abs=1e-12)


def test_large_surveys_take_the_approximation():
    for replicates in (200, 1000):
        size = calibrate.large_size(replicates)
        assert 2 * size * calibrate.expected_ratings_per_evaluation() * replicates > EXACT_UP_TO_WORK


def test_survey_counts_and_plan():
    assert calibrate.survey_counts() == {kind.name: kind.surveys for kind in calibrate.KINDS}
    scaled = calibrate.survey_counts(100)
    assert sum(scaled.values()) == 100 and min(scaled.values()) >= 1
    tasks = calibrate.plan({"coverage-600": 2, "planted-1500": 3}, 7, 50)
    assert [task[1] for task in tasks] == list(range(5))
    assert [task[0].name for task in tasks].count("planted-1500") == 3


def test_composite_estimates_reads_composite_adjusted_when_there():
    rows = {
        "segment": ["overall", "overall", "overall"],
        "cro": ["a", "b", "c"],
        "category": ["quality"] * 3,
        "composite": [4.0, 4.5, 3.0],
        "is_eligible": [True, True, False],
    }
    truth = {("overall", cro, "quality"): 4.2 for cro in "abc"}
    plain = calibrate.composite_estimates(pa.table(rows), truth, truth, {"a"})
    assert plain.adjusted is None and plain.raw.tolist() == [4.0, 4.5] and plain.favoured.tolist() == [True, False]
    adjusted = calibrate.composite_estimates(
        pa.table({**rows, "composite_adjusted": [3.9, None, 3.1]}), truth, truth, set()
    )
    assert adjusted.adjusted[0] == 3.9 and math.isnan(adjusted.adjusted[1])


def test_approximation_forced_is_undone():
    with calibrate.approximation_forced():
        assert uncertainty.EXACT_UP_TO_WORK == 0
    assert uncertainty.EXACT_UP_TO_WORK == EXACT_UP_TO_WORK


def _planted_outcome(index: int, hits: int, cells: int) -> calibrate.Outcome:
    outcome = calibrate.Outcome(index, "planted-1500", "planted", 1500, True, 0.0, "x")
    for cell in range(cells):
        win = cell < hits
        outcome.cells.append(
            {
                "cell": (("big_pharma", "small_pharma", "overall")[cell % 3], "quality"),
                "planted_eligible": True,
                "planted_gap": 0.3,
                "rules": {
                    "official": {
                        "planted_leader": True,
                        "planted_robust_leader": True,
                        "planted_p_leader": 0.95 if win else 0.5,
                    }
                },
            }
        )
    return outcome


def test_the_planted_target_is_598_of_600():
    met = calibrate.planted_table([_planted_outcome(0, 300, 300), _planted_outcome(1, 298, 300)])
    assert [(row["hits"], row["cells"], row["met"]) for row in met if row["kind"] == "all planted"] == [
        (598, 600, True)
    ]
    missed = calibrate.planted_table([_planted_outcome(0, 300, 300), _planted_outcome(1, 297, 300)])
    assert [row["met"] for row in missed if row["kind"] == "all planted"] == [False]


def test_a_survey_through_the_pipeline_and_the_report(tmp_path):
    outcome = calibrate.run_survey((TINY, 0, 7, 50, 300))
    assert outcome.exact
    assert outcome.n_evaluations == 300
    [intervals] = outcome.intervals
    assert intervals.path == "exact" and not intervals.forced
    assert len(intervals.n) > 0 and (intervals.width >= 0).all()
    assert (intervals.n >= calibrate.MIN_CELL_SIZE).all(), "no composite rests on a thin cell"
    assert outcome.cells, "a 300-row survey with min_evaluations 3 has cells with awards"
    for cell in outcome.cells:
        assert set(cell["rules"]) == set(calibrate.AWARD_RULES)
        official = cell["rules"]["official"]
        assert official["leaders"] >= 1 and 0 <= official["leader_best"] <= 1
        assert official["champions_above"] <= official["champions"]
        assert official["robust_champions_above"] <= official["robust_champions"] <= official["champions"]
    estimates = outcome.estimates
    assert len(estimates.raw) >= len(intervals.n) and estimates.favoured.any()

    forced_kind = calibrate.Kind("tiny-forced", "planted", 600, 3, 3, False, force_approximation=True)
    forced = calibrate.run_survey((forced_kind, 1, 7, 50, 600))
    assert [(run.path, run.forced) for run in forced.intervals] == [("exact", False), ("approximate", True)]
    exact, approximate = forced.intervals
    np.testing.assert_array_equal(exact.n, approximate.n)
    assert not np.allclose(exact.width[exact.n >= 20], approximate.width[approximate.n >= 20])
    assert uncertainty.EXACT_UP_TO_WORK == EXACT_UP_TO_WORK

    report = calibrate.render(
        [outcome, forced],
        command="python -m bench.calibrate --test",
        replicates=50,
        seed=7,
        workers=1,
        seconds=1.0,
        today=dt.date(2026, 1, 2),
        version="commit abc1234",
    )
    assert "2026-01-02" in report and "python -m bench.calibrate --test" in report
    assert "## Targets (issue 21): 2026-01-02, engine commit abc1234" in report
    assert "✓" in report or "✗" in report
    coverage_rows = [line for line in report.splitlines() if line.startswith("| ")]
    for _, _, label in calibrate.BINS:
        assert any(line.startswith(f"| {label} |") for line in coverage_rows), label
    assert "1 forced" in report
    assert "Zero-width intervals" in report
    assert "## Awards with a real spread" in report and "## The raw composite's bias" in report
    for rule in calibrate.AWARD_RULES:
        assert f"`award_rule: {rule}`" in report
