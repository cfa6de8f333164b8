"""Times the differencing guard (`cro_awards.disclosure.guard`) on synthetic contributions at 1000x: 1.5 million
evaluations of 30 CROs, 20 counted attributes each (30 million counted ratings), 5 categories.

    .venv/bin/python -m bench.guard [--evaluations 1500000]

Prints the seconds of: hashing the contributions, their digests and writing both (what a draft pays),
the guard for a rerun on the same export (the ordinary case: digests only), and the guard with one
evaluation dropped (the digests leave that CRO's rows to the exact comparison).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cro_awards.disclosure import guard


def synthetic(evaluations: int, seed: int = 20261207) -> pa.Table:
    """Contributions in the pipeline's shape (`cro_awards.method.transform.contributions`): every evaluation
    counting all 20 attributes, as one mask."""
    rng = np.random.default_rng(seed)
    attributes = [f"attribute_{i:02d}" for i in range(20)]
    categories = {f"category_{j}": attributes[j * 4 : (j + 1) * 4] for j in range(5)}
    cros = np.array([f"cro_{i:02d}" for i in range(30)], dtype=object)[rng.integers(0, 30, evaluations)]
    segments = np.array(["big_pharma", "small_pharma"], dtype=object)[rng.integers(0, 2, evaluations)]
    table = pa.table(
        {
            "respondent_id": pa.array([f"R{i:07d}" for i in range(evaluations)], pa.string()),
            "cro": pa.array(cros, pa.string()),
            "segment": pa.array(segments, pa.string()),
            "mask_0": pa.array(np.full(evaluations, (1 << 20) - 1, np.uint64), pa.uint64()),
        }
    )
    return table.replace_schema_metadata({"attributes": json.dumps(attributes), "categories": json.dumps(categories)})


def _keep(folder: Path, contributions: pa.Table) -> float:
    started = time.perf_counter()
    folder.mkdir()
    encoded = guard.encode(contributions)
    pq.write_table(encoded, folder / guard.CONTRIBUTIONS, compression="zstd")
    pq.write_table(guard.digests(encoded), folder / guard.DIGESTS, compression="zstd")
    (folder / guard.MANIFEST).write_text("{}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=1_500_000)
    evaluations = parser.parse_args().evaluations
    contributions = synthetic(evaluations)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        written = _keep(root / "released", contributions)
        _keep(root / "rerun", contributions)
        _keep(root / "one-dropped", contributions.slice(1))
        started = time.perf_counter()
        same = guard.check(root / "rerun", {"released": root / "released"}, 3)
        rerun = time.perf_counter() - started
        started = time.perf_counter()
        dropped = guard.check(root / "one-dropped", {"released": root / "released"}, 3)
        one = time.perf_counter() - started
    print(f"{evaluations:,} evaluations, {20 * evaluations:,} counted ratings")
    print(f"  a draft's contributions and digests, hashed and written: {written:.2f} s")
    print(f"  the guard, a rerun on the same export: {rerun:.3f} s ({len(same)} finding)")
    print(f"  the guard, one evaluation dropped: {one:.3f} s ({sum(f.rows for f in dropped)} rows refused)")


if __name__ == "__main__":
    main()
