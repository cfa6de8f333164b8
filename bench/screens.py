"""What the respondent screens cost: validation with and without them, on the same export.

    .venv/bin/python -m bench.screens [--size 1000] [--repeat 3] [--seed 2024] [--data-dir bench/data]
                                      [--out bench/results/screens-latest.json]

The export is `bench.synthetic`'s for `surveys/2025.yaml` (the year that configures all three
screens, so the export carries `decision_role` and `duration_seconds`, with planted failures of each
screen and `bad_rows=True`), 1500 * size evaluations, seeded, cached in bench/data/ by bench/data.py.
Two bench copies of that YAML (`max_rejected_share: 1.0`, no `sample_export`) differ only in `screens`:
"with" keeps it as written, "without" drops it (the two screen columns are then ignored like any column
outside the contract). Both run `cro_awards.run.pipeline.run_pipeline(..., through="validate")`, the entry
point every caller uses, in this process, in rounds that alternate which goes first, after one
unrecorded warm-up of each on a 1x export (GX's import and set-up are paid there, not in a measured run).

Prints, per variant, the median (over `--repeat` runs) of the validate stage's seconds
(`PipelineResult.timings["validate"]`: the expectations, the quarantine table and the counts) and of
the stage stage's (DuckDB staging: whatever of the screens' work runs there is shown apart), the
validate stage's CPU seconds (the process's, every thread: less moved than wall time by other work on a
shared machine), the seconds of the steps only a year with screens runs (`screen_steps`: their staging
models, suites and validation models, timed one by one), the overhead of the screens on validation in %
of the run without them (and on stage + validate together), and PASS/FAIL of the wall-time overhead
against `TARGET_OVERHEAD` (issue 15: under 10% at 1000x). The exit code does not depend on the target.
Every run is in the JSON.

What it cannot see: work the screens' code added for every year, screens or not (both variants run
it); compare with the pipeline before the screens for that (bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench import data as bench_data

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_CONFIG = PROJECT_ROOT / "surveys" / "2025.yaml"
DEFAULT_OUT = PROJECT_ROOT / "bench" / "results" / "screens-latest.json"
TARGET_OVERHEAD = 0.10
"""The screens may add less than this share to validation's seconds (issue 15)."""
VARIANTS = ("without", "with")
STAGES = ("extract", "stage", "validate")
SCREEN_REASONS = ("not_qualified", "invalid_duration", "speeding", "straight_lining")


def configs(data_dir: Path, source: Path = SOURCE_CONFIG) -> dict[str, Path]:
    """{"with": the bench copy of `source` as written, "without": the same minus `screens`}.

    Raises `ValueError` when `source` configures no screen: there would be nothing to compare."""
    with_screens = bench_data.bench_config(data_dir, source)
    config = yaml.safe_load(with_screens.read_text(encoding="utf-8"))
    if not any((config.get("screens") or {}).values()):
        raise ValueError(f"{source}: configures no screen (`screens:`); benchmark a year that does.")
    config.pop("screens")
    text = f"# Written by bench/screens.py from {with_screens.name}: the same without `screens`.\n" + yaml.safe_dump(
        config, sort_keys=False, allow_unicode=True
    )
    without = data_dir / f"{with_screens.stem}_no_screens.yaml"
    if not without.exists() or without.read_text(encoding="utf-8") != text:
        without.write_text(text, encoding="utf-8")
    return {"with": with_screens, "without": without}


def screen_steps(source: Path = SOURCE_CONFIG) -> frozenset[str]:
    """The steps that run only for a year with screens: the models the run's graph needs for `source` (a
    year configuring them) beyond what it needs without `screens`, and the screens' suites
    (`cro_awards.method.validate.SCREEN_SUITES`)."""
    from cro_awards.method import validate
    from cro_awards.reading.config import load_config
    from cro_awards.run import pipeline

    with_screens = load_config(source).survey
    without = with_screens.model_copy(update={"screens": type(with_screens.screens)()})

    def models(survey) -> set[str]:
        graph = pipeline.build_graph(survey)
        needed = set().union(*(graph.needs(target) for targets in graph.targets.values() for target in targets))
        return {name for name in needed if graph.nodes[name].is_sql}

    return frozenset({*(models(with_screens) - models(without)), *validate.SCREEN_SUITES.values()})


@contextmanager
def _timing_steps(steps: list[tuple[str, float]]) -> Iterator[None]:
    """Record (name, wall seconds) of every SQL model built (`sql.run`) and every suite run
    (`validate.Suites.failures`) while the block runs."""
    from cro_awards.engine import sql
    from cro_awards.method import validate

    run, failures = sql.run, validate.Suites.failures

    def timed_run(connection, name, params):
        started = time.perf_counter()
        try:
            return run(connection, name, params)
        finally:
            steps.append((name, time.perf_counter() - started))

    def timed_failures(suites, name, *args):
        started = time.perf_counter()
        try:
            return failures(suites, name, *args)
        finally:
            steps.append((name, time.perf_counter() - started))

    sql.run, validate.Suites.failures = timed_run, timed_failures
    try:
        yield
    finally:
        sql.run, validate.Suites.failures = run, failures


def validate_once(config_path: Path, export_path: Path) -> dict[str, Any]:
    """One `run_pipeline(..., through="validate")`: each stage's wall seconds (the pipeline's own
    `timings`) and CPU seconds of the process (its threads, DuckDB's included: less moved by other work on
    the machine), the seconds of the steps only screens run, and what it quarantined."""
    from cro_awards.reading.config import load_config
    from cro_awards.run.pipeline import run_pipeline

    cpu: dict[str, float] = {}

    def cpu_timed(name, function, *args):
        started = time.process_time()
        try:
            return function(*args)
        finally:
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - started

    steps: list[tuple[str, float]] = []
    with _timing_steps(steps):
        result = run_pipeline(load_config(config_path), export_path, through="validate", run_stage=cpu_timed)
    only_screens = screen_steps()
    return {
        "timings": dict(result.timings),
        "cpu": cpu,
        "screen_steps": {name: seconds for name, seconds in steps if name in only_screens},
        "counts": dict(result.counts),
        "quarantined_by_reason": dict(result.quarantined_by_reason),
    }


def overhead(without: float, with_: float) -> float:
    """The share the screens add to `without` seconds: (with - without) / without."""
    if without <= 0:
        raise ValueError(f"a run without screens took {without} s; nothing to compare against.")
    return (with_ - without) / without


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per variant and stage (wall and CPU seconds), the overhead on validate (wall: the target;
    CPU beside it) and on stage + validate, the median seconds of the steps only screens run, the verdict."""

    def medians_of(key: str) -> dict[str, dict[str, float]]:
        return {
            variant: {stage: statistics.median(run[key][stage] for run in runs[variant]) for stage in STAGES}
            for variant in VARIANTS
        }

    medians, cpu = medians_of("timings"), medians_of("cpu")
    validate_overhead = overhead(medians["without"]["validate"], medians["with"]["validate"])
    both = {variant: medians[variant]["stage"] + medians[variant]["validate"] for variant in VARIANTS}
    steps = sorted({name for run in runs["with"] for name in run.get("screen_steps", {})})
    return {
        "medians": medians,
        "cpu_medians": cpu,
        "overhead_validate": validate_overhead,
        "overhead_validate_cpu": overhead(cpu["without"]["validate"], cpu["with"]["validate"]),
        "overhead_stage_and_validate": overhead(both["without"], both["with"]),
        "screen_steps": {
            name: statistics.median(run.get("screen_steps", {}).get(name, 0.0) for run in runs["with"])
            for name in steps
        },
        "target_overhead": TARGET_OVERHEAD,
        "passed": validate_overhead < TARGET_OVERHEAD,
    }


def render(results: dict[str, Any]) -> str:
    """The table people read: medians per variant, the overhead and the verdict."""
    summary, export = results["summary"], results["export"]
    lines = [
        f"Screens benchmark: {export['evaluations']:,} evaluations ({results['size']}x, seed {export['seed']}), "
        f"{results['repeat']} run(s) per variant, medians; load average {results['load_average_start']} at the "
        f"start, {results['load_average_end']} at the end",
        f"{'variant':<16}{'extract (s)':>12}{'stage (s)':>12}{'validate (s)':>14}{'validate CPU (s)':>18}  quarantined",
    ]
    for variant in VARIANTS:
        medians, cpu = summary["medians"][variant], summary["cpu_medians"][variant]
        quarantined = results["runs"][variant][0]["counts"]["quarantined"]
        label = f"{variant} screens"
        lines.append(
            f"{label:<16}{medians['extract']:>12.2f}{medians['stage']:>12.2f}{medians['validate']:>14.2f}"
            f"{cpu['validate']:>18.2f}  {quarantined:,}"
        )
    reasons = results["runs"]["with"][0]["quarantined_by_reason"]
    screened = [f"{code} {reasons[code]:,}" for code in SCREEN_REASONS if reasons.get(code)]
    lines.append("Rows per screen reason: " + (", ".join(screened) or "none"))
    steps = summary.get("screen_steps") or {}
    if steps:
        lines.append(
            f"Steps only screens run ({sum(steps.values()):.2f} s): "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in steps.items())
        )
    lines.append(
        f"Overhead on validate, CPU seconds: {summary['overhead_validate_cpu']:+.1%}; on stage + validate, wall: "
        f"{summary['overhead_stage_and_validate']:+.1%}"
    )
    verdict = "PASS" if summary["passed"] else "FAIL"
    lines.append(
        f"{verdict}: the screens add {summary['overhead_validate']:+.1%} to validation "
        f"(target: under {summary['target_overhead']:.0%})"
    )
    return "\n".join(lines)


def run(size: int, repeat: int, seed: int, data_dir: Path) -> dict[str, Any]:
    """Warm up, then `repeat` rounds of both variants on one export; every run and the summary."""
    paths = configs(data_dir)
    warm_up = bench_data.export_for(1, seed=seed, data_dir=data_dir, source=SOURCE_CONFIG)
    export = bench_data.export_for(size, seed=seed, data_dir=data_dir, source=SOURCE_CONFIG)
    load_start = os.getloadavg()
    for variant in VARIANTS:
        validate_once(paths[variant], Path(warm_up["path"]))
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for round_number in range(repeat):
        order = VARIANTS if round_number % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            runs[variant].append(validate_once(paths[variant], Path(export["path"])))
    reasons = {variant: [run["quarantined_by_reason"] for run in runs[variant]] for variant in VARIANTS}
    if any(found != reasons[variant][0] for variant in VARIANTS for found in reasons[variant]):
        raise RuntimeError("two runs of the same export and configuration quarantined differently: a bug")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "size": size,
        "repeat": repeat,
        "export": {key: value for key, value in export.items() if key not in ("generate_seconds", "cached")},
        "configs": {variant: str(path) for variant, path in paths.items()},
        "load_average_start": [round(value, 2) for value in load_start],
        "load_average_end": [round(value, 2) for value in os.getloadavg()],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "runs": runs,
        "summary": summarise(runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screens", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="multiple of 1,500 evaluations (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; medians are kept (default 3)")
    parser.add_argument("--seed", type=int, default=bench_data.DEFAULT_SEED, help="the export's seed (default 2024)")
    parser.add_argument("--data-dir", type=Path, default=bench_data.DATA_DIR, help="cache of exports (bench/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON of every run")
    args = parser.parse_args(argv)
    if args.size < 1 or args.repeat < 1:
        parser.error("--size and --repeat must be at least 1")
    results = run(args.size, args.repeat, args.seed, args.data_dir)
    print(render(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"Every run: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
