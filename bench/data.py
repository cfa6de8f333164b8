"""The benchmark's inputs: seeded synthetic exports per size, and a bench copy of the survey YAML.

Files live in `bench/data/` (ignored by git) and are reused by later runs:
- `bench_2024.yaml`: `surveys/2024.yaml` with `max_rejected_share: 1.0` (a run never fails on the
  share of rejected rows), without `sample_export`, and with the synthetic export's made-up CRO names
  (`bench.synthetic.UNKNOWN_CROS`) under `not_rated` (at 1000x each has some 10 rows, which would
  otherwise stop the run: a CRO is never lost quietly);
- `export_2024_x<multiplier>_seed<seed>.csv`: `bench.synthetic.generate_export` of
  1500 * multiplier evaluations with `bad_rows=True`, written with `write_export`;
- `export_2024_x<multiplier>_seed<seed>.json`: what is known about it (rows, answered rating cells,
  bytes, the source YAML's SHA-256). An export is regenerated when its record is missing or was made
  from another YAML.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from bench import synthetic
from cro_awards.reading.config import WHITESPACE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"
BASE_EVALUATIONS = 1500
DEFAULT_SEED = 2024


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def bench_config(data_dir: Path = DATA_DIR, source: Path = SOURCE_CONFIG, extra: dict[str, Any] | None = None) -> Path:
    """Write (when its content changed) the bench copy of the survey YAML; return its path.

    `extra` sets more keys (e.g. {"bootstrap_replicates": 0}); they are named in the file name.
    """
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["max_rejected_share"] = 1.0
    config.pop("sample_export", None)
    config["not_rated"] = [*config.get("not_rated", []), *synthetic.UNKNOWN_CROS]
    config.update(extra or {})
    changes = "".join(f", {key} {value}" for key, value in (extra or {}).items())
    text = (
        f"# Written by bench/data.py from {source.name}: max_rejected_share 1.0, no sample_export, the "
        f"synthetic export's made-up CROs not_rated{changes}.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    suffix = "".join(f"_{key}{value}" for key, value in sorted((extra or {}).items()))
    path = data_dir / f"bench_{source.stem}{suffix}.yaml"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        _atomic_write(path, text.encode("utf-8"))
    return path


def count_ratings(path: Path, attributes: list[str]) -> int:
    """Answered rating cells of a CSV export: trimmed text neither blank nor n/a / na (any case)."""
    import duckdb

    terms = " + ".join(
        f"count(*) filter (where coalesce(lower(trim(\"{a}\", $ws)), '') not in ('', 'n/a', 'na'))" for a in attributes
    )
    con = duckdb.connect(":memory:")
    try:
        [(total,)] = con.execute(
            f"select {terms} from read_csv($path, all_varchar = true, header = true, delim = ',', "
            "quote = '\"', escape = '\"')",
            {"path": str(path), "ws": WHITESPACE},
        ).fetchall()
    finally:
        con.close()
    return int(total)


def export_for(
    multiplier: int, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR, source: Path = SOURCE_CONFIG
) -> dict[str, Any]:
    """The cached export of `BASE_EVALUATIONS * multiplier` rows for `seed`, generated when missing.

    Returns its record: path, multiplier, seed, evaluations, ratings (answered rating cells), bytes,
    config_sha256, generate_seconds (0 when reused) and cached (True when reused).
    """
    from bench.synthetic import generate_export, write_export

    data_dir.mkdir(parents=True, exist_ok=True)
    source_bytes = source.read_bytes()
    source_sha = hashlib.sha256(source_bytes).hexdigest()
    stem = f"export_{source.stem}_x{multiplier}_seed{seed}"
    path, record_path = data_dir / f"{stem}.csv", data_dir / f"{stem}.json"
    if path.exists() and record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except ValueError:
            record = {}
        if record.get("config_sha256") == source_sha and record.get("bytes") == path.stat().st_size:
            return {**record, "path": str(path), "generate_seconds": 0.0, "cached": True}
    config = yaml.safe_load(source_bytes)
    evaluations = BASE_EVALUATIONS * multiplier
    start = time.perf_counter()
    table = generate_export(config, n_evaluations=evaluations, seed=seed, bad_rows=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    write_export(table, temporary)
    del table
    os.replace(temporary, path)
    seconds = time.perf_counter() - start
    record = {
        "multiplier": multiplier,
        "seed": seed,
        "evaluations": evaluations,
        "ratings": count_ratings(path, [str(a) for a in config["attributes"]]),
        "bytes": path.stat().st_size,
        "config_sha256": source_sha,
    }
    _atomic_write(record_path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return {**record, "path": str(path), "generate_seconds": seconds, "cached": False}
