"""Where a run's time and memory go, statement by statement, without Prefect (the pipeline called directly).

    python -m bench.profile --size 1000 [--bootstrap-replicates N] [--data-dir bench/data]

Uses the benchmark's seeded exports (cached in bench/data; generated when missing). Prints the
seconds of loading the configuration, each stage, each SQL file (as `cro_awards.engine.sql.run` runs it), each
Python node of the run's graph (`step <name>`: extract, the suites, the resampling, ...), the steps
within the resampling (`cro_awards.method.uncertainty`: arranging the ratings, the normal approximation and its
influences, one line per category, the exact draws, the leniency-adjusted reading of
`cro_awards.method.leniency`), the disclosure audit, and the process's peak RSS; then, on Linux, the peak RSS
within each step (`Memory`). The flow's own stage timings, with Prefect, are in
`cro-awards run --summary-json` and in `python -m bench.run`.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import data
from cro_awards.disclosure import audit as disclosure
from cro_awards.engine import graph, sql
from cro_awards.method import leniency, uncertainty
from cro_awards.reading.config import load_config
from cro_awards.run.pipeline import run_pipeline


class Memory:
    """The peak resident memory within each step, exactly, not sampled: at every step's start and end
    the kernel's high-water mark (VmHWM, /proc/self/status) is read, credited to the steps running since
    the last boundary, and reset (`5` to /proc/self/clear_refs, Linux 4.0+). Where that is not possible
    (`available` False), no step gets a figure. Resetting the mark also resets the process's ru_maxrss:
    `peak_mib` keeps the largest reading."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self.available = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")
        except OSError:
            return False
        return True

    def boundary(self) -> float | None:
        """The peak since the last boundary (MiB), the mark reset; None where unavailable."""
        if not self.available:
            return None
        with open("/proc/self/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
        self._reset()
        self.peak_mib = max(self.peak_mib, peak)
        return peak


class Timings(list):
    """(label, seconds) in the order they ended; `peaks`, in the same order, the peak RSS (MiB) within
    each (None where `Memory` is unavailable)."""

    def __init__(self) -> None:
        super().__init__()
        self.memory = Memory()
        self.peaks: list[float | None] = []
        self._running: list[list[float | None]] = []  # per running step, its peak so far

    def _boundary(self) -> None:
        peak = self.memory.boundary()
        if peak is not None:
            for running in self._running:
                running[0] = max(running[0] or 0.0, peak)

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        self._boundary()
        mine: list[float | None] = [None]
        self._running.append(mine)
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            self._boundary()
            self._running.pop()  # steps nest: the last one started ends first
            self.append((label, seconds))
            self.peaks.append(mine[0])


TIMED = (
    ("uncertainty", "analyse", "resampling"),
    ("uncertainty", "_arrange", "resampling: arrange"),
    ("uncertainty", "_exact_replicates", "resampling: exact"),
    ("uncertainty", "_approximate_replicates", "resampling: approximation"),
    ("uncertainty", "_influences", "resampling: influences"),
    ("uncertainty", "_thin_replicates", "resampling: thin exact"),
    ("leniency", "adjust", "resampling: leniency"),
    ("disclosure", "audit", "audit"),
)
"""(module of cro_awards, function, label): the functions timed within the steps (a function the module
does not have is left out). Every Python node of the run's graph is timed too, as `step <name>`."""


@contextmanager
def _timing_sql_and_python_steps(timings: Timings) -> Iterator[None]:
    """Time every `sql.run` (each SQL file), every Python node of the graph and the functions of `TIMED`,
    while the block runs."""
    modules = {"uncertainty": uncertainty, "leniency": leniency, "disclosure": disclosure}
    steps = [(module, function, label) for module, function, label in TIMED if hasattr(modules[module], function)]
    originals = [(modules[module], function, getattr(modules[module], function)) for module, function, _ in steps]
    run, run_node = sql.run, graph.Graph._run_node

    def timed_run(connection, name, params):
        with timings.timed(f"sql {name}"):
            run(connection, name, params)

    def timed_node(self, state, node):
        if node.is_sql:
            return run_node(self, state, node)
        with timings.timed(f"step {node.name}"):
            return run_node(self, state, node)

    def timing(function, label):
        def timed(*args, **kwargs):
            with timings.timed(label):
                return function(*args, **kwargs)

        return timed

    sql.run, graph.Graph._run_node = timed_run, timed_node
    for (module, function, original), (_, _, label) in zip(originals, steps, strict=True):
        setattr(module, function, timing(original, label))
    try:
        yield
    finally:
        sql.run, graph.Graph._run_node = run, run_node
        for module, function, original in originals:
            setattr(module, function, original)


def profile(config_path: Path, export_path: Path) -> Timings:
    """Run the pipeline (`cro_awards.run.pipeline.run_pipeline`, no Prefect) on one export, timed."""
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
    memory = timings.memory
    memory.boundary()
    peak = memory.peak_mib if memory.available else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    if memory.available:
        print("peak RSS within each step:")
        for (label, _), step_peak in zip(timings, timings.peaks, strict=True):
            print(f"  {label:<{width}}  {step_peak:8.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
