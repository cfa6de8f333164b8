"""The leniency-adjusted reading: each composite as if every CRO had been rated by the same respondents.

Contract: `adjust(matrix, respondent, groups, cros, attributes_of, composites)` returns, per composite
(segment, cro, category) of `composites`, `composite_adjusted` and the variance the empirical Bayes step
takes for it (`Adjusted`). Pure numpy on the arrays `cro_awards.method.uncertainty` arranges (the counted
ratings only: a rating of a thin cell is not in `matrix`, so the adjustment, like everything else,
does not depend on it and the countable-cells rule's perturbation invariance holds).

The model, fitted per segment (Big Pharma and Small Pharma each on their own ratings, Overall on all of
them): rating = mu[CRO, attribute] + u[respondent] + noise, u ~ N(0, sigma_u^2) a random respondent
intercept (leniency), the noise of one evaluation with variance sigma_e^2 (its halo and its answers).
- Each evaluation's residual d: the mean over its answered attributes of (rating - the cell's mean
  rating), the cell being (CRO, attribute) in the segment.
- Variance components by moments, per segment: sigma_e^2 from the spread of d within respondents who
  rated at least two CROs; sigma_u^2 = max(0, the variance of the respondents' mean d - the mean of
  sigma_e^2 / their number of evaluations). sigma_u^2 = 0 (or no respondent with two evaluations): no
  adjustment, composite_adjusted = composite.
- The intercepts: the best linear predictor given the CRO means, by backfitting on evaluations:
  u_r = sum over r's evaluations of (d + the mean u of that CRO's raters) / (n_r + sigma_e^2 / sigma_u^2),
  until no intercept moves by more than 1e-10, centred on the segment's respondents (so the adjusted
  composites stay on the scale of a typical respondent, the population's mean leniency included). A
  respondent who rated a single CRO is shrunk the most: their leniency cannot be told from the CRO's.
- `composite_adjusted`: the composite's own arithmetic (the mean over the category's counted attributes
  of the mean rating) on the ratings minus their respondent's u.
- Its variance: the linearised variance of that arithmetic with the intercepts held fixed (each
  evaluation's influence squared, summed; times n/(n-1) like the resampling variance), then pooled in the
  cell like the official composites' (`cro_awards.method.uncertainty.pooled_variance`). Holding the intercepts
  fixed leaves out their own estimation noise; tests/test_leniency.py checks the figure against refitting
  the whole model on every replicate of a small survey.

It assumes leniency is one shift per respondent, the same for every CRO and attribute they rate, and
independent of which CROs they chose (docs/method.md, "The leniency-adjusted reading").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

OVERALL = "overall"
PARTS = ("big_pharma", "small_pharma")

MAX_ITERATIONS = 500
MAX_ROUNDS = 50
CONVERGED = 1e-10


@dataclass(frozen=True)
class Adjusted:
    """Per composite, in the order given: the adjusted composite and its variance (NaN: no rating)."""

    composite: np.ndarray
    variance: np.ndarray
    respondent_sd: dict[str, float]
    """segment -> the fitted sigma_u (0: no adjustment)."""
    evaluation_sd: dict[str, float]
    """segment -> the fitted sigma_e."""


@dataclass
class _Fit:
    """One fit: evaluations grouped by `code` (a CRO, or a CRO within a segment; -1 outside), respondents
    by `key` (a respondent within a segment), each key in one `part` (a segment)."""

    code: np.ndarray
    n_codes: int
    key: np.ndarray
    n_keys: int
    part_of_key: np.ndarray
    parts: tuple[str, ...]

    @cached_property
    def everyone(self) -> bool:
        """Every evaluation is inside the fit (no code -1): nothing to filter out."""
        return bool(len(self.code) == 0 or self.code.min() >= 0)


def _rated(matrix: np.ndarray, attribute: int, fits: Sequence[_Fit]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per fit, the evaluations inside it that rated `attribute`: (rows, their codes, their ratings)."""
    column = matrix[:, attribute]
    where = np.flatnonzero(~np.isnan(column))
    values = column[where].astype(np.float64)
    out = []
    for fit in fits:
        codes = fit.code[where]
        if fit.everyone:
            out.append((where, codes, values))
        else:
            inside = codes >= 0
            out.append((where[inside], codes[inside], values[inside]))
    return out


def _residuals(matrix: np.ndarray, fits: Sequence[_Fit]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per fit, each evaluation's summed residual against its cell's mean, and its answered attributes."""
    n = matrix.shape[0]
    out = [(np.zeros(n), np.zeros(n)) for _ in fits]
    for attribute in range(matrix.shape[1]):
        for fit, (total, answered), (rows, codes, found) in zip(
            fits, out, _rated(matrix, attribute, fits), strict=True
        ):
            counts = np.bincount(codes, minlength=fit.n_codes)
            means = np.bincount(codes, weights=found, minlength=fit.n_codes) / np.maximum(counts, 1)
            total[rows] += found - means[codes]
            answered[rows] += 1.0
    return out


def _components(d: np.ndarray, key: np.ndarray, n_keys: int) -> tuple[float, float]:
    """(sigma_u^2, sigma_e^2) by moments from the evaluations' residuals `d` of one segment."""
    n_r = np.bincount(key, minlength=n_keys).astype(np.float64)
    present = n_r > 0
    mean_r = np.bincount(key, weights=d, minlength=n_keys) / np.maximum(n_r, 1.0)
    several = n_r >= 2
    if not several.any():
        return 0.0, 0.0
    within = np.bincount(key, weights=(d - mean_r[key]) ** 2, minlength=n_keys)
    sigma_e2 = float(within[several].sum() / (n_r[several] - 1.0).sum())
    means = mean_r[present]
    between = float(((means - means.mean()) ** 2).sum() / max(len(means) - 1, 1))
    sigma_u2 = max(0.0, between - float((sigma_e2 / n_r[present]).mean()))
    return sigma_u2, sigma_e2


def _intercepts(fit: _Fit, total: np.ndarray, answered: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Per evaluation its respondent's fitted intercept (0 outside the fit), and sigma_u, sigma_e per part.
    The variance components and the intercepts are estimated in turn: the components from the residuals
    against the CRO means adjusted by the current intercepts (against the raw means, a crowd of lenient
    raters on some CROs would hide their own leniency in those CROs' means), until they settle."""
    rated = np.flatnonzero(answered > 0)
    d = total[rated] / answered[rated]
    code, key = fit.code[rated], fit.key[rated]
    n_r = np.bincount(key, minlength=fit.n_keys).astype(np.float64)
    n_c = np.bincount(code, minlength=fit.n_codes).astype(np.float64)
    members = [(fit.part_of_key == index) & (n_r > 0) for index in range(len(fit.parts))]
    mine = [fit.part_of_key[key] == index for index in range(len(fit.parts))]

    def against_adjusted_means(u: np.ndarray) -> np.ndarray:
        """Each evaluation's residual against its CRO's mean adjusted by the intercepts `u`: d plus the mean
        intercept of the CRO's raters."""
        return d + (np.bincount(code, weights=u[key], minlength=fit.n_codes) / np.maximum(n_c, 1.0))[code]

    u = np.zeros(fit.n_keys)
    ratio = np.full(fit.n_keys, np.inf)  # sigma_e^2 / sigma_u^2 per key
    components: list[tuple[float, float]] = []
    for _ in range(MAX_ROUNDS):
        residual = against_adjusted_means(u)
        components = [_components(residual[m], key[m], fit.n_keys) for m in mine]
        previous = ratio
        ratio = np.full(fit.n_keys, np.inf)
        for index, (sigma_u2, sigma_e2) in enumerate(components):
            if sigma_u2 > 0:
                ratio[fit.part_of_key == index] = sigma_e2 / sigma_u2
        adjusting = np.isfinite(ratio)
        if not adjusting.any():
            u = np.zeros(fit.n_keys)
            break
        for _ in range(MAX_ITERATIONS):
            summed = np.bincount(key, weights=against_adjusted_means(u), minlength=fit.n_keys)
            denominator = n_r + np.where(adjusting, ratio, 0.0)
            new = np.divide(summed, denominator, out=np.zeros(fit.n_keys), where=adjusting & (denominator > 0))
            for chosen in members:
                if chosen.any():
                    new[chosen] -= new[chosen].mean()
            moved = float(np.abs(new - u).max())
            u = new
            if moved < CONVERGED:
                break
        with np.errstate(invalid="ignore"):
            if np.allclose(ratio, previous, rtol=1e-6, equal_nan=True):
                break
    offset = np.zeros(len(fit.code))
    offset[rated] = u[key]
    # Each evaluation's intercept as its respondent's other evaluations alone would give it: what the
    # variance's influences subtract (with the respondent's own intercept, which has absorbed a share of
    # this very evaluation's noise, the residuals, and so the variance, come out too small).
    left_out = np.zeros(len(fit.code))
    if np.isfinite(ratio).any():
        own = against_adjusted_means(u)
        summed = np.bincount(key, weights=own, minlength=fit.n_keys)
        finite = np.isfinite(ratio[key])
        denominator = n_r[key] - 1.0 + np.where(finite, ratio[key], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            loo = np.where(finite & (denominator > 0), (summed[key] - own) / denominator, 0.0)
        left_out[rated] = loo
    respondent_sd = {part: sigma_u2**0.5 for part, (sigma_u2, _) in zip(fit.parts, components, strict=True)}
    evaluation_sd = {part: sigma_e2**0.5 for part, (_, sigma_e2) in zip(fit.parts, components, strict=True)}
    return offset, left_out, respondent_sd, evaluation_sd


def _composites(
    matrix: np.ndarray,
    fits: Sequence[_Fit],
    offsets: Sequence[tuple[np.ndarray, np.ndarray]],
    attributes_of: Mapping[str, np.ndarray],
) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per fit, category -> (per code the adjusted composite, its linearised variance), NaN without a
    rating. `offsets`: per fit, (each evaluation's intercept, the intercept its respondent's other
    evaluations alone give), the first taken out of the composite, the second out of the influences."""
    n = matrix.shape[0]
    out: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in fits]
    for category, attributes in attributes_of.items():
        totals = [np.zeros(fit.n_codes) for fit in fits]
        rated = [np.zeros(fit.n_codes) for fit in fits]
        influences = [np.zeros(n) for _ in fits]
        for attribute in attributes:
            found = _rated(matrix, attribute, fits)
            for index, (fit, (offset, left_out), (rows, codes, ratings)) in enumerate(
                zip(fits, offsets, found, strict=True)
            ):
                counts = np.bincount(codes, minlength=fit.n_codes).astype(np.float64)
                per_code = np.maximum(counts, 1.0)
                means = np.bincount(codes, weights=ratings - offset[rows], minlength=fit.n_codes) / per_code
                totals[index] += np.where(counts > 0, means, 0.0)
                rated[index] += counts > 0
                values = ratings - left_out[rows]
                loo_means = np.bincount(codes, weights=values, minlength=fit.n_codes) / per_code
                influences[index][rows] += (values - loo_means[codes]) / counts[codes]
        for index, fit in enumerate(fits):
            total, count, influence = totals[index], rated[index], influences[index]
            with np.errstate(invalid="ignore", divide="ignore"):
                composite = np.where(count > 0, total / count, np.nan)
            inside = slice(None) if fit.everyone else fit.code >= 0
            codes = fit.code[inside]
            influence = influence[inside] / np.maximum(count[codes], 1.0)
            n_c = np.bincount(codes, minlength=fit.n_codes).astype(np.float64)
            squared = np.bincount(codes, weights=influence**2, minlength=fit.n_codes)
            variance = np.where(n_c >= 2, squared * n_c / np.maximum(n_c - 1.0, 1.0), np.nan)
            out[index][category] = (composite, np.where(count > 0, variance, np.nan))
    return out


def adjust(
    matrix: np.ndarray,
    respondent: np.ndarray,
    groups: Mapping[str, np.ndarray],
    cros: Sequence[str],
    attributes_of: Mapping[str, np.ndarray],
    composites: Sequence[tuple[str, str, str]],
) -> Adjusted:
    """See the module contract. `matrix`: evaluations x attributes (NaN: no counted rating); `respondent`:
    per evaluation, 0 .. R - 1; `groups`: segment -> per evaluation its CRO's index in `cros` (-1 outside
    the segment), for big_pharma, small_pharma and overall."""
    n_cros = len(cros)
    n_respondents = int(respondent.max()) + 1 if len(respondent) else 0
    part = np.where(groups[PARTS[1]] >= 0, 1, 0)
    overall = _Fit(
        code=groups[OVERALL],
        n_codes=max(n_cros, 1),
        key=respondent,
        n_keys=max(n_respondents, 1),
        part_of_key=np.zeros(max(n_respondents, 1), dtype=np.int64),
        parts=(OVERALL,),
    )
    # The two segments in one fit of their own: a CRO within a segment, a respondent within a segment.
    in_a_part = groups[OVERALL] >= 0
    parts = _Fit(
        code=np.where(in_a_part, groups[OVERALL] * 2 + part, -1),
        n_codes=max(2 * n_cros, 1),
        key=respondent * 2 + part,
        n_keys=max(2 * n_respondents, 1),
        part_of_key=np.tile([0, 1], max(n_respondents, 1)),
        parts=PARTS,
    )
    respondent_sd: dict[str, float] = {}
    evaluation_sd: dict[str, float] = {}
    offsets = []
    for fit, (total, answered) in zip((overall, parts), _residuals(matrix, (overall, parts)), strict=True):
        offset, left_out, u_sd, e_sd = _intercepts(fit, total, answered)
        respondent_sd.update(u_sd)
        evaluation_sd.update(e_sd)
        offsets.append((offset, left_out))
    whole, segments = _composites(matrix, (overall, parts), offsets, attributes_of)
    results = {overall.parts: whole, parts.parts: segments}
    position = {cro: index for index, cro in enumerate(cros)}
    composite = np.full(len(composites), np.nan)
    variance = np.full(len(composites), np.nan)
    for index, (segment, cro, category) in enumerate(composites):
        if segment == OVERALL:
            values, variances = results[(OVERALL,)][category]
            code = position[cro]
        else:
            values, variances = results[PARTS][category]
            code = position[cro] * 2 + PARTS.index(segment)
        composite[index], variance[index] = values[code], variances[code]
    return Adjusted(composite, variance, respondent_sd, evaluation_sd)
