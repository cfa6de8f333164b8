"""Bootstrap intervals of the composite scores: how sure each published composite is.

Contract: `composite_intervals(evaluations, ratings, category_attributes, replicates, seed)` takes the
accepted evaluations (`int_accepted_evaluations`) and their ratings (`int_accepted_ratings`) and
returns one row per (segment, cro, category) with `ci_low`, `ci_high`: the 2.5th and 97.5th
percentiles (numpy's linear interpolation) of the composite recomputed on `replicates` resamples, with
replacement, of the CRO's evaluations in the segment that rate the category (its n_evaluations).

Resampling is exact for a cell of at most `EXACT_UP_TO` evaluations (every real survey year). A larger
cell (pooled benchmarking programs) draws the resampled per-attribute rating sums and counts from their
normal approximation instead (mean n·z̄, covariance n·Σ of the per-evaluation vectors, the
multinomial's own moments): exact resampling costs replicates × evaluations, which at millions of
evaluations is minutes, while the approximation is already within a hair of it at a thousand.

Determinism: a cell's evaluations are taken in respondent_id order (unique per CRO among accepted
evaluations) before resampling, and each cell draws from its own generator seeded by (seed, the cell's SHA-256), so
neither the export's row order nor the order cells are computed in changes a bit. With `replicates`
0, every interval is null.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

INTERVALS_SCHEMA = pa.schema([
    ("segment", pa.string()), ("cro", pa.string()), ("category", pa.string()),
    ("ci_low", pa.float64()), ("ci_high", pa.float64()),
])
_DRAWS_PER_CHUNK = 4_000_000
EXACT_UP_TO = 1000


def _generator(seed: int, segment: str, cro: str, category: str) -> np.random.Generator:
    cell = hashlib.sha256(f"{segment}\x1f{cro}\x1f{category}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(cell[:8], "little")])


def cell_interval(matrix: np.ndarray, replicates: int, rng: np.random.Generator) -> tuple[float, float]:
    """(2.5th, 97.5th) percentiles of the composite over resampled rows of `matrix`.

    `matrix` is evaluations x attributes of one category, NaN where an evaluation did not rate an
    attribute; every row rates at least one. A replicate's composite is the mean over attributes of
    the attribute means, over the attributes that the resample rates at all.
    """
    n = matrix.shape[0]
    rated = (~np.isnan(matrix)).astype(np.float64)
    values = np.where(rated > 0, matrix, 0.0)
    if n <= EXACT_UP_TO:
        sums, counts = _resampled_totals(values, rated, replicates, rng)
    else:
        sums, counts = _approximate_totals(values, rated, replicates, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0.5, sums / counts, np.nan)
        composites = np.nanmean(means, axis=1)
    low, high = np.percentile(composites[~np.isnan(composites)], [2.5, 97.5])
    return float(low), float(high)


def _resampled_totals(values: np.ndarray, rated: np.ndarray, replicates: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate and attribute, the rating sum and count of n rows drawn with replacement."""
    n = values.shape[0]
    chunk = max(1, _DRAWS_PER_CHUNK // n)
    sums, counts = [], []
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        draws = rng.integers(0, n, size=(size, n))
        multiplicity = np.bincount((draws + n * np.arange(size)[:, None]).ravel(), minlength=size * n)
        multiplicity = multiplicity.reshape(size, n).astype(np.float64)
        sums.append(multiplicity @ values)
        counts.append(multiplicity @ rated)
    return np.vstack(sums), np.vstack(counts)


def _approximate_totals(values: np.ndarray, rated: np.ndarray, replicates: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same totals drawn from their normal approximation (see the module contract)."""
    n, attributes = values.shape
    vectors = np.hstack([values, rated])
    mean = vectors.mean(axis=0)
    covariance = np.cov(vectors, rowvar=False, bias=True)
    totals = rng.multivariate_normal(n * mean, n * covariance, size=replicates, method="eigh")
    return totals[:, :attributes], totals[:, attributes:]


def composite_intervals(evaluations: pa.Table, ratings: pa.Table | Iterable[pa.RecordBatch],
                        category_attributes: list[tuple[str, str]], replicates: int, seed: int) -> pa.Table:
    """See the module contract.

    `evaluations`: the accepted evaluations, one row each: source_row, cro, segment (big_pharma /
    small_pharma), respondent_rank. `ratings`: their valid ratings, source_row, attribute,
    rating_value, in any order: a table or record batches, read once (memory holds one float per
    evaluation and attribute, never the ratings in long form). Each CRO gives its segments' cells and its
    overall cell. A rating of a source_row that is not in `evaluations` is a caller's bug (ValueError).
    """
    if replicates == 0:
        return INTERVALS_SCHEMA.empty_table()
    attribute_ids = sorted({attribute for _, attribute in category_attributes})
    members: dict[str, list[int]] = {}
    for category, attribute in category_attributes:
        members.setdefault(category, []).append(attribute_ids.index(attribute))
    evaluations = evaluations.sort_by([("cro", "ascending"), ("respondent_rank", "ascending")])
    matrix = _rating_matrix(evaluations["source_row"].to_numpy(), ratings, attribute_ids)
    cros = evaluations["cro"].to_numpy(zero_copy_only=False)
    segments = evaluations["segment"].to_numpy(zero_copy_only=False)
    rows: dict[str, list] = {name: [] for name in INTERVALS_SCHEMA.names}
    for start, end in _runs(cros):
        cro = cros[start]
        for segment in [*sorted(set(segments[start:end])), "overall"]:
            chosen = slice(start, end) if segment == "overall" else start + np.flatnonzero(segments[start:end] == segment)
            cell = matrix[chosen]
            for category in sorted(members):
                part = cell[:, members[category]]
                part = part[~np.all(np.isnan(part), axis=1)]
                if part.shape[0] == 0:
                    continue
                low, high = cell_interval(part, replicates, _generator(seed, segment, cro, category))
                for name, value in zip(INTERVALS_SCHEMA.names, (segment, cro, category, low, high)):
                    rows[name].append(value)
    return pa.table(rows, schema=INTERVALS_SCHEMA)


def _rating_matrix(source_rows: np.ndarray, ratings: pa.Table | Iterable[pa.RecordBatch],
                   attribute_ids: list[str]) -> np.ndarray:
    """Evaluations (in the order of `source_rows`) x attributes (in `attribute_ids` order): the rating,
    NaN where there is none. Ratings of attributes in no category are skipped (they have no composite)."""
    matrix = np.full((len(source_rows), len(attribute_ids)), np.nan)
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
        matrix[position[rows], pc.filter(column, in_a_category).to_numpy()] = (
            pc.filter(batch.column("rating_value"), in_a_category).to_numpy(zero_copy_only=False)
        )
    return matrix


def _runs(values: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of equal values in a sorted array."""
    if len(values) == 0:
        return
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    yield from zip(starts.tolist(), [*starts[1:].tolist(), len(values)])
