"""Bootstrap intervals of the composite scores: how sure each published composite is.

Contract: `composite_intervals(ratings, category_attributes, replicates, seed)` takes the ratings that
count (one row per segment, cro, respondent_id, attribute, rating_value: `int_bootstrap_ratings`) and
returns one row per (segment, cro, category) with `ci_low`, `ci_high`: the 2.5th and 97.5th
percentiles (numpy's linear interpolation) of the composite recomputed on `replicates` resamples, with
replacement, of the CRO's evaluations in the segment that rate the category (its n_evaluations).

Determinism: evaluations are ordered by respondent_id (unique per CRO among accepted evaluations)
before resampling, and each cell draws from its own generator seeded by (seed, the cell's SHA-256), so
neither the export's row order nor the order cells are computed in changes a bit. With `replicates`
0, every interval is null.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

INTERVALS_SCHEMA = pa.schema([
    ("segment", pa.string()), ("cro", pa.string()), ("category", pa.string()),
    ("ci_low", pa.float64()), ("ci_high", pa.float64()),
])
_CHUNK = 250


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
    rated = ~np.isnan(matrix)
    values = np.where(rated, matrix, 0.0)
    composites = np.empty(replicates)
    for start in range(0, replicates, _CHUNK):
        size = min(_CHUNK, replicates - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        sums, rated_counts = counts @ values, counts @ rated
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / rated_counts
        composites[start:start + size] = np.nanmean(means, axis=1)
    low, high = np.percentile(composites, [2.5, 97.5])
    return float(low), float(high)


def composite_intervals(ratings: pa.Table, category_attributes: list[tuple[str, str]], replicates: int,
                        seed: int) -> pa.Table:
    """See the module contract."""
    if replicates == 0 or ratings.num_rows == 0:
        return INTERVALS_SCHEMA.empty_table()
    members: dict[str, list[str]] = {}
    for category, attribute in category_attributes:
        members.setdefault(category, []).append(attribute)
    ordered = ratings.sort_by([("segment", "ascending"), ("cro", "ascending"), ("respondent_id", "ascending")])
    rows: dict[str, list] = {name: [] for name in INTERVALS_SCHEMA.names}
    for (segment, cro), cell in _groups(ordered, ["segment", "cro"]):
        respondents, respondent_index = np.unique(cell["respondent_id"].to_numpy(zero_copy_only=False), return_inverse=True)
        attributes = cell["attribute"].to_numpy(zero_copy_only=False)
        scores = cell["rating_value"].to_numpy()
        for category in sorted(members):
            columns = {attribute: index for index, attribute in enumerate(members[category])}
            wanted = np.fromiter((a in columns for a in attributes), bool, len(attributes))
            if not wanted.any():
                continue
            matrix = np.full((len(respondents), len(columns)), np.nan)
            matrix[respondent_index[wanted], [columns[a] for a in attributes[wanted]]] = scores[wanted]
            matrix = matrix[~np.all(np.isnan(matrix), axis=1)]
            low, high = cell_interval(matrix, replicates, _generator(seed, segment, cro, category))
            for name, value in zip(INTERVALS_SCHEMA.names, (segment, cro, category, low, high)):
                rows[name].append(value)
    return pa.table(rows, schema=INTERVALS_SCHEMA)


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
