"""Bootstrap intervals of the composite scores: how sure each published composite is.

Contract: `composite_intervals(evaluations, ratings, category_attributes, replicates, seed)` takes the
accepted evaluations (`int_accepted_evaluations`) and their ratings (`int_accepted_ratings`) and
returns one row per (segment, cro, category) with `ci_low`, `ci_high`: the 2.5th and 97.5th
percentiles (numpy's linear interpolation) of the composite recomputed on `replicates` resamples, with
replacement, of the CRO's evaluations in the segment that rate the category (its n_evaluations).

Resampling is exact for a cell of at most `EXACT_UP_TO` (500) evaluations (a real survey year has about
1,500 evaluations over some 40 CROs). A larger cell (pooled benchmarking programs) draws the resampled
per-attribute rating sums and counts from their normal approximation instead (mean n·z̄, covariance
n·Σ of the per-evaluation vectors, the multinomial's own moments): exact resampling costs replicates ×
evaluations, which at millions of evaluations is minutes, while the approximation is already within a
hair of it at five hundred.

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

INTERVALS_SCHEMA = pa.schema(
    [
        ("segment", pa.string()),
        ("cro", pa.string()),
        ("category", pa.string()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
    ]
)
_DRAWS_PER_CHUNK = 4_000_000
EXACT_UP_TO = 500
"""Cells of up to this many evaluations are resampled exactly. At 500 the normal approximation's
percentiles are within 0.006 of exact resampling's (2,000 replicates; tests/test_bootstrap.py), below
the Monte Carlo noise of the exact bootstrap itself and far below the two decimals a reader sees."""


def _generator(seed: int, segment: str, cro: str, category: str) -> np.random.Generator:
    cell = hashlib.sha256(f"{segment}\x1f{cro}\x1f{category}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(cell[:8], "little")])


def cell_interval(matrix: np.ndarray, replicates: int, rng: np.random.Generator) -> tuple[float, float]:
    """(2.5th, 97.5th) percentiles of the composite over resampled rows of `matrix`.

    `matrix` is evaluations x attributes of one category, NaN where an evaluation did not rate an
    attribute; every row rates at least one. A replicate's composite is the mean over attributes of
    the attribute means, over the attributes that the resample rates at all.
    """
    n, attributes = matrix.shape
    vectors = _vectors(matrix)
    if n <= EXACT_UP_TO:
        totals = _resampled_totals(vectors, replicates, rng)
    else:
        totals = _approximate_totals(n, vectors.sum(axis=0), vectors.T @ vectors, replicates, rng)
    return _percentiles(totals, attributes)


def _vectors(matrix: np.ndarray) -> np.ndarray:
    """Each evaluation's vector [ratings (0 where none), rated (1 or 0)]: its contribution to the
    per-attribute rating sums and counts."""
    rated = ~np.isnan(matrix)
    return np.hstack([np.where(rated, matrix, 0.0), rated.astype(np.float64)])


def _percentiles(totals: np.ndarray, attributes: int) -> tuple[float, float]:
    """(2.5th, 97.5th) percentiles of the replicates' composites, from their [sums, counts] totals."""
    sums, counts = totals[:, :attributes], totals[:, attributes:]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0.5, sums / counts, np.nan)
        composites = np.nanmean(means, axis=1)
    low, high = np.percentile(composites[~np.isnan(composites)], [2.5, 97.5])
    return float(low), float(high)


def _resampled_totals(vectors: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Per replicate, the sum of the vectors of n rows drawn with replacement."""
    n = vectors.shape[0]
    chunk = max(1, _DRAWS_PER_CHUNK // n)
    totals = []
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        draws = rng.integers(0, n, size=(size, n))
        multiplicity = np.bincount((draws + n * np.arange(size)[:, None]).ravel(), minlength=size * n)
        totals.append(multiplicity.reshape(size, n).astype(np.float64) @ vectors)
    return np.vstack(totals)


def _approximate_totals(
    n: int, first: np.ndarray, second: np.ndarray, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """The same totals drawn from their normal approximation (see the module contract), from the n
    vectors' sum `first` and sum of outer products `second` (exact: the entries are whole numbers)."""
    mean = first / n
    covariance = second / n - np.outer(mean, mean)
    return rng.multivariate_normal(n * mean, n * covariance, size=replicates, method="eigh")


def composite_intervals(
    evaluations: pa.Table,
    ratings: pa.Table | Iterable[pa.RecordBatch],
    category_attributes: list[tuple[str, str]],
    replicates: int,
    seed: int,
) -> pa.Table:
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
    columns = {category: np.array(found) for category, found in sorted(members.items())}
    evaluations = evaluations.sort_by([("cro", "ascending"), ("respondent_rank", "ascending")])
    matrix = _rating_matrix(evaluations["source_row"].to_numpy(), ratings, attribute_ids)
    cros = pc.dictionary_encode(evaluations["cro"]).combine_chunks()
    segments = pc.dictionary_encode(evaluations["segment"]).combine_chunks()
    cro_codes, segment_codes = cros.indices.to_numpy(), segments.indices.to_numpy()
    segment_names = segments.dictionary.to_pylist()
    rows: dict[str, list] = {name: [] for name in INTERVALS_SCHEMA.names}
    for start, end in _runs(cro_codes):
        cro = cros.dictionary[int(cro_codes[start])].as_py()
        block, codes = matrix[start:end], segment_codes[start:end]
        cells = {segment_names[code]: block[codes == code] for code in np.unique(codes)}
        cells["overall"] = block  # all of the CRO's evaluations, in respondent order
        moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for segment in [*sorted(cells.keys() - {"overall"}), "overall"]:
            cell = cells[segment]
            rated = ~np.isnan(cell)
            for category, chosen in columns.items():
                in_cell = rated[:, chosen].any(axis=1)
                n = int(in_cell.sum())
                if n == 0:
                    continue
                rng = _generator(seed, segment, cro, category)
                if n <= EXACT_UP_TO:
                    low, high = cell_interval(cell[in_cell][:, chosen], replicates, rng)
                else:
                    # An evaluation that rates none of the category's attributes adds zeros to these
                    # sums, so one pass over the cell serves every category.
                    first, second = _moments(cells, moments, segment)
                    pick = np.concatenate([chosen, chosen + len(attribute_ids)])
                    totals = _approximate_totals(n, first[pick], second[np.ix_(pick, pick)], replicates, rng)
                    low, high = _percentiles(totals, len(chosen))
                for name, value in zip(INTERVALS_SCHEMA.names, (segment, cro, category, low, high), strict=True):
                    rows[name].append(value)
    return pa.table(rows, schema=INTERVALS_SCHEMA)


def _moments(
    cells: dict[str, np.ndarray], known: dict[str, tuple[np.ndarray, np.ndarray]], segment: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of outer products of a cell's evaluation vectors, computed once into `known`;
    overall's are its segments' added (exact: whole numbers)."""
    if segment not in known:
        if segment == "overall":
            parts = [_moments(cells, known, name) for name in sorted(cells.keys() - {"overall"})]
            known[segment] = (sum(part[0] for part in parts), sum(part[1] for part in parts))
        else:
            vectors = _vectors(cells[segment])
            known[segment] = (vectors.sum(axis=0), vectors.T @ vectors)
    return known[segment]


def _rating_matrix(
    source_rows: np.ndarray, ratings: pa.Table | Iterable[pa.RecordBatch], attribute_ids: list[str]
) -> np.ndarray:
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
        matrix[position[rows], pc.filter(column, in_a_category).to_numpy()] = pc.filter(
            batch.column("rating_value"), in_a_category
        ).to_numpy(zero_copy_only=False)
    return matrix


def _runs(values: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of equal values in a sorted array."""
    if len(values) == 0:
        return
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    yield from zip(starts.tolist(), [*starts[1:].tolist(), len(values)], strict=True)
