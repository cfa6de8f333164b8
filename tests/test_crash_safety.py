"""Crash safety: SIGKILL the whole run (`cro-awards run --release`) (its process group: the CLI and its temporary Prefect server) at
every named kill point, and check each time that the year's output is the previous complete publication
or the new one, never a mix or a partial file; then that the next run recovers by itself.

The kills are chained in one output folder: each killed run meets the leftovers of the ones before, and
the final, unkilled run must publish and leave no temporary file behind.

After every run, killed or not, readers query the output as docs/contract.md section 4 says they do
(`read_parquet('<output>/*/awards.parquet', hive_partitioning = true)`, and the same without hive
partitioning): they must get exactly the live publication's rows, never an error or a second
publication's rows, and nothing but the years' links may sit at the output's top level.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from cro_awards.engine.checkpoints import CHECKPOINTS as KILL_POINTS
from tests.conftest import PROJECT_ROOT, RUN_TIMEOUT, SAMPLE_CONFIG, cli_run_env

RUNS_PER_CHAIN = 2 + (len(KILL_POINTS) + 1) // 2
"""A chain's runs: the first, one killed run per kill point of its half, and the final one."""

# Each run is bounded by RUN_TIMEOUT (a temporary server's start on a busy machine, then the run).
pytestmark = [pytest.mark.e2e, pytest.mark.prefect, pytest.mark.timeout(RUNS_PER_CHAIN * RUN_TIMEOUT + 60)]

TABLES = ("attribute_scores", "composite_scores", "awards")
FAULTS = PROJECT_ROOT / "tests" / "faults"
KILL_POINT_VARIABLE = "CRO_AWARDS_KILL_POINT"
CLI = [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())"]


def _run(
    home: Path, output: Path, quarantine: Path, kill_point: str | None, multiplier: str
) -> subprocess.CompletedProcess:
    env = cli_run_env(
        home,
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]),
    )
    env.pop(KILL_POINT_VARIABLE, None)
    if kill_point:
        env[KILL_POINT_VARIABLE] = kill_point
    return subprocess.run(
        [
            *CLI,
            "run",
            "--config",
            str(SAMPLE_CONFIG),
            "--output",
            str(output),
            "--quarantine",
            str(quarantine),
            "--drafts",
            str(output.parent / "drafts"),
            "--champion-sd-multiplier",
            multiplier,
            "--release",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        start_new_session=True,
    )


def _live_publication(output: Path) -> dict:
    """The live publication, checked whole: every table present and as long as its manifest says."""
    link = output / "survey_year=2024"
    assert link.is_symlink(), "the year is reached through its link"
    folder = link.resolve()
    assert not folder.name.startswith(".tmp-"), "a temporary folder is never live"
    manifest = json.loads((link / "_manifest.json").read_text())
    for table in TABLES:
        parquet = pq.read_table(link / f"{table}.parquet")
        assert parquet.num_rows == manifest["tables"][table]["rows"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f"{t}.parquet" for t in TABLES), "_manifest.json", "report.html"]
    ), "the release's readable copy: the public files only (no draft_report.html, nothing of the guard's)"
    return manifest


def _readers_get_the_live_rows(output: Path, live: dict | None) -> None:
    """Readers glob the output's top level as the contract says: the live publication's awards rows
    exactly (no file at all before any publication), with and without hive partitioning; and the only
    entries there a glob could match are the years' links."""
    pattern = f"{output}/*/awards.parquet"
    connection = duckdb.connect()
    if live is None:
        assert connection.execute(f"select count(*) from glob('{pattern}')").fetchone()[0] == 0
        return
    expected = live["tables"]["awards"]["rows"]
    for hive in ("true", "false"):
        query = f"select count(*) from read_parquet('{pattern}', hive_partitioning = {hive})"
        assert connection.execute(query).fetchone()[0] == expected, f"hive_partitioning = {hive}"
    names = sorted(p.name for p in output.iterdir())
    links = [name for name in names if name.startswith("survey_year=")]
    assert links == ["survey_year=2024"] and (output / links[0]).is_symlink(), names
    assert [name for name in names if not name.startswith(".")] == links, f"only the years' links: {names}"
    assert [name for name in names if "survey_year" in name] == links, f"no temporary link at the top: {names}"
    matched = connection.execute(f"select file from glob('{output}/*/*.parquet')").fetchall()
    assert {Path(file).parent.name for (file,) in matched} == {"survey_year=2024"}, matched


def _quarantine_readable(quarantine: Path) -> int:
    return pq.read_table(quarantine / "survey_year=2024" / "rejected_evaluations.parquet").num_rows


def _kill_chain(root: Path, points: tuple[str, ...]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    home, output, quarantine = root / "prefect-home", root / "output", root / "quarantine"
    _readers_get_the_live_rows(output, None)
    first = _run(home, output, quarantine, None, "1.0")
    assert first.returncode == 0, first.stderr
    previous = _live_publication(output)
    _readers_get_the_live_rows(output, previous)
    n_quarantined = _quarantine_readable(quarantine)
    for number, point in enumerate(points):
        multiplier = f"{0.5 + number / 100:.2f}"
        killed = _run(home, output, quarantine, point, multiplier)
        assert killed.returncode == -9, f"{point}: expected SIGKILL, got {killed.returncode}: {killed.stderr[-2000:]}"
        live = _live_publication(output)
        _readers_get_the_live_rows(output, live)
        if live["run_id"] != previous["run_id"]:
            assert live["config"]["overrides"] == {"champion_sd_multiplier": float(multiplier)}, point
            assert KILL_POINTS.index(point) >= KILL_POINTS.index("link_switched"), f"{point}: published too early"
        else:
            assert KILL_POINTS.index(point) < KILL_POINTS.index("link_switched"), f"{point}: new publication lost"
        assert _quarantine_readable(quarantine) == n_quarantined
        previous = live
    final = _run(home, output, quarantine, None, "2.0")
    assert final.returncode == 0, final.stderr
    live = _live_publication(output)
    _readers_get_the_live_rows(output, live)
    assert live["config"]["overrides"] == {"champion_sd_multiplier": 2.0}
    leftovers = [*output.rglob(".tmp-*"), *quarantine.rglob(".tmp-*"), *(root / "drafts").rglob(".tmp-*")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    store = root / "drafts" / "survey_year=2024"
    drafts = [p for p in store.iterdir() if not p.name.startswith(".")]
    assert all((p / "_manifest.json").is_file() for p in drafts), "only complete drafts are kept"
    copies = sorted(p.name for p in (output / ".releases" / "survey_year=2024").iterdir())
    assert live["run_id"] in copies and len(copies) <= 2, f"the current and the previous release's copies: {copies}"


def test_kill_at_every_point_leaves_old_or_new_publication_and_next_run_recovers(tmp_path):
    """Two chains run side by side (two cores), each through half of the kill points in order."""
    from concurrent.futures import ThreadPoolExecutor

    chains = (KILL_POINTS[0::2], KILL_POINTS[1::2])
    with ThreadPoolExecutor(max_workers=len(chains)) as pool:
        futures = [pool.submit(_kill_chain, tmp_path / f"chain-{index}", points) for index, points in enumerate(chains)]
        for future in futures:
            future.result()


RELEASE_KILL_POINTS = (
    "release_copy_file_written",
    "release_copy_renamed",
    "link_created",
    "link_switched",
    "release_recorded",
)
"""The checkpoints a release passes (its readable copy, the year's link, then the quarantine's, then the log)."""


def _release(output: Path, quarantine: Path, run_id: str, kill_point: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")])}
    env.pop(KILL_POINT_VARIABLE, None)
    if kill_point:
        env[KILL_POINT_VARIABLE] = kill_point
    arguments = ["release", "2024", run_id, "--output", str(output), "--quarantine", str(quarantine)]
    arguments += ["--drafts", str(output.parent / "drafts")]
    return subprocess.run(
        [*CLI, *arguments],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def _released_run(output: Path) -> str:
    return json.loads((output / "survey_year=2024" / "_manifest.json").read_text())["run_id"]


def _make_draft(output: Path, quarantine: Path, run_id: str, rows: int) -> Path:
    import pyarrow as pa

    from cro_awards.publication import publish

    awards = pa.table({"segment": ["overall"] * rows, "cro": [f"cro_{i}" for i in range(rows)]})
    manifest = {
        "run_id": run_id,
        "survey_year": 2024,
        "published_at": f"2026-12-01T10:00:0{rows}.000000Z",
        "export": {"file_name": "export_2024.csv", "sha256": run_id * 4},
        "config": {"overrides": {}, "effective": {}},
    }
    publish.write_quarantine(pa.table({"source_row": list(range(rows))}), quarantine, 2024, run_id)
    documents = {"report.html": "<p>report</p>", "draft_report.html": "<p>DRAFT</p>"}
    return publish.write_draft({"awards": awards}, manifest, output.parent / "drafts", documents, output=output)


@pytest.mark.timeout(len(RELEASE_KILL_POINTS) * 2 * 120 + 60)
def test_sigkill_during_a_release_leaves_the_old_or_the_new_release_never_neither(tmp_path):
    """`cro-awards release`, SIGKILLed at each point of a release, back and forth between two drafts:
    readers always get one whole release (the old or the new, never none), and releasing again
    completes it (link, quarantine link, one log line)."""
    output, quarantine = tmp_path / "output", tmp_path / "quarantine"
    drafts = {
        "run-a": _make_draft(output, quarantine, "run-a", 3),
        "run-b": _make_draft(output, quarantine, "run-b", 5),
    }
    rows = {"run-a": 3, "run-b": 5}
    first = _release(output, quarantine, "run-a", None)
    assert first.returncode == 0, first.stderr
    current, previous = "run-a", "run-b"
    connection = duckdb.connect()
    for number, point in enumerate(RELEASE_KILL_POINTS):
        if point.startswith("release_copy"):  # a draft never released: its readable copy is made, then killed
            target = f"run-{number}"
            rows[target] = 6 + number
            drafts[target] = _make_draft(output, quarantine, target, rows[target])
        else:  # back and forth (a rollback reuses the copy kept of the previous release)
            target = previous
        killed = _release(output, quarantine, target, point)
        assert killed.returncode == -9, f"{point}: expected SIGKILL, got {killed.returncode}: {killed.stderr[-2000:]}"
        live = _released_run(output)
        assert live in (current, target), f"{point}: the link shows {live}"
        switched = RELEASE_KILL_POINTS.index(point) >= RELEASE_KILL_POINTS.index("link_switched")
        assert live == (target if switched else current), point
        count = connection.execute(f"select count(*) from read_parquet('{output}/*/awards.parquet')").fetchone()[0]
        assert count == rows[live], point
        completed = _release(output, quarantine, target, None)
        assert completed.returncode == 0, completed.stderr
        assert _released_run(output) == target and (output / "survey_year=2024").resolve() != drafts[target]
        released_quarantine = quarantine / "survey_year=2024" / "rejected_evaluations.parquet"
        assert pq.read_table(released_quarantine).num_rows == rows[target], point
        log = [json.loads(line) for line in (tmp_path / "drafts" / "releases.jsonl").read_text().splitlines()]
        assert log[-1]["run_id"] == target and log[-2]["run_id"] == current, f"{point}: one line per release: {log}"
        current, previous = target, current
    leftovers = [*output.rglob(".tmp-*"), *quarantine.rglob(".tmp-*"), *(tmp_path / "drafts").rglob(".tmp-*")]
    assert leftovers == [], f"temporary links left behind: {leftovers}"
