"""The calibration command's pieces (bench/calibrate.py) on a tiny setting: the truths it compares with (the
leniency mixture, computed exactly, against Monte Carlo; the raters' and the population truth), the
data-generating process it draws from (the lenient share, the clustering of lenient raters on favoured CROs
and the unclustered null kinds, response rates, planted winners half a point clear on the composite scale),
each reading judged against the truth it claims, one survey through the real pipeline (every reading from
one run, the approximation forced), the targets' arithmetic and the report. Quick: no timing is asserted."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest

from bench import calibrate
from cro_awards.method import uncertainty
from cro_awards.method.uncertainty import EXACT_UP_TO_WORK

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


def test_the_null_award_kinds_are_unclustered():
    null = [kind for kind in calibrate.KINDS if kind.scenario == "null"]
    unclustered = {kind.n_evaluations for kind in null if not kind.clustered}
    clustered = {kind.n_evaluations for kind in null if kind.clustered}
    assert unclustered == {1500, 5000, 0} and clustered == {1500, 5000, 0}
    # Every other kind keeps the clustering (coverage, spread, planted).
    assert all(kind.clustered for kind in calibrate.KINDS if kind.scenario != "null")
    # No clustering: the same process with lenient respondents picking CROs as the others do. Each CRO's raters
    # are lenient in the population's share exactly, so the raters' truth is the population truth.
    kind = next(kind for kind in calibrate.KINDS if kind.name == "null-5000")
    survey = calibrate.draw_survey(kind, 3, 5, 30_000)
    assert survey.favoured.sum() == 12  # drawn all the same: a label only
    assert (survey.raters_share == 0.2).all()
    np.testing.assert_array_equal(survey.raters_attribute_truth, survey.attribute_truth)
    # Realised: a favoured CRO's raters are no more lenient than another's (SE of each share about 0.004).
    raters_lenient = survey.lenient[survey.respondent]
    favoured = survey.favoured[survey.cro]
    assert raters_lenient[favoured].mean() == pytest.approx(raters_lenient[~favoured].mean(), abs=0.02)
    assert raters_lenient.mean() == pytest.approx(0.2, abs=0.02)
    # The same draw with the clustering: the favoured CROs' raters clearly more lenient.
    clustered_kind = calibrate.Kind("null-clustered", "null", 30_000, 12, 10, True)
    clustered = calibrate.draw_survey(clustered_kind, 3, 5, 30_000)
    lenient = clustered.lenient[clustered.respondent]
    on_favoured = clustered.favoured[clustered.cro]
    assert lenient[on_favoured].mean() - lenient[~on_favoured].mean() > 0.1


def test_choose_cros_without_clustering():
    # factor 1: a lenient respondent picks a favoured CRO with 12 / 36, as any other.
    rng = np.random.default_rng(4)
    favoured = np.zeros(36, dtype=bool)
    favoured[:12] = True
    _, cro = calibrate.choose_cros(rng, np.full(36, 1 / 36), favoured, np.ones(60_000, bool), np.ones(60_000, int), 1.0)
    assert favoured[cro].mean() == pytest.approx(1 / 3, abs=0.01)


def test_each_reading_is_judged_against_the_truth_it_claims():
    assert calibrate.READING_TRUTH == {"official": "raters", "shrunk": "raters", "adjusted": "population"}
    assert set(calibrate.AWARD_RULES) <= set(calibrate.READING_TRUTH)
    assert calibrate.FIGURE_TRUTH["composite"] == calibrate.FIGURE_TRUTH["ci_low / ci_high"] == "raters"
    assert calibrate.FIGURE_TRUTH["p_leader"] == calibrate.FIGURE_TRUTH["composite_shrunk"] == "raters"
    assert calibrate.FIGURE_TRUTH["composite_adjusted"] == "population"
    assert set(calibrate.TRUTHS) == {"raters", "population"}
    # No true difference: a null survey's population truth always; its raters' truth only unclustered.
    null = calibrate.Kind("n", "null", 1500, 12, 10, True, clustered=False)
    null_clustered = calibrate.Kind("n", "null", 1500, 12, 10, True)
    spread = calibrate.Kind("s", "spread", 1500, 12, 10, True, clustered=False)
    assert calibrate.null_for(null, "raters") and calibrate.null_for(null, "population")
    assert not calibrate.null_for(null_clustered, "raters") and calibrate.null_for(null_clustered, "population")
    assert not calibrate.null_for(spread, "raters") and not calibrate.null_for(spread, "population")


def _cell_rows() -> tuple[list[dict], dict[str, list[dict]], dict[str, dict]]:
    """One cell of four CROs, weights alike. Raters' truth 5, 3, 3, 3 (a best; mean 3.5, SD sqrt(0.75) =
    0.866: threshold 4.37, a truly above); population truth 3, 5, 3, 3 (b best and truly above)."""
    composites = [
        {
            "segment": "overall",
            "cro": cro,
            "category": "quality",
            "n_evaluations": 20,
            "is_eligible": True,
            "is_co_leader": cro in "ab",
            "composite_shrunk": 4.0 + 0.1 * position,
            "p_leader": 0.5,
        }
        for position, cro in enumerate("abcd")
    ]

    def award(cro: str, kind: str, p: float) -> dict:
        return {
            "segment": "overall",
            "category": "quality",
            "cro": cro,
            "award": kind,
            "p_award": p,
            "is_robust": p >= 0.8,
        }

    awards = {
        "official": [award("a", "leader", 0.9), award("a", "champion", 0.95)],
        "shrunk": [award("a", "leader", 0.9), award("a", "champion", 0.95)],
        "adjusted": [award("b", "leader", 0.85), award("b", "champion", 0.9)],
    }
    truths = {
        "raters": {("overall", cro, "quality"): value for cro, value in zip("abcd", (5.0, 3.0, 3.0, 3.0), strict=True)},
        "population": {
            ("overall", cro, "quality"): value for cro, value in zip("abcd", (3.0, 5.0, 3.0, 3.0), strict=True)
        },
    }
    return composites, awards, truths


def test_cell_records_judge_each_reading_against_its_truth():
    composites, awards, truths = _cell_rows()
    [cell] = calibrate.cell_records(composites, awards, truths)
    assert cell["true_champions"] == {"raters": 1, "population": 1}
    assert cell["co_leaders_hold_best"]  # a, the raters' best, is a co-leader
    official, adjusted = cell["rules"]["official"], cell["rules"]["adjusted"]
    # official names a: truly best and truly above against the raters' truth, its own.
    assert official["leader_best"] == 1.0 and official["champions_above"] == 1 == official["robust_champions_above"]
    assert cell["rules"]["shrunk"]["leader_is_best"] == [True]
    # adjusted names b: truly best and truly above against the population truth, its own.
    assert adjusted["leader_best"] == 1.0 and adjusted["robust_champions_above"] == 1
    assert adjusted["leader_p"] == [0.85] and adjusted["champion_is_above"] == [True]
    # The diagnostic: official and shrunk against the population truth, where a is neither; none for adjusted.
    assert set(cell["population"]) == {"official", "shrunk"}
    diagnostic = cell["population"]["official"]
    assert diagnostic["leader_best"] == 0.0 and diagnostic["robust_champions"] == 1
    assert diagnostic["robust_champions_above"] == 0 and diagnostic["true_champions"] == 1
    # A planted winner (b): its gap under each truth, against the best other eligible CRO.
    [planted] = calibrate.cell_records(composites, awards, truths, {"quality": "b"})
    assert planted["planted_gap"] == {"raters": -2.0, "population": 2.0}
    assert planted["rules"]["adjusted"]["planted_robust_leader"] and not planted["rules"]["official"]["planted_leader"]
    assert planted["rules"]["official"]["planted_p_leader"] == 0.5


def _null_outcome(index: int, kind: str, official_robust: int) -> calibrate.Outcome:
    composites, awards, _ = _cell_rows()
    flat = {("overall", cro, "quality"): 4.0 for cro in "abcd"}
    champions = [{**awards["official"][1], "cro": cro} for cro in "abcd"[:official_robust]]
    awards = {
        "official": [awards["official"][0], *champions],
        "shrunk": [awards["shrunk"][0]],
        "adjusted": [{**awards["adjusted"][0], "p_award": 0.3, "is_robust": False}],
    }
    outcome = calibrate.Outcome(index, kind, "null", 1500, True, 0.0, "x")
    outcome.cells = calibrate.cell_records(composites, awards, {"raters": flat, "population": flat})
    return outcome


def test_the_null_targets_use_the_unclustered_kinds_and_the_adjusted_reading_the_clustered_too():
    outcomes = [_null_outcome(0, "null-1500", 0), _null_outcome(1, "null-clustered-1500", 2)]
    rows = calibrate.award_tables(outcomes)["rules"]
    flags = {(row["kind"], row["rule"]): row["null"] for row in rows}
    assert flags == {
        ("null-1500", "official"): True,
        ("null-1500", "shrunk"): True,
        ("null-1500", "adjusted"): True,
        ("null-clustered-1500", "official"): False,
        ("null-clustered-1500", "shrunk"): False,
        ("null-clustered-1500", "adjusted"): True,
    }
    null_lines = {row["target"]: row for row in calibrate.targets(outcomes) if "no true difference" in row["target"]}
    official = [row for target, row in null_lines.items() if target.startswith("`official`")]
    # official: the unclustered cell only (its 2 robust champions in the clustered one are not judged here).
    assert [(row["measured"].split(" (")[0], row["met"]) for row in official] == [("0.000", True)]
    adjusted = [target for target in null_lines if target.startswith("`adjusted`")]
    assert len(adjusted) == 2 and any("clustered leniency" in target for target in adjusted)
    # The diagnostic shows the clustered kind's official awards against the population truth: 2 a cell.
    diagnostic = calibrate.diagnostic_table(outcomes)
    [official_row] = [row for row in diagnostic if row["kind"] == "null-clustered-1500" and row["rule"] == "official"]
    assert official_row["population"]["robust_champions"] == 2.0
    assert all(row["kind"] != "null-1500" for row in diagnostic)


def test_coverage_is_of_the_raters_truth_and_the_population_truth_a_diagnostic():
    def intervals(below, above, population_below, population_above) -> calibrate.Intervals:
        return calibrate.Intervals(
            "exact",
            False,
            np.array([12, 12, 12, 12]),
            np.array(below),
            np.array(above),
            np.array(population_below),
            np.array(population_above),
            np.full(4, 0.5),
        )

    outcome = calibrate.Outcome(0, "coverage-600", "spread", 600, True, 0.0, "x")
    outcome.intervals = [intervals([False] * 4, [False, False, False, True], [True, True, False, False], [False] * 4)]
    [row] = [row for row in calibrate.coverage_table([outcome]) if row["bin"] == "10-19"]
    assert row["exact"]["coverage"] == 0.75 and row["exact"]["above"] == 0.25 and row["exact"]["below"] == 0.0
    assert row["exact"]["population_coverage"] == 0.5


def test_reading_awards_groups_the_readings_rows():
    class Result:
        readings = pa.table(
            {
                "reading": ["official", "adjusted", "official", "other"],
                "cro": ["a", "b", "c", "d"],
            }
        )

    found = calibrate.reading_awards(Result())
    assert [row["cro"] for row in found["official"]] == ["a", "c"]
    assert [row["cro"] for row in found["adjusted"]] == ["b"] and found["shrunk"] == []
    assert list(found) == list(calibrate.AWARD_RULES)


def test_one_run_carries_every_readings_awards(tmp_path):
    # What run_survey relies on: the awards a run with award_rule R publishes are the readings' rows of R,
    # and nothing else it publishes depends on the rule.
    from cro_awards.reading.config import load_config
    from cro_awards.run.pipeline import run_pipeline

    survey = calibrate.draw_survey(TINY, 2, 7, 300)
    yaml_path, csv_path = calibrate.write_survey(survey, tmp_path, 50, 3)
    official = run_pipeline(load_config(yaml_path), csv_path)
    keys = ("segment", "category", "cro", "award", "p_award", "is_robust")
    for rule in calibrate.AWARD_RULES:
        run = official if rule == "official" else run_pipeline(load_config(yaml_path, {"award_rule": rule}), csv_path)
        published = sorted(tuple(row[key] for key in keys) for row in run.tables["awards"].to_pylist())
        read = sorted(tuple(row[key] for key in keys) for row in calibrate.reading_awards(official)[rule])
        assert published == read, rule
        assert run.tables["composite_scores"].equals(official.tables["composite_scores"])


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


def test_planted_winners_are_half_a_point_clear_on_the_composite_scale():
    kind = calibrate.Kind("planted", "planted", 1500, 12, 10, True)
    survey = calibrate.draw_survey(kind, 4, 9, 1500)
    assert len(set(survey.planted.tolist())) == len(calibrate.CATEGORIES)
    assert calibrate.PLANTED_GAP == 0.5
    for k, winner in enumerate(survey.planted):
        attributes = k == calibrate.ATTRIBUTE_CATEGORY
        for truth in (survey.attribute_truth, survey.raters_attribute_truth):
            # The composite of every attribute: at least 0.5 above every other CRO's...
            composites = truth[:, attributes].mean(axis=1)
            assert composites[winner] - np.delete(composites, winner).max() >= 0.5 - 1e-9
            # ...and whichever attributes thin cells leave out of either composite: the winner's least
            # attribute truth is 0.5 above every other CRO's largest.
            assert truth[winner, attributes].min() - np.delete(truth[:, attributes], winner, axis=0).max() >= 0.5 - 1e-9
        # The least mu that does it: 0.01 less falls short on one of the truths.
        lower = survey.mu.copy()
        lower[winner, k] -= 0.01
        least, best_other = calibrate.planted_margin(lower, winner, k, survey.offsets, survey.raters_share)
        assert least - best_other < 0.5
    # The other CROs' means are drawn lower for planted kinds: room below the ceiling of 5.
    assert np.median(np.delete(survey.mu, survey.planted, axis=0)) < 4.0


def test_plant_winners_by_hand():
    offsets = np.zeros(len(calibrate.ATTRIBUTES))
    mu = np.full((4, len(calibrate.CATEGORIES)), 3.0)
    share = np.full(4, 0.2)
    planted = calibrate.plant_winners(mu, np.array([0, 1, 2]), offsets, share)
    # Every CRO alike and no clustering: the winner's expected rating is exactly 0.5 above 3.0's.
    for k, winner in enumerate((0, 1, 2)):
        assert calibrate.mixture_rating(planted[winner, k]) == pytest.approx(
            calibrate.mixture_rating(3.0) + 0.5, abs=1e-9
        )
        assert np.delete(planted[:, k], winner).tolist() == [3.0, 3.0, 3.0]
    # The winner's raters are never lenient, the others' always: the binding truths are the winner's
    # non-lenient expectation and the others' fully lenient one (3.0 + 0.6).
    share = np.array([0.0, 1.0, 1.0, 1.0])
    planted = calibrate.plant_winners(mu, np.array([0, 1, 2]), offsets, share)
    assert calibrate.expected_rating(planted[0, 0]) == pytest.approx(calibrate.expected_rating(3.6) + 0.5, abs=1e-9)
    # Too near the top for 0.5 on the rating scale (4.8 expects about 4.66): the others are lowered together,
    # by the least shift with which the cap (6) does it.
    high = np.full((4, len(calibrate.CATEGORIES)), 4.8)
    high[3] = 4.6
    planted = calibrate.plant_winners(high, np.array([0, 1, 2]), offsets, np.full(4, 0.2))
    shift = 4.8 - planted[1, 0]
    assert shift > 0 and planted[2:, 0].tolist() == pytest.approx([4.8 - shift, 4.6 - shift], abs=1e-12)
    assert planted[0, 0] == pytest.approx(calibrate.PLANTED_MU_CAP, abs=1e-6)
    assert calibrate.mixture_rating(calibrate.PLANTED_MU_CAP) - calibrate.mixture_rating(4.8 - shift) == pytest.approx(
        0.5, abs=1e-6
    )


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
                "planted_gap": {"raters": 0.6, "population": 0.55},
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
        assert set(cell["population"]) == {rule for rule in calibrate.AWARD_RULES if rule != "adjusted"}
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
    assert "**Two truths.**" in report and "coverage of the raters' truth >= 0.93" in report
    assert "## Diagnostic, not a target: the official and shrunk readings against the population truth" in report
    assert "population truth (diagnostic)" in report
    # One pipeline run a survey, and one more for the forced approximation.
    assert "3 pipeline runs" in report
