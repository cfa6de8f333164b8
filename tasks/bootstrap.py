"""Bootstrap intervals of the composite scores: how sure each published composite is.

Contract: `composite_intervals(ratings, category_attributes, replicates, seed)` takes the ratings that
count (one row per cro, segment, respondent_rank, attribute, rating_value: `int_bootstrap_ratings`) and
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


def composite_intervals(ratings: pa.Table | Iterable[pa.RecordBatch], category_attributes: list[tuple[str, str]],
                        replicates: int, seed: int) -> pa.Table:
    """See the module contract. `ratings`: cro, segment (big_pharma / small_pharma), respondent_rank,
    attribute, rating_value; a table, or record batches sorted by cro, read one CRO at a time (memory
    stays that of the largest CRO). Each CRO gives its segments' cells and its overall cell."""
    if replicates == 0:
        return INTERVALS_SCHEMA.empty_table()
    if isinstance(ratings, pa.Table):
        cros = _groups(ratings.sort_by([("cro", "ascending")]), ["cro"])
    else:
        cros = _cells_of_batches(ratings)
    attribute_ids = sorted({attribute for _, attribute in category_attributes})
    members: dict[str, list[int]] = {}
    for category, attribute in category_attributes:
        members.setdefault(category, []).append(attribute_ids.index(attribute))
    rows: dict[str, list] = {name: [] for name in INTERVALS_SCHEMA.names}
    for (cro,), cell in cros:
        column = pc.index_in(cell["attribute"], value_set=pa.array(attribute_ids))
        in_a_category = pc.is_valid(column)  # an attribute in no category has no composite
        cell = cell.filter(in_a_category)
        if cell.num_rows == 0:
            continue
        columns = column.filter(in_a_category).to_numpy()
        segments = cell["segment"].to_numpy(zero_copy_only=False)
        ranks = cell["respondent_rank"].to_numpy()
        values = cell["rating_value"].to_numpy()
        for segment in [*sorted(set(segments)), "overall"]:
            chosen = np.ones(len(segments), bool) if segment == "overall" else segments == segment
            respondents, evaluation = np.unique(ranks[chosen], return_inverse=True)
            matrix = np.full((len(respondents), len(attribute_ids)), np.nan)
            matrix[evaluation, columns[chosen]] = values[chosen]
            for category in sorted(members):
                part = matrix[:, members[category]]
                part = part[~np.all(np.isnan(part), axis=1)]
                if part.shape[0] == 0:
                    continue
                low, high = cell_interval(part, replicates, _generator(seed, segment, cro, category))
                for name, value in zip(INTERVALS_SCHEMA.names, (segment, cro, category, low, high)):
                    rows[name].append(value)
    return pa.table(rows, schema=INTERVALS_SCHEMA)


def _cells_of_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[tuple, pa.Table]]:
    """(cro,) groups from record batches sorted by cro; a group may span batches."""
    pending: list[pa.Table] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        for key, part in _groups(pa.Table.from_batches([batch]), ["cro"]):
            if pending and _key(pending[0]) != key:
                yield _key(pending[0]), pa.concat_tables(pending)
                pending = []
            pending.append(part)
    if pending:
        yield _key(pending[0]), pa.concat_tables(pending)


def _key(table: pa.Table) -> tuple:
    return (table["cro"][0].as_py(),)


def _groups(table: pa.Table, keys: list[str]):
    """(key values, sub-table) for each run of equal keys in a table sorted by them."""
    if table.num_rows == 0:
        return
    boundaries = np.zeros(table.num_rows, dtype=bool)
    boundaries[0] = True
    for key in keys:
        column = table[key]
        boundaries[1:] |= ~pc.equal(column.slice(1), column.slice(0, table.num_rows - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(boundaries)
    ends = np.append(starts[1:], table.num_rows)
    for start, end in zip(starts, ends):
        part = table.slice(start, end - start)
        yield tuple(part[key][0].as_py() for key in keys), part
