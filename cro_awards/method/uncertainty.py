"""How sure each composite and each award is: respondent-level resampling and a shrinkage reading.

Contract: `analyse(evaluations, ratings, composites, category_rows, settings)` returns one row per
*eligible* composite (segment, cro, category) with the columns of `SCHEMA` (docs/method.md, "How sure
each award is"):
- `ci_low`, `ci_high`: a 95% interval of the composite: composite +/- t(n-1) x se x sqrt(n / (n - 1)),
  within the rating scale, where se is the standard deviation of the composite over the replicates and
  n its n_evaluations (a studentised correction of the resampling SD: a plain percentile interval covers
  only 0.86-0.89 at n = 10);
- `rank_low`, `rank_high`: the 2.5th and 97.5th percentiles of the CRO's rank in its cell over the
  replicates (rank as the method defines it; a CRO without a composite in a replicate ranks below
  every CRO with one);
- in cells that give awards (at least min_cros_for_awards eligible CROs; null elsewhere): `p_leader`,
  the share of replicates in which the CRO has the cell's highest composite (ties split it: a cell's
  shares add up to 1); `p_champion`, the share in which it meets the champion rule (weighted mean and SD
  recomputed per replicate, weights the real n_evaluations); `is_co_leader`, a leader, or a CRO whose
  paired difference to the leader (computed in each replicate) has a 95% interval, as above, that
  holds 0;
- the shrinkage reading (empirical Bayes, per cell; method page): `composite_shrunk` and the
  posterior probabilities `p_leader_deserved` (that the CRO's true composite is the cell's highest, the
  posteriors taken as independent normals, simulated, seeded) and `p_champion_deserved` (that it is at
  least m + k x tau): the `p_award` of the awards' rows.

Resampling: respondents are drawn with replacement (each with all of their accepted evaluations), and
every composite of every segment is recomputed from the same replicate. Eligibility and the CROs of a
cell are the real data's. Only the ratings of countable cells come in (`int_counted_ratings`: a cell
rated by fewer than min_cell_size respondents counts nowhere, fixed by the full survey); a countable
cell that a replicate leaves without ratings drops out of that replicate's composite. A
survey whose resampling would take more than `EXACT_UP_TO_WORK` rating-replicates (1.2 billion: about
30,000 evaluations of the 2024 questionnaire at 1,000 replicates; measured 2026-12-07, see the
constant) uses the documented approximation instead: each composite is linearised (its influence per
respondent, respondents as clusters), and replicates are drawn from the multivariate normal with the
resulting covariance between the CROs of a cell (shared respondents included).
`tests/test_uncertainty.py` checks it against the exact resampling; the calibration (`make calibrate`)
checks both against the truth.

Thin composites are always exact: the approximation is too narrow for them (issue 21: median width 0.63
of the exact one at n 3-4, 0.86 at 5-9, 0.92 at 10-19), so in an approximated survey the columns of the
composites with n_evaluations < `EXACT_BELOW_EVALUATIONS` come from exact resampling of the respondents
who rated them (their counts drawn from the multinomial of drawing all n respondents: the distribution
of exact resampling of the whole survey, not its very draws), and only the other columns from the normal
draws. Each cell's figures still come from one replicate matrix; what the combination gives up (choice):
the two sources are drawn independently, so a thin CRO's replicates do not co-vary with its cell's thick
CROs' (thin against thin, every segment included, they do: one exact draw serves them all; thick against
thick, the linearised covariance). The covariance left out is that of the respondents shared by a thin
CRO (n evaluations, n < 20) and a thick one (N): with rho the correlation of one respondent's
evaluations (leniency) and sigma^2 their variance, at most rho x sigma^2 / N, a correlation of at most
rho x sqrt(n / N), so leaving it out moves the variance of their paired difference by at most a fraction
2 x rho x n / N: negligible against the CROs of hundreds of evaluations a survey this large mostly has
(under 4% for N = 1,000), up to about rho against a thick CRO of barely 20. Positive (lenient
respondents lift both), leaving it out widens the difference: the conservative side for `is_co_leader`
and `p_leader`. The alternative, drawing the thick columns conditionally on the thin ones' exact draws,
would carry the linearised covariance over, but it regresses on the very covariance the approximation
gets wrong for thin CROs. The cost grows with the thin composites' respondents, not the survey's:
drawing the very draws of the whole survey's exact resampling (replicates x all respondents) cost 15.6 s
at the benchmark's 1000x (which has 5 thin composites, n 10) against 10.8 s for its whole approximation;
the marginal draw takes 0.9 s there against 9.5 s (2026-12-07, `python -m bench.profile`, a machine busy
with a calibration run).

Determinism: evaluations are ordered by respondent (respondent_rank) and CRO, and every random draw
comes from a generator seeded by (seed, what it is for), so the export's row order changes nothing.
With `replicates` 0, the table is empty (every figure null).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse, special, stats

from cro_awards.method import leniency
from cro_awards.method.leniency import OVERALL, PARTS

SEGMENTS = (*PARTS, OVERALL)

SCHEMA = pa.schema(
    [
        ("segment", pa.string()),
        ("cro", pa.string()),
        ("category", pa.string()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("composite_shrunk", pa.float64()),
        ("p_leader", pa.float64()),
        ("p_champion", pa.float64()),
        ("rank_low", pa.int64()),
        ("rank_high", pa.int64()),
        ("is_co_leader", pa.bool_()),
        ("p_leader_deserved", pa.float64()),
        ("p_champion_deserved", pa.float64()),
        ("composite_adjusted", pa.float64()),
        ("p_leader_adjusted", pa.float64()),
        ("p_champion_adjusted", pa.float64()),
    ]
)

COMPOSITE_FIGURES = (
    "ci_low", "ci_high", "composite_shrunk", "p_leader", "p_champion", "rank_low", "rank_high", "is_co_leader",
    "composite_adjusted",
)  # fmt: skip
"""The figures of `SCHEMA` that composite_scores publishes, on eligible rows only (the *_deserved and
*_adjusted probabilities become the awards' p_award, by award rule)."""

EXACT_UP_TO_WORK = 1_200_000_000
"""Exact resampling while (ratings counted in their segment and in overall) x replicates stays at most
this: about 30,000 evaluations of the 2024 questionnaire (some 19.8 counted ratings each, 39,500
rating-replicates at 1,000 replicates); the benchmark's 1x and 10x are exact, 100x and 1000x use the
approximation (until 2026-12-07: 150 million, about 3,800 evaluations, documented as 10,000).

Chosen 2026-12-07 from `python -m bench.profile` (exact forced, then approximation forced; the machine
shared with a calibration run, both cores busy): resampling at 10x (15,000 evaluations, 0.59 billion
rating-replicates) 2.0 s exact against 1.0 s approximate; at 100x (5.9 billion) 22.1 s exact against
4.6 s. Exact resampling costs about 3.7 s a billion rating-replicates. At 100x it would add some 17 s,
where the benchmark's 100x target (marginal cost within 3x the baseline's) has about 2 s to spare, so
100x and above stay approximate; below, a survey is exact while its exact resampling costs no more than
the approximation costs the 100x run (4.6 s / 3.7 s a billion: 1.2 billion)."""

EXACT_BELOW_EVALUATIONS = 20
"""Composites with fewer evaluations are resampled exactly whatever the survey's size (module docstring)."""

INTERVAL_PRIOR_DF = 2.0
"""The cell's pooled variance of one evaluation counts as this many degrees of freedom in each
composite's interval (`moderated_variance`): enough that no interval collapses to a point because a
thin CRO's few raters agreed, too few to matter from about 20 evaluations (calibration, docs/method.md)."""

POSTERIOR_DRAWS = 20_000
"""Draws of the posterior simulation behind p_leader_deserved (its Monte Carlo SD is at most 0.004)."""

_WEIGHTS_PER_CHUNK = 4_000_000


@dataclass(frozen=True)
class Settings:
    """The knobs the figures depend on."""

    replicates: int
    seed: int
    min_cros_for_awards: int
    champion_sd_multiplier: float
    scale: tuple[float, float]
    tolerance: float = 1e-9


def _generator(seed: int, *purpose: str) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(purpose).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


# --- the data, arranged ------------------------------------------------------------------------------


@dataclass
class _Survey:
    """The accepted evaluations in respondent order, their ratings, and the eligible composites."""

    respondent: np.ndarray  # per evaluation, 0 .. n_respondents - 1
    n_respondents: int
    # evaluations x attributes, column-major: the rating, NaN where none. float32 (half the memory: 138
    # MB against 276 MB at the benchmark's 1000x) while every rating is exactly a float32, which whole-
    # number ratings always are; float64 otherwise. Upcast (`astype(np.float64)`) before any arithmetic:
    # the values are then the ratings bit for bit, and so is every figure computed from them.
    matrix: np.ndarray
    groups: dict[str, np.ndarray]  # segment -> per evaluation, its CRO's index in `cros` (-1: not in it)
    cros: list[str]  # the CROs by index
    composites: list[tuple[str, str, str]]  # eligible (segment, cro, category), in key order
    attributes_of: dict[str, np.ndarray]  # category -> attribute columns
    observed: np.ndarray  # per composite
    n_evaluations: np.ndarray  # per composite


def _arrange(
    evaluations: pa.Table,
    ratings: pa.Table | Iterable[pa.RecordBatch],
    composites: pa.Table,
    category_rows: list[tuple[str, str]],
) -> _Survey:
    attribute_ids = sorted({attribute for _, attribute in category_rows})
    attributes_of: dict[str, list[int]] = {}
    for category, attribute in category_rows:
        attributes_of.setdefault(category, []).append(attribute_ids.index(attribute))
    # In respondent order, one column at a time as it is needed: a sorted copy of the whole table would
    # be a second copy of it while the ratings stream in (the peak of a large run).
    order = pc.sort_indices(evaluations, sort_keys=[("respondent_rank", "ascending"), ("cro", "ascending")])

    def column(name: str) -> pa.ChunkedArray:
        return pc.take(evaluations[name], order)

    matrix = _rating_matrix(column("source_row").to_numpy(), ratings, attribute_ids)
    respondent = column("respondent_rank").to_numpy().astype(np.int64)
    # Sorted: each respondent's index is the number of changes of rank before it.
    if len(respondent):
        respondent = np.concatenate(([0], np.cumsum(respondent[1:] != respondent[:-1])))
    cros = pc.dictionary_encode(column("cro")).combine_chunks()
    cro_code = cros.indices.to_numpy().astype(np.int64)
    cro_names = cros.dictionary.to_pylist()
    segment = column("segment")
    groups: dict[str, np.ndarray] = {}
    for name in SEGMENTS:
        code = cro_code.copy()
        if name != OVERALL:
            code[~pc.fill_null(pc.equal(segment, name), False).to_numpy(zero_copy_only=False)] = -1
        groups[name] = code
    eligible = composites.filter(pc.field("is_eligible")).sort_by(
        [("segment", "ascending"), ("cro", "ascending"), ("category", "ascending")]
    )
    keys = list(zip(*(eligible[c].to_pylist() for c in ("segment", "cro", "category")), strict=True))
    return _Survey(
        respondent=respondent,
        n_respondents=int(respondent.max()) + 1 if len(respondent) else 0,
        matrix=matrix,
        groups=groups,
        cros=cro_names,
        composites=keys,
        attributes_of={category: np.array(found) for category, found in attributes_of.items()},
        observed=eligible["composite"].to_numpy(zero_copy_only=False).astype(np.float64),
        n_evaluations=eligible["n_evaluations"].to_numpy(zero_copy_only=False).astype(np.float64),
    )


def _rating_matrix(
    source_rows: np.ndarray, ratings: pa.Table | Iterable[pa.RecordBatch], attribute_ids: list[str]
) -> np.ndarray:
    """Evaluations (in the order of `source_rows`) x attributes (in `attribute_ids` order): the rating,
    NaN where there is none; float32 while every rating is exactly a float32, else float64 (`_Survey`).
    Ratings of attributes in no category are skipped (they have no composite)."""
    # Column-major: every later pass reads one attribute's column at a time.
    matrix = np.full((len(source_rows), len(attribute_ids)), np.nan, dtype=np.float32, order="F")
    if len(source_rows) == 0:
        return matrix
    position = np.full(int(source_rows.max()) + 1, -1, dtype=np.int64)
    position[source_rows] = np.arange(len(source_rows))
    value_set = pa.array(attribute_ids, pa.string())
    batches = ratings.to_batches() if isinstance(ratings, pa.Table) else ratings
    for batch in batches:
        column = pc.index_in(batch.column("attribute"), value_set=value_set)
        in_a_category = pc.is_valid(column)
        rows = pc.filter(batch.column("source_row"), in_a_category).to_numpy()
        found = rows < len(position)
        found[found] = position[rows[found]] >= 0
        if not found.all():
            raise ValueError(f"a rating of source_row {int(rows[~found][0])}, which is not an accepted evaluation")
        values = pc.filter(batch.column("rating_value"), in_a_category).to_numpy(zero_copy_only=False)
        stored = values.astype(matrix.dtype)
        if matrix.dtype != np.float64 and not np.array_equal(stored, values, equal_nan=True):
            matrix, stored = matrix.astype(np.float64, order="F"), values.astype(np.float64)  # not whole numbers
        matrix[position[rows], pc.filter(column, in_a_category).to_numpy()] = stored
    return matrix


def _members(survey: _Survey) -> list[np.ndarray]:
    """Per composite, its evaluations (indices into the survey's), in respondent order."""
    wanted: dict[tuple[str, str], list[int]] = {}
    for index, (segment, cro, _) in enumerate(survey.composites):
        wanted.setdefault((segment, cro), []).append(index)
    found: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(survey.composites)
    for segment in SEGMENTS:
        codes = survey.groups[segment]
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        for code, cro in enumerate(survey.cros):
            indices = wanted.get((segment, cro))
            if indices:
                members = order[np.searchsorted(sorted_codes, code) : np.searchsorted(sorted_codes, code, "right")]
                for index in indices:
                    found[index] = members
    return found


def _slots(survey: _Survey, only: np.ndarray | None = None) -> tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray]:
    """The composites' (composite, attribute) slots as columns over respondents: ratings (R x K) and
    rated (R x K), and each slot's composite; with `only`, the slots of those composites alone (in the
    same relative order, so that each composite's arithmetic is the same as with every slot)."""
    rows, columns, values, slot_composite = [], [], [], []
    wanted = None if only is None else set(only.tolist())
    for index, members in enumerate(_members(survey)):
        if wanted is not None and index not in wanted:
            continue
        for attribute in survey.attributes_of[survey.composites[index][2]]:
            column = survey.matrix[members, attribute]
            rated = ~np.isnan(column)
            who = members[rated]
            if len(who):
                rows.append(survey.respondent[who])
                columns.append(np.full(len(who), len(slot_composite)))
                values.append(column[rated].astype(np.float64))
                slot_composite.append(index)
    shape = (survey.n_respondents, len(slot_composite))
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    column = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    value = np.concatenate(values) if values else np.zeros(0)
    ratings = sparse.csr_matrix((value, (row, column)), shape=shape)
    counts = sparse.csr_matrix((np.ones(len(value)), (row, column)), shape=shape)
    return ratings, counts, np.array(slot_composite, dtype=np.int64)


def _composites_from_slots(
    sums: np.ndarray, counts: np.ndarray, slot_composite: np.ndarray, n_composites: int
) -> np.ndarray:
    """Replicates x composites: the mean over each composite's slots with a rating of the slots' means."""
    present = counts > 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(present, sums / np.where(present, counts, 1.0), 0.0)
    membership = sparse.csr_matrix(
        (np.ones(len(slot_composite)), (np.arange(len(slot_composite)), slot_composite)),
        shape=(len(slot_composite), n_composites),
    )
    total = np.asarray(membership.T.dot(means.T)).T
    rated = np.asarray(membership.T.dot(present.T.astype(np.float64))).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rated > 0.5, total / np.where(rated > 0.5, rated, 1.0), np.nan)


def _exact_replicates(survey: _Survey, settings: Settings) -> np.ndarray:
    """Replicates x composites, resampling respondents exactly."""
    ratings, counts, slot_composite = _slots(survey)
    transposed_ratings, transposed_counts = ratings.T.tocsr(), counts.T.tocsr()
    n = survey.n_respondents
    rng = _generator(settings.seed, "respondents")
    chunk = max(1, _WEIGHTS_PER_CHUNK // max(n, 1))
    out = []
    for start in range(0, settings.replicates, chunk):
        size = min(chunk, settings.replicates - start)
        draws = rng.integers(0, n, size=(size, n))
        weights = np.bincount((draws + n * np.arange(size)[:, None]).ravel(), minlength=size * n)
        weights = weights.reshape(size, n).astype(np.float64)
        sums = np.asarray(transposed_ratings.dot(weights.T)).T
        totals = np.asarray(transposed_counts.dot(weights.T)).T
        out.append(_composites_from_slots(sums, totals, slot_composite, len(survey.composites)))
    return np.vstack(out) if out else np.zeros((0, len(survey.composites)))


def _thin_replicates(survey: _Survey, settings: Settings, thin: np.ndarray) -> np.ndarray:
    """Replicates x composites: the `thin` composites' columns resampled exactly (NaN elsewhere). Drawing
    n respondents with replacement gives their counts a multinomial(n, 1/n each); the counts of the s
    respondents who rated a thin composite are drawn from its marginal, multinomial(n; 1/n each of
    them, (n - s)/n the rest), so the columns have exactly the distribution of exact resampling of the
    whole survey, at a cost in s, not n (not the same draws: the whole survey's would cost replicates x
    n, seconds at 1000x)."""
    ratings, counts, slot_composite = _slots(survey, thin)
    involved = np.flatnonzero(np.diff(counts.indptr))
    transposed_ratings, transposed_counts = ratings[involved].T.tocsr(), counts[involved].T.tocsr()
    n, s = survey.n_respondents, len(involved)
    probabilities = np.append(np.full(s, 1.0 / n), max(0.0, 1.0 - s / n))
    rng = _generator(settings.seed, "thin respondents")
    chunk = max(1, _WEIGHTS_PER_CHUNK // max(s, 1))
    out = []
    for start in range(0, settings.replicates, chunk):
        size = min(chunk, settings.replicates - start)
        weights = rng.multinomial(n, probabilities, size=size)[:, :s].astype(np.float64)
        sums = np.asarray(transposed_ratings.dot(weights.T)).T
        totals = np.asarray(transposed_counts.dot(weights.T)).T
        out.append(_composites_from_slots(sums, totals, slot_composite, len(survey.composites)))
    return np.vstack(out)


def _influences(survey: _Survey, category: str) -> dict[str, np.ndarray]:
    """Per segment, each evaluation's linearised influence on its CRO's composite of `category` there:
    the first-order change of the composite per unit of its respondent's weight, (1/k) x the sum over
    the category's attributes it rated of (rating - the CRO's mean) / the CRO's count, k the category's
    rated attributes; they sum to 0 over a composite's evaluations.

    One category at a time (all of them at once held 20 arrays of every evaluation, 240 MB at the
    benchmark's 1000x). One pass per attribute column serves every segment: overall groups by CRO, the two
    others by (CRO, segment), and since an evaluation is in exactly one of those, big_pharma and
    small_pharma share one array: read it at the segment's evaluations only (outside overall's, 0)."""
    n = survey.matrix.shape[0]
    cro = survey.groups[OVERALL]
    n_cros = len(survey.cros)
    pair = cro * 2 + (survey.groups[PARTS[1]] >= 0)  # (CRO, segment): 2 x CRO + 0 big_pharma, 1 small_pharma
    groupings = (("overall", cro, n_cros), ("part", pair, 2 * n_cros))
    influence = {name: np.zeros(n) for name, _, _ in groupings}
    rated_attributes = {name: np.zeros(size) for name, _, size in groupings}
    # In ascending column order, each attribute once: the order in which the sums were always taken.
    for attribute in np.unique(survey.attributes_of[category]):
        column = survey.matrix[:, attribute]
        where = np.flatnonzero(~np.isnan(column))
        values = column[where].astype(np.float64)
        for name, codes, size in ((name, codes[where], size) for name, codes, size in groupings):
            counts = np.bincount(codes, minlength=size).astype(np.float64)
            means = np.divide(np.bincount(codes, weights=values, minlength=size), counts, out=np.zeros(size),
                              where=counts > 0)  # fmt: skip
            influence[name][where] += (values - means[codes]) / counts[codes]
            rated_attributes[name] += counts > 0
    for name, codes, _ in groupings:
        k = rated_attributes[name][codes]
        # An evaluation of a CRO with no rated attribute here (k = 0) rated none of them itself: it stays 0.
        np.divide(influence[name], k, out=influence[name], where=k > 0)
    return {OVERALL: influence["overall"], **dict.fromkeys(PARTS, influence["part"])}


def _approximate_replicates(survey: _Survey, settings: Settings, cells: dict) -> np.ndarray:
    """Replicates x composites drawn per cell from the normal with the linearised covariance between its
    CROs (respondents as clusters: CROs rated by the same respondents co-vary). Category by category (each
    cell's draws have a generator of their own, so the order changes nothing)."""
    out = np.full((settings.replicates, len(survey.composites)), np.nan)
    position_of = {cro: code for code, cro in enumerate(survey.cros)}
    for category in sorted({category for _, category in cells}):
        influences = _influences(survey, category)
        for segment in SEGMENTS:
            indices = cells.get((segment, category))
            if not indices:
                continue
            inside = np.flatnonzero(survey.groups[segment] >= 0)
            column_of = np.full(len(survey.cros), -1)
            for column, index in enumerate(indices):
                column_of[position_of[survey.composites[index][1]]] = column
            columns = column_of[survey.groups[segment][inside]]
            chosen = inside[columns >= 0]
            block = sparse.csr_matrix(
                (influences[segment][chosen], (survey.respondent[chosen], columns[columns >= 0])),
                shape=(survey.n_respondents, len(indices)),
            )
            covariance = np.asarray(block.T.dot(block).todense())
            rng = _generator(settings.seed, "normal", segment, category)
            out[:, indices] = rng.multivariate_normal(
                survey.observed[indices], covariance, size=settings.replicates, method="eigh"
            )
        del influences
    return out


# --- the figures ---------------------------------------------------------------------------------------


def _t_factor(n: np.ndarray) -> np.ndarray:
    """t(n-1, 0.975) x sqrt(n / (n - 1)): the studentised widening of a resampling SD (1.96 for large n)."""
    n = np.maximum(n, 2.0)
    return stats.t.ppf(0.975, n - 1.0) * np.sqrt(n / (n - 1.0))


def _ranks(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Per replicate (row), each CRO's rank: 1 + the CROs above it by more than the tolerance; a CRO with no
    composite (NaN) ranks below every CRO with one."""
    filled = np.where(np.isnan(values), -np.inf, values)
    above = (filled[:, None, :] > filled[:, :, None] + tolerance).sum(axis=2)
    missing = np.isnan(values)
    return np.where(missing, (~missing).sum(axis=1, keepdims=True) + 1, above + 1)


def pooled_variance(variance: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The plain pooled variance of each composite of a cell (the first step of `scaled_variance`, which the
    empirical Bayes step takes): the cell's pooled variance of one evaluation, s2 = sum((n - 1) x n x v) /
    sum(n - 1), divided by the CRO's n (v its own variance, n its evaluations; a CRO of one evaluation adds
    nothing to the pool). A CRO's own variance rests on its 10-30 evaluations: one whose few raters
    happened to agree would barely be shrunk and read as a sure award (docs/method.md, "Deserved, not just
    stable"; `python -m bench.eb_variance`). Where no CRO has two evaluations, the own variances stay."""
    pool = _pool(variance, weights)
    return variance if pool is None else pool / np.maximum(weights, 1.0)


def _pool(variance: np.ndarray, weights: np.ndarray) -> float | None:
    """The cell's pooled variance of one evaluation, sum((n - 1) x n x v) / sum(n - 1) over the CROs with a
    finite variance v; None where none of them has two evaluations."""
    freedom = np.maximum(weights - 1.0, 0.0)
    finite = np.isfinite(variance)
    if freedom[finite].sum() <= 0:
        return None
    return float((freedom * weights * variance)[finite].sum() / freedom[finite].sum())


def scaled_variance(
    variance: np.ndarray, weights: np.ndarray, observed: np.ndarray, scale: tuple[float, float]
) -> np.ndarray:
    """The variance of each composite of a cell as the empirical Bayes step takes it: the cell's pooled
    variance of one evaluation, scaled by where the CRO sits on the bounded rating scale, divided by its n.
    On a 1-5 scale a CRO rated near 5 cannot vary as much as one rated 3 (the variance of one evaluation
    is at most (x - low) x (high - x), the Bhatia-Davis bound), so one pooled figure overstates the top
    CROs' variance, over-shrinks them and makes their awards read as less deserved than they are. Model:
    variance of one evaluation = phi x g(x), g(x) = (x - low) x (high - x), phi pooled over the cell with
    weights n - 1 (sum((n - 1) x n x v) / sum((n - 1) x g)). x is the CRO's composite shrunk under the
    plain pool (`pooled_variance`), never its raw mean: a thin CRO whose raters all gave 5 would otherwise
    get no variance at all. g is floored at 1% of the scale's width squared (a composite at the edge).
    Decided by `python -m bench.eb_mean_variance` (docs/method.md). Where no CRO has two evaluations,
    the own variances stay."""
    pool = _pool(variance, weights)
    if pool is None:
        return variance
    low, high = scale
    centre = _posterior(observed, weights, pooled_variance(variance, weights))[0]
    shape = np.maximum((centre - low) * (high - centre), 0.01 * (high - low) ** 2)
    freedom = np.maximum(weights - 1.0, 0.0)
    finite = np.isfinite(variance)
    phi = float((freedom * weights * variance)[finite].sum() / (freedom * shape)[finite].sum())
    return phi * shape / np.maximum(weights, 1.0)


def moderated_variance(variance: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The variance a composite's interval takes: its own variance of one evaluation, moderated towards
    the cell's pool (`pooled_variance`) as if the pool were INTERVAL_PRIOR_DF more evaluations, divided
    by n: ((n - 1) x n x v + d x s2) / (n - 1 + d) / n. A CRO whose 3 raters all gave 5 has an own
    variance of 0 and would get the interval [5, 5], which misses any truth below 5; with the pool's
    prior its interval has the width a typical CRO of 3 evaluations would have, shrunk. From about 20
    evaluations on it is the CRO's own variance within a few percent."""
    freedom = np.maximum(weights - 1.0, 0.0)
    own = variance * weights
    pool = _pool(variance, weights)
    pooled = own if pool is None else pool
    with np.errstate(invalid="ignore"):
        blended = np.where(
            np.isfinite(own), (freedom * own + INTERVAL_PRIOR_DF * pooled) / (freedom + INTERVAL_PRIOR_DF), pooled
        )
    return blended / np.maximum(weights, 1.0)


def _posterior(
    observed: np.ndarray, weights: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The normal-normal empirical Bayes posterior of a cell (docs/method.md): each CRO's shrunk composite
    and posterior SD, the weighted mean m and the moment estimate of tau^2."""
    total = weights.sum()
    mean = float(weights @ observed / total)
    spread = float(weights @ (observed - mean) ** 2 / total)
    tau2 = max(0.0, spread - float(weights @ variance / total))
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(tau2 + variance > 0, tau2 / (tau2 + variance), 0.0)
    return mean + factor * (observed - mean), np.sqrt(factor * variance), mean, tau2


def _shrinkage(
    observed: np.ndarray, weights: np.ndarray, variance: np.ndarray, k: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Empirical Bayes per cell (docs/method.md): the shrunk composites and the posterior probabilities
    that each CRO truly leads (`p_leader_deserved`) and is truly a champion (`p_champion_deserved`)."""
    n_cros = len(observed)
    shrunk, posterior_sd, mean, tau2 = _posterior(observed, weights, variance)
    figures = {"composite_shrunk": shrunk}
    if tau2 > 0:
        bar = mean + k * math.sqrt(tau2)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(posterior_sd > 0, (shrunk - bar) / posterior_sd, np.where(shrunk >= bar, np.inf, -np.inf))
        figures["p_champion_deserved"] = special.ndtr(z)
        draws = shrunk[None, :] + posterior_sd[None, :] * rng.standard_normal((POSTERIOR_DRAWS, n_cros))
        best = draws.argmax(axis=1)
        figures["p_leader_deserved"] = np.bincount(best, minlength=n_cros) / POSTERIOR_DRAWS
    else:
        figures["p_champion_deserved"] = np.zeros(n_cros)
        figures["p_leader_deserved"] = np.full(n_cros, 1.0 / n_cros)
    return figures


def _cell_figures(
    replicates: np.ndarray,
    observed: np.ndarray,
    weights: np.ndarray,
    settings: Settings,
    gives_awards: bool,
    rng: np.random.Generator,
    adjusted: tuple[np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    tolerance, k = settings.tolerance, settings.champion_sd_multiplier
    low_scale, high_scale = settings.scale
    n_cros = len(observed)
    se = np.nanstd(replicates, axis=0)
    # The corrected resampling variance of each composite, and its interval: the variance moderated
    # towards the cell's pool by INTERVAL_PRIOR_DF degrees of freedom, t with as many more. One
    # evaluation says nothing of its spread: the interval is then the whole scale.
    variance = (se * np.sqrt(np.maximum(weights, 2.0) / np.maximum(weights - 1.0, 1.0))) ** 2
    moderated = moderated_variance(variance, weights)
    freedom = np.maximum(weights - 1.0, 1.0) + INTERVAL_PRIOR_DF
    half = np.where(weights >= 2, stats.t.ppf(0.975, freedom) * np.sqrt(moderated), np.inf)
    figures: dict[str, np.ndarray] = {
        "ci_low": np.clip(observed - half, low_scale, high_scale),
        "ci_high": np.clip(observed + half, low_scale, high_scale),
    }
    ranks = _ranks(replicates, tolerance)
    figures["rank_low"] = np.percentile(ranks, 2.5, axis=0, method="inverted_cdf").astype(np.int64)
    figures["rank_high"] = np.percentile(ranks, 97.5, axis=0, method="inverted_cdf").astype(np.int64)

    # The shrinkage reading, from the corrected resampling variance pooled over the cell's CROs and scaled
    # to where each sits on the rating scale.
    scale = (float(low_scale), float(high_scale))
    figures.update(_shrinkage(observed, weights, scaled_variance(variance, weights, observed, scale), k, rng))
    # The leniency-adjusted reading (cro_awards.method.leniency), through the same empirical Bayes step on the
    # plain pool: its linearised variance is no spread of ratings on the bounded scale, and scaled it read
    # overconfident in the calibration (docs/method.md).
    adjusted_composite, adjusted_variance = adjusted
    reading = _shrinkage(adjusted_composite, weights, pooled_variance(adjusted_variance, weights), k, rng)
    figures["composite_adjusted"] = adjusted_composite
    figures["p_leader_adjusted"] = reading["p_leader_deserved"]
    figures["p_champion_adjusted"] = reading["p_champion_deserved"]

    if not gives_awards:
        for name in ("p_leader", "p_champion"):
            figures[name] = np.full(n_cros, np.nan)
        figures["is_co_leader"] = np.full(n_cros, None)
        return figures
    # A replicate in which no CRO of the cell draws an evaluation (possible only in a tiny survey) has no
    # leader and no champion: it does not count.
    replicates = replicates[~np.isnan(replicates).all(axis=1)]
    filled = np.where(np.isnan(replicates), -np.inf, replicates)
    best = filled.max(axis=1, keepdims=True)
    leaders = filled >= best - tolerance
    figures["p_leader"] = (leaders / leaders.sum(axis=1, keepdims=True)).mean(axis=0)
    present = ~np.isnan(replicates)
    w = np.where(present, weights[None, :], 0.0)
    values = np.where(present, replicates, 0.0)
    cell_mean = (w * values).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
    cell_sd = np.sqrt((w * (values - cell_mean) ** 2).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True))
    champion = present & (values >= cell_mean + k * cell_sd - tolerance) & (values > cell_mean + tolerance)
    figures["p_champion"] = champion.mean(axis=0)
    # Co-leaders: the paired difference to the leader (the first leader by key order when tied).
    leader = int(np.flatnonzero(observed >= observed.max() - tolerance)[0])
    difference = replicates[:, [leader]] - replicates
    difference_se = np.nanstd(difference, axis=0)
    gap = observed[leader] - observed
    pair_n = np.minimum(weights[leader], weights)
    figures["is_co_leader"] = (gap <= tolerance) | (gap <= _t_factor(pair_n) * difference_se + tolerance)
    return figures


def analyse(
    evaluations: pa.Table,
    ratings: pa.Table | Iterable[pa.RecordBatch],
    composites: pa.Table,
    category_rows: list[tuple[str, str]],
    settings: Settings,
) -> pa.Table:
    """See the module contract. `evaluations`: source_row, cro, segment, respondent_rank (accepted);
    `ratings`: source_row, attribute, rating_value (the counted ratings only); `composites`:
    int_composite_scores (segment, cro, category, n_evaluations, composite, is_eligible)."""
    if settings.replicates == 0:
        return SCHEMA.empty_table()
    survey = _arrange(evaluations, ratings, composites, category_rows)
    if not survey.composites:
        return SCHEMA.empty_table()
    cells: dict[tuple[str, str], list[int]] = {}
    for index, (segment, _, category) in enumerate(survey.composites):
        cells.setdefault((segment, category), []).append(index)
    work = 2 * int((~np.isnan(survey.matrix)).sum()) * settings.replicates
    if work <= EXACT_UP_TO_WORK:
        replicates = _exact_replicates(survey, settings)
    else:
        replicates = _approximate_replicates(survey, settings, cells)
        # Thin composites are always resampled exactly (the approximation is too narrow for them): their
        # columns replace the normal draws, the other columns of their cells unchanged (module docstring).
        thin = np.flatnonzero(survey.n_evaluations < EXACT_BELOW_EVALUATIONS)
        if len(thin):
            replicates[:, thin] = _thin_replicates(survey, settings, thin)[:, thin]
    adjusted = leniency.adjust(
        survey.matrix, survey.respondent, survey.groups, survey.cros, survey.attributes_of, survey.composites
    )
    columns: dict[str, list] = {name: [None] * len(survey.composites) for name in SCHEMA.names}
    for index, key in enumerate(survey.composites):
        for name, value in zip(("segment", "cro", "category"), key, strict=True):
            columns[name][index] = value
    for (segment, category), members in sorted(cells.items()):
        rng = _generator(settings.seed, "posterior", segment, category)
        figures = _cell_figures(
            replicates[:, members],
            survey.observed[members],
            survey.n_evaluations[members],
            settings,
            len(members) >= settings.min_cros_for_awards,
            rng,
            (adjusted.composite[members], adjusted.variance[members]),
        )
        for name, values in figures.items():
            for position, index in enumerate(members):
                value = values[position]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    columns[name][index] = None
                elif SCHEMA.field(name).type == pa.bool_():
                    columns[name][index] = bool(value)
                elif SCHEMA.field(name).type == pa.int64():
                    columns[name][index] = int(value)
                else:
                    columns[name][index] = float(value)
    return pa.table(columns, schema=SCHEMA)
