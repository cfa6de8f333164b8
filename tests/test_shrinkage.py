"""The empirical Bayes step's variance model (`cro_awards.method.uncertainty.pooled_variance`,
`scaled_variance`, `_shrinkage`): hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest

from cro_awards.method.uncertainty import _shrinkage, pooled_variance


def test_the_pool_weights_each_cros_variance_of_one_evaluation_by_its_degrees_of_freedom():
    # per evaluation: 3 x 0.1 = 0.3 (2 degrees of freedom) and 5 x 0.02 = 0.1 (4): pooled (0.6 + 0.4) / 6
    pooled = pooled_variance(np.array([0.1, 0.02]), np.array([3.0, 5.0]))
    assert pooled == pytest.approx([1 / 6 / 3, 1 / 6 / 5])


def test_a_cro_of_one_evaluation_adds_nothing_to_the_pool_but_gets_its_share():
    pooled = pooled_variance(np.array([9.0, 0.1, 0.1]), np.array([1.0, 4.0, 4.0]))
    assert pooled == pytest.approx([0.4, 0.1, 0.1])


def test_without_two_evaluations_anywhere_the_own_variances_stay():
    variance = np.array([0.5, 0.7])
    assert pooled_variance(variance, np.array([1.0, 1.0])) is variance


def test_a_cro_whose_few_raters_agreed_is_shrunk_like_its_neighbours():
    """Two CROs of the same composite and n, one of whose raters happened to agree (own variance tiny):
    with the pooled variance both get the same shrunk composite and the same p_champion_deserved."""
    observed = np.array([4.6, 4.6, 4.0, 4.0, 3.9, 4.1, 4.0])
    weights = np.array([12.0, 12.0, 60.0, 80.0, 40.0, 50.0, 70.0])
    own = np.array([0.0005, 0.03, 0.004, 0.003, 0.006, 0.005, 0.0035])
    trusted = _shrinkage(observed, weights, own, 1.0, np.random.default_rng(0))
    assert trusted["p_champion_deserved"][0] > trusted["p_champion_deserved"][1] + 0.1  # the flaw
    pooled = _shrinkage(observed, weights, pooled_variance(own, weights), 1.0, np.random.default_rng(0))
    assert pooled["composite_shrunk"][0] == pytest.approx(pooled["composite_shrunk"][1])
    assert pooled["p_champion_deserved"][0] == pytest.approx(pooled["p_champion_deserved"][1])


def test_an_interval_moderates_the_cros_own_variance_towards_the_pool():
    """Own variances of one evaluation 3 x 0 = 0 and 5 x 0.02 = 0.1; pooled (2 x 0 + 4 x 0.1) / 6 = 1/15;
    with the pool's 2 prior degrees of freedom: (2 x 0 + 2/15) / 4 / 3 and (4 x 0.1 + 2/15) / 6 / 5."""
    from cro_awards.method.uncertainty import INTERVAL_PRIOR_DF, moderated_variance

    assert INTERVAL_PRIOR_DF == 2.0
    moderated = moderated_variance(np.array([0.0, 0.02]), np.array([3.0, 5.0]))
    assert moderated == pytest.approx([(2 / 15) / 4 / 3, (0.4 + 2 / 15) / 6 / 5])
    assert moderated[0] > 0  # raters who agreed do not make a point interval


def test_the_variance_of_a_cro_near_the_top_of_the_scale_is_scaled_down():
    """Per evaluation 3 x 0.1 and 5 x 0.02, pooled 1/6 (as above); composites 4.5 and 3.0. Under the plain
    pool: m = 3.5625, tau^2 = 0.52734375 - (3/18 + 5/30)/8 = 0.48567708, shrunk 4.40377 and 3.03613 (worked
    by hand below); g = (x - 1)(5 - x) there; phi = (2 x 3 x 0.1 + 4 x 5 x 0.02) / (2 g1 + 4 g2)."""
    from cro_awards.method.uncertainty import scaled_variance

    tau2 = 0.52734375 - (3 / 18 + 5 / 30) / 8
    centre = [3.5625 + tau2 / (tau2 + 1 / 18) * 0.9375, 3.5625 - tau2 / (tau2 + 1 / 30) * 0.5625]
    assert centre == pytest.approx([4.40377, 3.03613], abs=1e-5)
    g = [(x - 1) * (5 - x) for x in centre]
    phi = 1.0 / (2 * g[0] + 4 * g[1])
    scaled = scaled_variance(np.array([0.1, 0.02]), np.array([3.0, 5.0]), np.array([4.5, 3.0]), (1.0, 5.0))
    assert scaled == pytest.approx([phi * g[0] / 3, phi * g[1] / 5])
    assert scaled[0] * 3 < scaled[1] * 5, "one evaluation near 5 varies less than one near 3"


def test_a_composite_at_the_edge_of_the_scale_keeps_a_floor_of_variance():
    """Every CRO rated 5 by everyone: the shrunk composites sit at 5, where g would be 0; the floor,
    1% of the scale's width squared (0.16), keeps each a variance: the pool's, as every g is the same."""
    from cro_awards.method.uncertainty import scaled_variance

    scaled = scaled_variance(np.array([0.01, 0.01]), np.array([4.0, 4.0]), np.array([5.0, 5.0]), (1.0, 5.0))
    assert scaled == pytest.approx([0.01, 0.01])


def test_without_two_evaluations_anywhere_the_scaled_variances_are_the_own_ones():
    from cro_awards.method.uncertainty import scaled_variance

    variance = np.array([0.5, 0.7])
    assert scaled_variance(variance, np.array([1.0, 1.0]), np.array([4.0, 3.0]), (1.0, 5.0)) is variance
