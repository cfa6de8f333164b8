"""Where a run's time goes, statement by statement, without Prefect (the flow's stages called directly).

    python -m bench.profile --size 1000 [--bootstrap-replicates N]

Uses the benchmark's cached exports (bench/data, made by `python -m bench.data` or `bench.run`). Prints
the seconds of extract, each staging SQL file, validation (GX), each scoring SQL file, the bootstrap
and each publishing SQL file, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
from contextlib import contextmanager

from bench import data
from cro_awards.config import load_config
from tasks import bootstrap, sql, transform, validate
from tasks.extract import read_export

_timings: list[tuple[str, float]] = []


@contextmanager
def timed(label: str):
    start = time.perf_counter()
    yield
    _timings.append((label, time.perf_counter() - start))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--bootstrap-replicates", type=int)
    args = parser.parse_args(argv)
    extra = {} if args.bootstrap_replicates is None else {"bootstrap_replicates": args.bootstrap_replicates}
    config_path = data.bench_config(extra=extra)
    export_path = data.export_for(args.size)["path"]

    original_run = sql.run

    def run(connection, name, params):
        with timed(f"sql {name}"):
            original_run(connection, name, params)

    sql.run = run
    original_intervals = bootstrap.composite_intervals

    def intervals(*a, **k):
        with timed("bootstrap"):
            return original_intervals(*a, **k)

    bootstrap.composite_intervals = intervals

    with timed("load config"):
        loaded = load_config(config_path)
    with timed("extract"):
        exported = read_export(export_path, loaded)
    workspace = transform.open_workspace()
    with timed("stage (total)"):
        transform.stage(workspace, exported.table, exported.malformed, loaded.survey)
    with timed("validate (total)"):
        reasons = validate.rejection_reasons(workspace, loaded.survey, exported.malformed["source_row"].to_pylist())
    with timed("transform (total)"):
        transform.transform(workspace, loaded.survey, reasons)
        transform.published_tables(workspace)
    with timed("quarantine read"):
        sql.arrow(workspace, sql.sorted_query("rejected_evaluations"))
    width = max(len(label) for label, _ in _timings)
    for label, seconds in _timings:
        print(f"{label:<{width}}  {seconds:8.3f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
