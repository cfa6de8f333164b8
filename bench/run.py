"""Benchmark the pipeline at several export sizes, beside a bare DuckDB baseline and an empty-flow floor.

    .venv/bin/python -m bench.run [--sizes 1,10,100,1000] [--out bench/results/latest.json]
                                  [--seed 2024] [--repeat 1] [--cold-all] [--keep-logs]

For each size multiplier m, an export of 1500*m evaluations (bench/data.py, cached in bench/data/) is
run, each in a fresh process, measured for wall time end to end (around the process) and peak RSS
(`os.wait4`: ru_maxrss, the largest single process among it and the children it reaped, e.g.
Prefect's temporary server). Both are taken by bench/launch.py, a bare interpreter that starts the
command, so that this process's own memory does not leak into the child's ru_maxrss:
- pipeline, warm: `cro-awards run --release ... --summary-json` against one Prefect server started here
  (PREFECT_API_URL), at every size; its summary gives the per-stage seconds;
- pipeline, cold: the same with no PREFECT_API_URL (Prefect starts a temporary server) and a fresh
  PREFECT_HOME: at 1x only, unless --cold-all;
- baseline: `python -m bench.baseline` (same rules and scores in DuckDB SQL, no Prefect, no GX);
- floor: `python -m bench.floor` (an empty flow importing the same libraries), cold and warm, once.
Before measuring, one unrecorded floor run warms the server up. The server is always stopped at the
end (its whole process group), also on errors, Ctrl-C or SIGTERM.

Prints the machine, a table per size, the fixed cost at 1x and the targets as PASS/FAIL lines (the
exit code does not depend on them), and writes everything as JSON (default bench/results/latest.json).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import data as bench_data

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "bench" / "results" / "latest.json"
STAGES = ("extract", "stage", "validate", "transform", "quarantine", "publish")
PACKAGES = ("prefect", "great-expectations", "duckdb", "pandas", "pyarrow", "numpy", "pydantic", "openpyxl", "pyyaml")
GIB_MB = 1024.0  # MiB per GiB: RSS limits are in GiB, RSS is reported in MiB (ru_maxrss is in KiB)

TARGETS = {
    "marginal_ratio_max": 3.0,  # pipeline marginal cost within 3x the baseline's, at 100x and 1000x
    "rss_gb_max": {100: 1.5, 1000: 4.0},  # pipeline peak RSS
    "fixed_cost_seconds_max": 2.0,  # 1x pipeline minus floor, cold and warm
    "disclosure_seconds_max": 0.5,  # the disclosure audit, at every size (issue 12; no suppression any more)
}


# --- machine ---------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_mb = int(line.split()[1]) / 1024
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    commit, modified = None, None
    try:  # read-only git commands: the commit, and whether the pipeline's code differs from it
        commit = (
            subprocess.run(
                ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or None
        )
        diff = subprocess.run(
            [
                "git",
                "-C",
                str(PROJECT_ROOT),
                "diff",
                "--quiet",
                "HEAD",
                "--",
                "cro_awards",
                "flows",
                "tasks",
                "sql",
                "expectations",
                "pyproject.toml",
            ],
            capture_output=True,
            timeout=10,
        )
        modified = {0: False, 1: True}.get(diff.returncode)
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_mb": mem_total_mb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "commit": commit,
        "code_modified": modified,
        "load_average_start": os.getloadavg(),  # other work on the machine skews the timings
    }


# --- processes -------------------------------------------------------------------------------------


_LIVE_GROUPS: set[int] = set()
"""Process groups of children started here and not yet reaped: killed on the way out."""


def _kill_group(pgid: int, grace: float = 10.0) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after `grace` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        _LIVE_GROUPS.discard(pgid)
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    _LIVE_GROUPS.discard(pgid)


def _group_alive(pgid: int) -> bool:
    """True while some process of the group exists (zombies of our own children excepted)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False


def _kill_live_groups() -> None:
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid, grace=5.0)


LAUNCHER = Path(__file__).resolve().parent / "launch.py"


def measure(
    command: list[str], env: dict[str, str], log: Path, max_rss_mb: float = 0, timeout: float = 0
) -> dict[str, Any]:
    """Run `command` in a fresh process and its own process group: wall seconds, peak RSS, exit code.

    The command is started by bench/launch.py (a bare interpreter), which times it around
    Popen .. os.wait4 and reports ru_maxrss: started from here, the child's ru_maxrss would include
    this process's own memory (see launch.py). `outer_wall_seconds` includes the launcher's start.
    Above `max_rss_mb` resident (all its processes together) or after `timeout` seconds, the run is
    killed (0: no limit) and the result says `killed: "memory"` or `"timeout"`.
    """
    result_file = log.with_suffix(".rusage.json")
    result_file.unlink(missing_ok=True)
    with log.open("wb") as stream:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-S", str(LAUNCHER), str(result_file), str(max_rss_mb), str(timeout), *command],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _LIVE_GROUPS.add(process.pid)
        try:
            process.wait()
        except BaseException:
            _kill_group(process.pid)
            process.wait()
            raise
        outer = time.perf_counter() - start
    # Anything the run left behind in its group (it should leave nothing) goes now.
    stray = _group_alive(process.pid)
    if stray:
        _kill_group(process.pid)
    _LIVE_GROUPS.discard(process.pid)
    try:
        result = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {
            "wall_seconds": outer,
            "peak_rss_mb": None,
            "exit_code": process.returncode or -1,
            "launcher_failed": True,
        }
    result["outer_wall_seconds"] = outer
    result["left_processes"] = stray
    if result["exit_code"] != 0:
        result["log_tail"] = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrefectServer:
    """`prefect server start` on a free local port, in its own process group and PREFECT_HOME."""

    def __init__(self, bin_dir: Path, home: Path, log: Path) -> None:
        self.bin_dir, self.home, self.log = bin_dir, home, log
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.start_seconds: float | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float = 180.0) -> None:
        self.port = _free_port()
        env = _base_env()
        env.update(
            {"PREFECT_HOME": str(self.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
        )
        begin = time.perf_counter()
        with self.log.open("wb") as stream:
            self.process = subprocess.Popen(
                [str(self.bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _LIVE_GROUPS.add(self.process.pid)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"prefect server exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.start_seconds = time.perf_counter() - begin
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"prefect server did not answer {self.api_url}/health within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        _kill_group(process.pid, grace=20.0)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _base_env() -> dict[str, str]:
    """The caller's environment without Prefect's location settings (each run sets its own)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


# --- one benchmark ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bin_dir = Path(sys.executable).parent
        self.scratch = Path(tempfile.mkdtemp(prefix="cro-bench-"))
        self.logs = self.scratch / "logs"
        self.logs.mkdir()
        self.server: PrefectServer | None = None
        self.client_home = self.scratch / "prefect-client-home"
        self.client_home.mkdir()
        self.counter = 0
        self.limits = {"max_rss_mb": args.max_rss_gb * GIB_MB, "timeout": args.timeout}

    def env(self, mode: str) -> dict[str, str]:
        env = _base_env()
        if mode == "warm":
            env["PREFECT_API_URL"] = self.server.api_url
            env["PREFECT_HOME"] = str(self.client_home)
        else:
            env["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-", dir=self.scratch)
        return env

    def _label(self, name: str) -> Path:
        self.counter += 1
        return self.logs / f"{self.counter:03d}-{name}.log"

    def run_pipeline(self, config: Path, export: dict, mode: str, keep_output: bool = False) -> dict[str, Any]:
        work = Path(tempfile.mkdtemp(prefix=f"pipeline-{mode}-", dir=self.scratch))
        command = [
            str(self.bin_dir / "cro-awards"),
            "run",
            "--release",  # as `make run`; the awards check reads the release (<out>/survey_year=<year>)
            "--config",
            str(config),
            "--export",
            export["path"],
            "--output",
            str(work / "out"),
            "--quarantine",
            str(work / "q"),
            # each run its own private store: no draft or release log shared between runs (a release of the
            # year is compared with every earlier one of the store), nothing left under the data root
            "--drafts",
            str(work / "drafts"),
            "--summary-json",
            str(work / "summary.json"),
        ]
        result = measure(
            command, self.env(mode), self._label(f"pipeline-{mode}-x{export['multiplier']}"), **self.limits
        )
        summary_path = work / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            result["stages"] = summary.get("timings", {})
            result["disclosure"] = summary.get("disclosure_seconds", {})
            result["counts"] = summary.get("counts", {})
            result["quarantined_by_reason"] = summary.get("quarantined_by_reason", {})
        result["work"] = str(work)
        if not keep_output:
            shutil.rmtree(work, ignore_errors=True)
        return result

    def run_baseline(self, config: Path, export: dict) -> dict[str, Any]:
        work = Path(tempfile.mkdtemp(prefix="baseline-", dir=self.scratch))
        command = [
            sys.executable,
            "-m",
            "bench.baseline",
            "--config",
            str(config),
            "--export",
            export["path"],
            "--output",
            str(work / "out"),
            "--quarantine",
            str(work / "q"),
            "--summary-json",
            str(work / "summary.json"),
        ]
        result = measure(command, self.env("cold"), self._label(f"baseline-x{export['multiplier']}"), **self.limits)
        summary_path = work / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            result["stages"] = summary.get("timings", {})
            result["counts"] = summary.get("counts", {})
        result["work"] = str(work)
        return result

    def run_floor(self, mode: str) -> dict[str, Any]:
        return measure(
            [sys.executable, "-m", "bench.floor"], self.env(mode), self._label(f"floor-{mode}"), **self.limits
        )

    def repeated(self, runner, *arguments, times: int | None = None, **keywords) -> dict[str, Any]:
        """Run a measurement `times` (default `--repeat`) times: the median run's figures, every run's kept."""
        return median_run([runner(*arguments, **keywords) for _ in range(times or self.args.repeat)])

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        _kill_live_groups()
        if not self.args.keep_logs:
            shutil.rmtree(self.scratch, ignore_errors=True)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run (by wall seconds) of repeated runs, with the largest peak RSS and the worst exit
    code among them; every run's figures are kept under `runs`."""
    ordered = sorted(runs, key=lambda run: run["wall_seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    chosen["exit_code"] = max((run["exit_code"] for run in runs), key=abs)
    if len(runs) > 1:
        chosen["runs"] = [
            {k: v for k, v in run.items() if k in ("wall_seconds", "peak_rss_mb", "exit_code")} for run in runs
        ]
        chosen["wall_seconds_median"] = statistics.median(run["wall_seconds"] for run in runs)
    return chosen


def compare_awards(pipeline_output: Path, baseline_output: Path) -> dict[str, Any]:
    """The (segment, category, cro, award) rows of both runs' `<out>/survey_year=<year>/awards.parquet`
    (the pipeline's: its release), compared."""
    import duckdb

    def keys(folder: Path) -> set[tuple]:
        path = next(folder.glob("survey_year=*/awards.parquet"), None)
        if path is None:
            return set()
        con = duckdb.connect(":memory:")
        try:
            return set(
                con.execute("select segment, category, cro, award from read_parquet($p)", {"p": str(path)}).fetchall()
            )
        finally:
            con.close()

    ours, theirs = keys(pipeline_output), keys(baseline_output)
    return {
        "equal": bool(ours) and ours == theirs,
        "pipeline_awards": len(ours),
        "baseline_awards": len(theirs),
        "only_pipeline": sorted(ours - theirs)[:10],
        "only_baseline": sorted(theirs - ours)[:10],
    }


def _bootstrap_replicates(config: Path) -> int | None:
    """The pipeline's effective bootstrap_replicates for `config` (None if it has no such knob)."""
    try:
        from cro_awards.reading.config import load_config

        return getattr(load_config(config).survey, "bootstrap_replicates", None)
    except Exception:  # noqa: BLE001 - informative only; the runs themselves report a bad config
        return None


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    sizes = args.sizes
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "sizes": sizes,
            "seed": args.seed,
            "repeat": args.repeat,
            "cold_all": args.cold_all,
            "cold_repeat": max(args.repeat, args.cold_repeat),
            "base_evaluations": bench_data.BASE_EVALUATIONS,
            "max_rss_gb": args.max_rss_gb,
            "timeout_seconds": args.timeout,
        },
        "notes": [
            "wall_seconds: around the whole process (interpreter start to exit)",
            "peak_rss_mb: ru_maxrss from os.wait4 in bench/launch.py, the largest single process among the run "
            "and the children it reaped (in cold mode that includes Prefect's temporary server); MiB",
            "pipeline stages: the flow's own timings (summary.json); other = wall - sum of stages",
            "ratings: answered rating cells of the export (trimmed, not blank, not n/a / na)",
            "marginal: a size's wall seconds minus the 1x wall seconds of the same program",
        ],
    }
    print(_machine_text(results["machine"]), flush=True)
    extra = {} if args.bootstrap_replicates is None else {"bootstrap_replicates": args.bootstrap_replicates}
    config = bench_data.bench_config(args.data_dir, extra=extra)
    replicates = _bootstrap_replicates(config)
    results["settings"]["bootstrap_replicates"] = replicates
    if replicates:
        print(
            f"Note: the pipeline resamples respondents ({replicates} replicates: intervals, award probabilities); the "
            "baseline computes none. --bootstrap-replicates 0 compares like for like.",
            flush=True,
        )
    exports = {}
    for multiplier in sizes:
        record = bench_data.export_for(multiplier, args.seed, args.data_dir)
        exports[multiplier] = record
        how = "reused" if record["cached"] else f"generated in {record['generate_seconds']:.1f} s"
        print(
            f"data x{multiplier}: {record['evaluations']} evaluations, {record['ratings']} ratings, "
            f"{record['bytes'] / 1e6:.1f} MB ({how})",
            flush=True,
        )
    results["config"] = str(config)

    bench = Bench(args)
    cold_times = max(args.repeat, args.cold_repeat)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(bench.close)
    try:
        bench.server = PrefectServer(bench.bin_dir, bench.scratch / "prefect-server-home", bench.logs / "server.log")
        bench.server.start()
        print(f"prefect server on {bench.server.api_url} (ready in {bench.server.start_seconds:.1f} s)", flush=True)
        results["server"] = {"api_url": bench.server.api_url, "ready_seconds": bench.server.start_seconds}
        warmup = bench.run_floor("warm")
        print(f"warm-up floor run (not recorded): {warmup['wall_seconds']:.2f} s", flush=True)
        # The server's first run of the pipeline registers its flow, tasks and the year's concurrency
        # limit: one-off work that a running server has already done, so it is left out like the floor's.
        warmup = bench.run_pipeline(config, exports[min(sizes)], "warm")
        print(f"warm-up pipeline run, x{min(sizes)} (not recorded): {warmup['wall_seconds']:.2f} s", flush=True)
        results["floor"] = {
            "warm": bench.repeated(bench.run_floor, "warm"),
            "cold": bench.repeated(bench.run_floor, "cold", times=cold_times),
        }
        print(
            f"floor: warm {results['floor']['warm']['wall_seconds']:.2f} s, "
            f"cold {results['floor']['cold']['wall_seconds']:.2f} s",
            flush=True,
        )
        # Repeats go in rounds over every size (not all repeats of one size in a row), so that drift in
        # the machine's other work or the server's background services weighs on every size alike.
        measured: dict[int, dict[str, list]] = {m: {"baseline": [], "pipeline": []} for m in sizes}
        for _ in range(args.repeat):
            for multiplier in sizes:
                measured[multiplier]["baseline"].append(bench.run_baseline(config, exports[multiplier]))
                measured[multiplier]["pipeline"].append(
                    bench.run_pipeline(config, exports[multiplier], "warm", keep_output=True)
                )
        results["sizes"] = []
        for multiplier in sizes:
            export = exports[multiplier]
            entry: dict[str, Any] = {
                "multiplier": multiplier,
                "evaluations": export["evaluations"],
                "ratings": export["ratings"],
                "export_mb": export["bytes"] / 1e6,
                "export": export["path"],
            }
            for kind in ("baseline", "pipeline"):
                entry[kind] = median_run(measured[multiplier][kind])
            if _failed(entry, "pipeline") is None and _failed(entry, "baseline") is None:
                entry["awards_check"] = compare_awards(
                    Path(entry["pipeline"]["work"]) / "out", Path(entry["baseline"]["work"]) / "out"
                )
            else:
                entry["awards_check"] = {"equal": None, "detail": "not compared: a run failed"}
            for kind in ("pipeline", "baseline"):
                for run in measured[multiplier][kind]:
                    shutil.rmtree(run.pop("work"), ignore_errors=True)
                entry[kind].pop("work", None)
            if multiplier == 1 or args.cold_all:
                entry["pipeline_cold"] = bench.repeated(bench.run_pipeline, config, export, "cold", times=cold_times)
                entry["pipeline_cold"].pop("work", None)
            results["sizes"].append(entry)
            print(
                f"x{multiplier}: pipeline warm {_seconds(entry, 'pipeline')} s "
                f"({entry['pipeline']['peak_rss_mb']:.0f} MB)"
                + (f", cold {_seconds(entry, 'pipeline_cold')} s" if "pipeline_cold" in entry else "")
                + f"; baseline {_seconds(entry, 'baseline')} s ({entry['baseline']['peak_rss_mb']:.0f} MB)",
                flush=True,
            )
            if entry["awards_check"]["equal"] is False:
                print(
                    f"WARNING: x{multiplier}: the baseline's awards differ from the pipeline's: "
                    f"{entry['awards_check']}",
                    flush=True,
                )
            for kind in ("pipeline", "baseline", "pipeline_cold"):
                if kind in entry and _failed(entry, kind) is not None:
                    print(
                        f"WARNING: x{multiplier}: {kind} {_failure(entry, kind)}:\n  "
                        + "\n  ".join(entry[kind].get("log_tail", [])),
                        flush=True,
                    )
    finally:
        bench.close()
        signal.signal(signal.SIGTERM, previous)
    results["logs"] = str(bench.logs) if args.keep_logs else None
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["machine"]["load_average_end"] = os.getloadavg()
    derive(results)
    return results


# --- derived figures and targets -------------------------------------------------------------------


def _ok(entry: dict | None, kind: str, field: str = "wall_seconds") -> Any:
    """`entry[kind][field]` of a run that succeeded (exit code 0), else None: failed runs count for nothing."""
    run = _get(entry, kind)
    if not run or run.get("exit_code") != 0:
        return None
    return run.get(field)


def _cpu(entry: dict | None, kind: str) -> float | None:
    """User + sys CPU seconds of a run that succeeded, else None."""
    user, system = _ok(entry, kind, "user_seconds"), _ok(entry, kind, "sys_seconds")
    return user + system if user is not None and system is not None else None


def _failed(entry: dict | None, kind: str) -> int | None:
    """The exit code of a measured run that failed, else None."""
    run = _get(entry, kind)
    if run and run.get("killed"):
        return run.get("exit_code") or -9
    return run["exit_code"] if run and run.get("exit_code") not in (0, None) else None


def _failure(entry: dict | None, kind: str) -> str:
    """How a failed run ended, in words."""
    killed = _get(entry, kind, "killed")
    if killed == "memory":
        return "was killed: over the memory cap (--max-rss-gb)"
    if killed == "timeout":
        return "was killed: over the time limit (--timeout)"
    return f"exited with {_failed(entry, kind)}"


def _get(mapping: dict | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, dict) or mapping.get(key) is None:
            return None
        mapping = mapping[key]
    return mapping


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Add ratios, marginal costs, the fixed cost and the targets to `results` (in place); return it."""
    sizes = results.get("sizes", [])
    one = next((entry for entry in sizes if entry["multiplier"] == 1), None)
    pipe_1x = _ok(one, "pipeline")
    base_1x = _ok(one, "baseline")
    for entry in sizes:
        pipe, base = _ok(entry, "pipeline"), _ok(entry, "baseline")
        stages = _get(entry, "pipeline", "stages") or {}
        derived: dict[str, Any] = {
            "pipeline_other_seconds": pipe - sum(stages.values()) if pipe is not None and stages else None,
            "ratings_per_second": entry["ratings"] / pipe if pipe else None,
            "baseline_ratings_per_second": entry["ratings"] / base if base else None,
            "pipeline_over_baseline": pipe / base if pipe and base else None,
            "pipeline_marginal_seconds": pipe - pipe_1x if pipe is not None and pipe_1x is not None else None,
            "baseline_marginal_seconds": base - base_1x if base is not None and base_1x is not None else None,
        }
        pm, bm = derived["pipeline_marginal_seconds"], derived["baseline_marginal_seconds"]
        derived["marginal_ratio"] = pm / bm if entry["multiplier"] != 1 and pm is not None and bm and bm > 0 else None
        # The same in CPU seconds (user + sys of the process and the children it reaped): less
        # sensitive than wall time to other work on the machine. Warm runs leave out the server's CPU.
        pipe_cpu, base_cpu = _cpu(entry, "pipeline"), _cpu(entry, "baseline")
        pipe_cpu_1x, base_cpu_1x = _cpu(one, "pipeline"), _cpu(one, "baseline")
        derived["pipeline_cpu_seconds"], derived["baseline_cpu_seconds"] = pipe_cpu, base_cpu
        pcm = pipe_cpu - pipe_cpu_1x if pipe_cpu is not None and pipe_cpu_1x is not None else None
        bcm = base_cpu - base_cpu_1x if base_cpu is not None and base_cpu_1x is not None else None
        derived["pipeline_cpu_marginal_seconds"], derived["baseline_cpu_marginal_seconds"] = pcm, bcm
        derived["cpu_marginal_ratio"] = (
            pcm / bcm if entry["multiplier"] != 1 and pcm is not None and bcm and bcm > 0 else None
        )
        entry["derived"] = derived
    fixed = {
        "pipeline_1x_warm_seconds": pipe_1x,
        "pipeline_1x_cold_seconds": _ok(one, "pipeline_cold"),
        "floor_warm_seconds": _ok(results.get("floor"), "warm"),
        "floor_cold_seconds": _ok(results.get("floor"), "cold"),
        "baseline_1x_seconds": base_1x,
    }
    for mode in ("warm", "cold"):
        pipe, floor = fixed[f"pipeline_1x_{mode}_seconds"], fixed[f"floor_{mode}_seconds"]
        fixed[f"pipeline_minus_floor_{mode}_seconds"] = pipe - floor if pipe is not None and floor is not None else None
    results["fixed_cost"] = fixed
    results["targets"] = evaluate_targets(results)
    return results


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    by_size = {entry["multiplier"]: entry for entry in results.get("sizes", [])}
    limit = TARGETS["marginal_ratio_max"]
    for multiplier in (100, 1000):
        name = f"{multiplier}x pipeline marginal cost <= {limit:g}x baseline marginal cost"
        entry = by_size.get(multiplier)
        pm = _get(entry, "derived", "pipeline_marginal_seconds")
        bm = _get(entry, "derived", "baseline_marginal_seconds")
        failed = [
            f"{kind} at {m}x {_failure(e, kind)}"
            for m, e in ((multiplier, entry), (1, by_size.get(1)))
            for kind in ("pipeline", "baseline")
            if _failed(e, kind) is not None
        ]
        if failed:
            targets.append({"name": name, "status": "FAIL", "detail": "; ".join(failed)})
        elif pm is None or bm is None:
            targets.append({"name": name, "status": "SKIP", "detail": "size not measured (or no 1x run)"})
        else:
            ok = pm <= limit * max(bm, 0.0)
            targets.append(
                {
                    "name": name,
                    "status": "PASS" if ok else "FAIL",
                    "value": pm,
                    "limit": limit * bm,
                    "detail": f"pipeline +{pm:.2f} s vs baseline +{bm:.2f} s (ratio {pm / bm:.2f})"
                    if bm > 0
                    else f"pipeline +{pm:.2f} s, baseline +{bm:.2f} s",
                }
            )
    for multiplier, gib in TARGETS["rss_gb_max"].items():
        name = f"{multiplier}x pipeline peak RSS < {gib:g} GiB"
        rss = _get(by_size.get(multiplier), "pipeline", "peak_rss_mb")
        if _failed(by_size.get(multiplier), "pipeline") is not None:
            detail = f"the pipeline {_failure(by_size.get(multiplier), 'pipeline')}"
            if _get(by_size.get(multiplier), "pipeline", "killed") == "memory":
                detail += f" (peak at least {rss:.0f} MiB)"
            targets.append({"name": name, "status": "FAIL", "detail": detail})
        elif rss is None:
            targets.append({"name": name, "status": "SKIP", "detail": "size not measured"})
        else:
            targets.append(
                {
                    "name": name,
                    "status": "PASS" if rss < gib * GIB_MB else "FAIL",
                    "value": rss,
                    "limit": gib * GIB_MB,
                    "detail": f"{rss:.0f} MiB (limit {gib * GIB_MB:.0f} MiB)",
                }
            )
    limit = TARGETS["disclosure_seconds_max"]
    for multiplier, entry in sorted(by_size.items()):
        name = f"{multiplier}x disclosure audit < {limit:g} s"
        audit = _audit_seconds(entry.get("pipeline"))
        if _failed(entry, "pipeline") is not None:
            targets.append({"name": name, "status": "FAIL", "detail": f"the pipeline {_failure(entry, 'pipeline')}"})
        elif audit is None:
            targets.append({"name": name, "status": "SKIP", "detail": "not in the run's summary"})
        else:
            targets.append(
                {
                    "name": name,
                    "status": "PASS" if audit < limit else "FAIL",
                    "value": audit,
                    "limit": limit,
                    "detail": f"audit {audit:.3f} s",
                }
            )
    seconds = TARGETS["fixed_cost_seconds_max"]
    fixed = results.get("fixed_cost", {})
    for mode in ("cold", "warm"):
        name = f"1x pipeline within {seconds:g} s of the floor ({mode})"
        gap = fixed.get(f"pipeline_minus_floor_{mode}_seconds")
        failed = [
            f"{label} {_failure(entry, kind)}"
            for label, entry, kind in (
                (f"pipeline ({mode})", by_size.get(1), "pipeline" if mode == "warm" else "pipeline_cold"),
                (f"floor ({mode})", results.get("floor"), mode),
            )
            if _failed(entry, kind) is not None
        ]
        if failed:
            targets.append({"name": name, "status": "FAIL", "detail": "; ".join(failed)})
        elif gap is None:
            targets.append({"name": name, "status": "SKIP", "detail": "not measured"})
        else:
            targets.append(
                {
                    "name": name,
                    "status": "PASS" if gap <= seconds else "FAIL",
                    "value": gap,
                    "limit": seconds,
                    "detail": f"pipeline {fixed[f'pipeline_1x_{mode}_seconds']:.2f} s - floor "
                    f"{fixed[f'floor_{mode}_seconds']:.2f} s = {gap:+.2f} s",
                }
            )
    return targets


# --- text output -----------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:{spec}}{suffix}"
    return str(value)


def _seconds(entry: dict | None, kind: str) -> str:
    """A run's wall seconds, or FAILED(exit code), or KILLED(memory / timeout)."""
    code = _failed(entry, kind)
    if code is None:
        return _fmt(_get(entry, kind, "wall_seconds"))
    killed = _get(entry, kind, "killed")
    return f"KILLED({killed})" if killed else f"FAILED({code})"


def _grid(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([line, rule, *body])


def _machine_text(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in (machine.get("packages") or {}).items() if v)
    return (
        f"Machine: {machine.get('nproc')} CPUs ({machine.get('cpu_model') or 'unknown CPU'}), "
        f"{_fmt(machine.get('mem_total_mb') and machine['mem_total_mb'] / 1024, '.1f')} GiB RAM, "
        f"{machine.get('platform', '')}\n"
        f"Python {machine.get('python')}; {packages}"
        + (f"; commit {machine['commit']}" if machine.get("commit") else "")
        + (" (pipeline code modified since)" if machine.get("code_modified") else "")
        + "".join(
            f"\nLoad average at {when}: " + " ".join(f"{x:.2f}" for x in machine[f"load_average_{when}"])
            for when in ("start", "end")
            if machine.get(f"load_average_{when}")
        )
    )


def _audit_seconds(pipeline: dict[str, Any] | None) -> float | None:
    """The disclosure audit's seconds, from the run summary's `disclosure_seconds` ({"audit": s}); None when
    not there. (Results recorded before the countable-cells rule also timed a complementary suppression
    there: only the audit is read.)"""
    value = ((pipeline or {}).get("disclosure") or {}).get("audit")
    return None if value is None else float(value)


def render_table(results: dict[str, Any]) -> str:
    """The benchmark's results as plain text: machine, per-size tables, fixed cost, targets."""
    sizes = results.get("sizes", [])
    out = [_machine_text(results.get("machine", {}))]
    replicates = _get(results, "settings", "bootstrap_replicates")
    if replicates is not None:
        out.append(
            f"Pipeline bootstrap_replicates: {replicates}"
            + (" (the baseline computes no intervals: not the same work)" if replicates else "")
        )
    out.append("")
    stage_rows = []
    for entry in sizes:
        pipe = entry.get("pipeline", {})
        stages = pipe.get("stages") or {}
        stage_rows.append(
            [
                f"{entry['multiplier']}x",
                _fmt(entry.get("evaluations"), ","),
                _fmt(entry.get("ratings"), ","),
                _seconds(entry, "pipeline"),
                _fmt(_get(entry, "derived", "pipeline_cpu_seconds")),
                *(_fmt(stages.get(stage)) for stage in STAGES),
                _fmt(_audit_seconds(pipe), ".3f"),
                _fmt(_get(entry, "derived", "pipeline_other_seconds")),
                _fmt(pipe.get("peak_rss_mb"), ".0f"),
                _fmt(_get(entry, "derived", "ratings_per_second"), ",.0f"),
            ]
        )
    out.append(
        "Pipeline (cro-awards run, warm Prefect server), wall seconds unless stated; cpu = user + sys; "
        "audit = the disclosure audit (within check; target < 0.5 s)"
    )
    columns = ["size", "evaluations", "ratings", "total", "cpu", *STAGES, "audit", "other", "RSS MB", "ratings/s"]
    out.append(_grid(columns, stage_rows))
    out.append("")
    compare_rows = []
    floor_warm = _seconds(results.get("floor"), "warm")
    for entry in sizes:
        derived = entry.get("derived", {})
        compare_rows.append(
            [
                f"{entry['multiplier']}x",
                _seconds(entry, "pipeline"),
                _seconds(entry, "pipeline_cold"),
                _seconds(entry, "baseline"),
                _fmt(derived.get("baseline_cpu_seconds")),
                _fmt(_get(entry, "baseline", "peak_rss_mb"), ".0f"),
                floor_warm,
                _fmt(derived.get("pipeline_over_baseline"), ".1f", "x"),
                _fmt(derived.get("pipeline_marginal_seconds"), "+.2f"),
                _fmt(derived.get("baseline_marginal_seconds"), "+.2f"),
                _fmt(derived.get("marginal_ratio"), ".1f", "x"),
                _fmt(derived.get("cpu_marginal_ratio"), ".1f", "x"),
                {True: "same", False: "DIFFER", None: "-"}[_get(entry, "awards_check", "equal")],
            ]
        )
    out.append("Pipeline vs baseline (DuckDB SQL only) and floor (empty flow), seconds")
    out.append(
        _grid(
            [
                "size",
                "pipe warm",
                "pipe cold",
                "baseline",
                "base cpu",
                "base RSS MB",
                "floor warm",
                "pipe/base",
                "pipe marg.",
                "base marg.",
                "marg. ratio",
                "cpu marg. ratio",
                "awards",
            ],
            compare_rows,
        )
    )
    out.append("")
    fixed = results.get("fixed_cost", {})
    out.append(
        "Fixed cost at 1x: pipeline warm {pw} s - floor warm {fw} s = {dw} s; pipeline cold {pc} s - floor cold "
        "{fc} s = {dc} s; baseline {b} s".format(
            pw=_fmt(fixed.get("pipeline_1x_warm_seconds")),
            fw=_fmt(fixed.get("floor_warm_seconds")),
            dw=_fmt(fixed.get("pipeline_minus_floor_warm_seconds"), "+.2f"),
            pc=_fmt(fixed.get("pipeline_1x_cold_seconds")),
            fc=_fmt(fixed.get("floor_cold_seconds")),
            dc=_fmt(fixed.get("pipeline_minus_floor_cold_seconds"), "+.2f"),
            b=_fmt(fixed.get("baseline_1x_seconds")),
        )
    )
    out.append("")
    out.append("Targets")
    for target in results.get("targets", []):
        out.append(f"{target['status']:4}  {target['name']}: {target.get('detail', '')}")
    return "\n".join(out)


# --- command line ----------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 1,10,100")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1, 10, 100, 1000],
        help="size multipliers of 1500 evaluations (default 1,10,100,1000); 1 is always added",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--seed", type=int, default=bench_data.DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (the median run is kept)")
    parser.add_argument("--cold-all", action="store_true", help="also measure cold (ephemeral) runs at every size")
    parser.add_argument(
        "--cold-repeat",
        type=int,
        default=3,
        help="runs per cold measurement, the median kept (default 3: the temporary server's "
        "start varies by seconds from run to run)",
    )
    parser.add_argument("--data-dir", type=Path, default=bench_data.DATA_DIR)
    parser.add_argument("--keep-logs", action="store_true", help="keep the runs' logs (their folder is printed)")
    parser.add_argument(
        "--bootstrap-replicates",
        type=int,
        metavar="N",
        help="write N into the bench YAML (0: no resampling, the baseline's work); "
        "default: the survey YAML's own value",
    )
    total_gib = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 1024**3
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=round(0.6 * total_gib, 1),
        metavar="GIB",
        help="kill a run whose processes hold more than this resident together "
        "(default: 60%% of this machine's memory; 0: no limit)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="kill a run that takes longer (default 1800; 0: no limit)",
    )
    args = parser.parse_args(argv)
    if 1 not in args.sizes:
        args.sizes = [1, *args.sizes]  # marginal costs and the fixed cost are relative to 1x
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    results = run_benchmark(args)
    print()
    print(render_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nResults written to {args.out}" + (f"; logs in {results['logs']}" if results.get("logs") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
