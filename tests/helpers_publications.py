"""Tiny drafts and what readers see, shared by tests/test_publish.py and tests/test_releases.py.

A draft is a literal table or two and a manifest whose `published_at` the test chooses; readers are
the data contract's: a DuckDB glob of `<output>/*/awards.parquet`, with and without hive partitioning.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cro_awards.engine import checkpoints
from cro_awards.publication import publish as publishing
from cro_awards.record.manifest import Manifest

YEAR = 2024
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
"""The injected clock of the releases and the keep policy."""


def at(days_ago: float) -> str:
    """A `published_at` (the manifests' format) `days_ago` days before NOW."""
    return (NOW - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tables(score: float, n_awards: int = 1) -> dict[str, pa.Table]:
    """attribute_scores whose one score is `score` and awards of `n_awards` rows, so that a reader tells
    drafts apart by either."""
    return {
        "attribute_scores": pa.table(
            {"segment": ["overall"], "cro": ["a"], "attribute": ["x"], "n_ratings": [3], "score": [score]}
        ),
        "awards": pa.table(
            {
                "segment": ["overall"] * n_awards,
                "category": ["k"] * n_awards,
                "cro": [f"c{i}" for i in range(n_awards)],
                "award": ["champion"] * n_awards,
            }
        ),
    }


def manifest(run_id: str, published_at: str | None = None, overrides: dict | None = None) -> Manifest:
    return Manifest.of(
        {
            "run_id": run_id,
            "published_at": published_at or at(1),
            "survey_year": YEAR,
            "export": {"file_name": "export.csv", "sha256": f"sha-{run_id}"},
            "config": {"file_name": "2024.yaml", "sha256": "cfg", "overrides": overrides or {}},
        }
    )


def store(output: Path) -> Path:
    """The private store of drafts of the output folder `output` in these tests: `drafts` beside it."""
    return output.parent / "drafts"


def draft(
    output: Path,
    run_id: str,
    score: float = 1.0,
    n_awards: int = 1,
    published_at: str | None = None,
    contributions=None,
) -> Path:
    return publishing.write_draft(
        tables(score, n_awards),
        manifest(run_id, published_at),
        store(output),
        {"report.html": f"<p>{run_id}</p>", "draft_report.html": f"<p>DRAFT {run_id}</p>"},
        contributions,
        output=output,
    )


def quarantine_rows(source_rows: list[int]) -> pa.Table:
    return pa.table({"source_row": source_rows, "reasons": [["no_ratings"]] * len(source_rows)})


def released_score(output: Path) -> float:
    return pq.read_table(publishing.year_folder(output, YEAR) / "attribute_scores.parquet")["score"][0].as_py()


class Killed(BaseException):
    """Stands for a SIGKILL at a checkpoint: nothing after it runs, no `except OSError` catches it."""


def stop_at(monkeypatch, point: str, observer=None) -> None:
    """From now on (in this test), call `observer(name)` at every checkpoint and "kill" the run at `point`
    (through `cro_awards.engine.checkpoints`' observers, as the crash tests do from outside)."""

    def watch(name: str) -> None:
        if observer is not None:
            observer(name)
        if name == point:
            raise Killed(name)

    monkeypatch.setattr(checkpoints, "_observers", [watch])


def reader_counts(output: Path) -> tuple[int, int]:
    """Rows of awards as the data contract's readers get them, with and without hive partitioning; (0, 0)
    when the glob matches no file."""
    pattern = f"{output}/*/awards.parquet"
    connection = duckdb.connect()
    if connection.execute(f"select count(*) from glob('{pattern}')").fetchone()[0] == 0:
        return 0, 0
    return tuple(
        connection.execute(f"select count(*) from read_parquet('{pattern}', hive_partitioning = {hive})").fetchone()[0]
        for hive in ("true", "false")
    )


def assert_readers_see_only(output: Path, n_rows: int) -> None:
    """Readers globbing the output's top level get the released rows, and only the years' links are there
    to match."""
    assert reader_counts(output) == (n_rows, n_rows)
    names = sorted(p.name for p in output.iterdir())
    links = [name for name in names if name.startswith("survey_year=")]
    assert all((output / name).is_symlink() for name in links)
    assert [name for name in names if not name.startswith(".")] == links, names
    assert [name for name in names if "survey_year" in name] == links, names
    matched = duckdb.connect().execute(f"select file from glob('{output}/*/*.parquet')").fetchall()
    assert all(Path(file).parent.name.startswith("survey_year=") for (file,) in matched), matched
