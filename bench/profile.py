"""Where a run's time goes, statement by statement, without Prefect (the pipeline called directly).

    python -m bench.profile --size 1000 [--bootstrap-replicates N] [--data-dir bench/data]

Uses the benchmark's seeded exports (cached in bench/data; generated when missing). Prints the
seconds of loading the configuration, extract, each SQL file (as `cro_awards.sql.run` runs it), validation
(GX), the resampling (`cro_awards.uncertainty`), the disclosure audit (`cro_awards.disclosure.audit`: the
countable-cells rule itself is in the SQL files, timed with them), and the process's peak RSS. The flow's
own stage timings, with Prefect, are in `cro-awards run --summary-json` and in `python -m bench.run`.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import data
from cro_awards import disclosure, sql, uncertainty
from cro_awards.config import load_config
from cro_awards.pipeline import run_pipeline


class Timings(list):
    """(label, seconds) in the order they ended."""

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.append((label, time.perf_counter() - start))


TIMED = (
    ("uncertainty", "analyse", "resampling"),
    ("disclosure", "audit", "audit"),
)
"""(module of cro_awards, function, label): the Python steps timed beside the SQL files."""


@contextmanager
def _timing_sql_and_python_steps(timings: Timings) -> Iterator[None]:
    """Time every `sql.run` (each SQL file) and the steps of `TIMED`, while the block runs."""
    modules = {"uncertainty": uncertainty, "disclosure": disclosure}
    originals = [(modules[module], function, getattr(modules[module], function)) for module, function, _ in TIMED]
    run = sql.run

    def timed_run(connection, name, params):
        with timings.timed(f"sql {name}"):
            run(connection, name, params)

    def timing(function, label):
        def timed(*args, **kwargs):
            with timings.timed(label):
                return function(*args, **kwargs)

        return timed

    sql.run = timed_run
    for (module, function, original), (_, _, label) in zip(originals, TIMED, strict=True):
        setattr(module, function, timing(original, label))
    try:
        yield
    finally:
        sql.run = run
        for module, function, original in originals:
            setattr(module, function, original)


def profile(config_path: Path, export_path: Path) -> Timings:
    """Run the pipeline (`cro_awards.pipeline.run_pipeline`, no Prefect) on one export, timed."""
    timings = Timings()

    def timed_stage(name, function, *args):
        with timings.timed(f"{name} (total)"):
            return function(*args)

    with _timing_sql_and_python_steps(timings):
        with timings.timed("load config"):
            loaded = load_config(config_path, {"max_rejected_share": 1})
        run_pipeline(loaded, export_path, run_stage=timed_stage)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="multiple of 1,500 evaluations (default 1000)")
    parser.add_argument("--bootstrap-replicates", type=int, help="override of the YAML's bootstrap_replicates")
    parser.add_argument("--data-dir", type=Path, default=data.DATA_DIR, help="cache of exports (bench/data)")
    args = parser.parse_args(argv)
    extra = {} if args.bootstrap_replicates is None else {"bootstrap_replicates": args.bootstrap_replicates}
    config_path = data.bench_config(args.data_dir, extra=extra)
    export_path = Path(data.export_for(args.size, data_dir=args.data_dir)["path"])
    timings = profile(config_path, export_path)
    width = max(len(label) for label, _ in timings)
    for label, seconds in timings:
        print(f"{label:<{width}}  {seconds:8.3f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
