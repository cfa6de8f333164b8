"""The calibration command's pieces (bench/calibrate.py) on a tiny setting: the truth it compares with, the
surveys it draws, one survey through the real pipeline, and the report's table. Quick: no timing is asserted."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from bench import calibrate
from cro_awards.uncertainty import EXACT_UP_TO_WORK

TINY = calibrate.Kind("tiny", "spread", 300, 3, 3, True)
"""min_evaluations 3: the least the YAML accepts beside min_cell_size 3 (every published composite eligible)."""


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
    sd = math.hypot(0.3, 0.6)
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    assert calibrate.expected_rating(4.0) == pytest.approx(1 + phi(2.5 / sd) + phi(1.5 / sd) + 1, abs=1e-12)


def test_expected_rating_matches_simulation():
    rng = np.random.default_rng(1)
    for mu in (2.2, 3.8, 4.7):
        draws = np.clip(np.rint(mu + rng.normal(0, calibrate.RATING_SD, 400_000)), 1, 5)
        assert calibrate.expected_rating(mu) == pytest.approx(draws.mean(), abs=0.01)


def test_true_composites_and_champion_truth():
    mu = np.full((2, len(calibrate.CATEGORIES)), 3.0)
    offsets = np.zeros(len(calibrate.ATTRIBUTES))
    assert calibrate.true_composites(mu, offsets) == pytest.approx(np.full((2, 3), 3.0))
    # The mean over a category's attributes: quality has two, offsets +1 and -1 around mu = 3 average 3 by symmetry.
    offsets[list(calibrate.ATTRIBUTES).index("data_quality")] = 1.0
    offsets[list(calibrate.ATTRIBUTES).index("project_manager_quality")] = -1.0
    quality = list(calibrate.CATEGORIES).index("quality")
    assert calibrate.true_composites(mu, offsets)[:, quality] == pytest.approx([3.0, 3.0], abs=1e-12)
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


def test_a_survey_through_the_pipeline_and_the_report(tmp_path):
    outcome = calibrate.run_survey((TINY, 0, 7, 50, 300))
    assert outcome.exact
    assert outcome.n_evaluations == 300
    assert len(outcome.n) > 0 and (outcome.width >= 0).all()
    assert outcome.cells, "a 300-row survey with min_evaluations 3 has cells with awards"
    assert (outcome.n >= calibrate.MIN_CELL_SIZE).all(), "no composite rests on a thin cell"
    for cell in outcome.cells:
        assert cell["leaders"] >= 1 and 0 <= cell["leader_best"] <= 1
        assert cell["champions_above"] <= cell["champions"]
        assert cell["robust_champions_above"] <= cell["robust_champions"] <= cell["champions"]

    report = calibrate.render(
        [outcome],
        command="python -m bench.calibrate --test",
        replicates=50,
        seed=7,
        workers=1,
        seconds=1.0,
        today=dt.date(2026, 1, 2),
    )
    assert "2026-01-02" in report and "python -m bench.calibrate --test" in report
    coverage_rows = [line for line in report.splitlines() if line.startswith("| ")]
    for _, _, label in calibrate.BINS:
        assert any(line.startswith(f"| {label} |") for line in coverage_rows), label
    assert "## Awards with a real spread" in report
