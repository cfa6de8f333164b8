"""The released years of an output folder (cro_awards/publication/history.py): reading them, and each CRO's series.

Fixtures are written by hand: publication folders under `.publications/` with a `_manifest.json` and a
three-row composite_scores.parquet, the years' links pointing at them, as `cro_awards.publication.publish` lays
them out; the series use literal tables of a few rows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cro_awards.engine.errors import PublishError
from cro_awards.publication import history
from cro_awards.publication.history import Point, Release


def _composites(rows: list[tuple], names: bool = True) -> pa.Table:
    """rows: (segment, category, cro, composite, cro_name); an extra column the history does not keep."""
    columns = {
        "segment": pa.array([row[0] for row in rows], pa.string()),
        "cro": pa.array([row[2] for row in rows], pa.string()),
        "category": pa.array([row[1] for row in rows], pa.string()),
        "n_evaluations": pa.array([12] * len(rows), pa.int64()),
        "composite": pa.array([row[3] for row in rows], pa.float64()),
    }
    if names:
        columns["cro_name"] = pa.array([row[4] for row in rows], pa.string())
    return pa.table(columns)


def _publish(output: Path, year: int, rows: list[tuple], *, names: bool = True, link: bool = True) -> Path:
    """A publication folder of `year` (manifest and composites) and, with `link`, the year's link to it."""
    folder = output / ".publications" / f"survey_year={year}" / f"2026-01-01T00-00-00Z-run-{year}"
    folder.mkdir(parents=True)
    manifest = {"run_id": f"run-{year}", "survey_year": year, "config": {"effective": {"min_evaluations": year % 10}}}
    (folder / "_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    pq.write_table(_composites(rows, names), folder / "composite_scores.parquet")
    (folder / "report.html").write_text("<p>report</p>", encoding="utf-8")
    if link:
        os.symlink(folder.relative_to(output), output / f"survey_year={year}")
    return folder


ROW = [("overall", "quality", "alpha", 4.0, "Alpha")]


# --- load_history ------------------------------------------------------------------------------------


def test_every_released_year_before_this_one_oldest_first(tmp_path):
    for year in (2023, 2021, 2022, 2024, 2025):
        _publish(tmp_path, year, ROW)
    releases = history.load_history(tmp_path, 2024)
    assert [release.survey_year for release in releases] == [2021, 2022, 2023]  # 2024 itself and 2025 skipped
    assert [release.run_id for release in releases] == ["run-2021", "run-2022", "run-2023"]
    assert releases[0].manifest.effective == {"min_evaluations": 1}
    assert releases[0].composites.column_names == ["segment", "category", "cro", "composite", "cro_name"]
    assert releases[0].composites.to_pylist() == [
        {"segment": "overall", "category": "quality", "cro": "alpha", "composite": 4.0, "cro_name": "Alpha"}
    ]


def test_what_is_not_a_release_is_skipped(tmp_path):
    _publish(tmp_path, 2022, ROW)
    _publish(tmp_path, 2021, ROW, link=False)  # a draft never released: no link
    os.symlink(".publications/survey_year=2020/gone", tmp_path / "survey_year=2020")  # dangling link
    (tmp_path / "survey_year=2019").mkdir()  # a folder without _manifest.json
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    (tmp_path / "survey_year=abcd").mkdir()
    assert [release.survey_year for release in history.load_history(tmp_path, 2024)] == [2022]
    assert history.load_history(tmp_path / "missing", 2024) == []


def test_a_release_without_names_keeps_its_ids(tmp_path):
    _publish(tmp_path, 2023, [("overall", "quality", "Alpha Labs", 4.0, None)], names=False)
    (release,) = history.load_history(tmp_path, 2024)
    assert release.composites.column_names == ["segment", "category", "cro", "composite"]
    assert history.release_names([release]) == {"Alpha Labs": "Alpha Labs"}


def test_an_unreadable_release_is_an_error_naming_it(tmp_path):
    folder = _publish(tmp_path, 2023, ROW)
    (folder / "_manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PublishError, match=r"survey year 2023 .*cro-awards release 2023"):
        history.load_history(tmp_path, 2024)
    (folder / "_manifest.json").write_text("{}", encoding="utf-8")
    pq.write_table(pa.table({"cro": ["alpha"]}), folder / "composite_scores.parquet")
    with pytest.raises(PublishError, match=r"composite_scores.parquet .*lacks the column\(s\) category, composite"):
        history.load_history(tmp_path, 2024)


# --- the pure functions ----------------------------------------------------------------------------


CROS = [
    SimpleNamespace(id="alpha", name="Alpha"),
    SimpleNamespace(id="beta", name="Beta", formerly=("beta_old",)),
    SimpleNamespace(id="merged", name="Merged", formerly=("north", "south")),
]


def test_former_ids_and_source_ids():
    formerly = history.former_ids(CROS)
    assert formerly == {"beta": ("beta_old",), "merged": ("north", "south")}
    assert history.source_id("alpha", formerly, {"alpha"}) == "alpha"
    assert history.source_id("alpha", formerly, set()) == "alpha"  # absent: looked up, not found
    assert history.source_id("beta", formerly, {"beta_old"}) == "beta_old"  # a rename
    assert history.source_id("beta", formerly, {"beta", "beta_old"}) == "beta"  # itself first
    assert history.source_id("merged", formerly, {"north", "south", "merged"}) is None  # a merger
    assert history.is_merger("merged", formerly) and not history.is_merger("beta", formerly)
    # a configuration without ids (before they existed): the name is the id
    assert history.former_ids([SimpleNamespace(name="Gamma")]) == {}
    assert history.cro_id(SimpleNamespace(name="Gamma")) == "Gamma"


def _release(year: int, rows: list[tuple]) -> Release:
    return Release(year, f"run-{year}", {}, _composites(rows))


def test_composite_series_per_cro_over_the_released_years():
    releases = [
        _release(2021, [("overall", "quality", "alpha", 4.0, "Alpha"), ("overall", "quality", "beta_old", 3.0, "Old")]),
        # 2022: alpha's composite withheld (no row) and north/south still apart
        _release(2022, [("overall", "quality", "beta_old", 3.2, "Old"), ("overall", "quality", "north", 2.0, "N")]),
        _release(2023, [("overall", "quality", "alpha", 4.2, "Alpha"), ("overall", "quality", "beta_old", 3.4, "Old")]),
        _release(2025, [("overall", "quality", "alpha", 9.9, "Alpha")]),  # later than the report: ignored
    ]
    current = [
        {"segment": "overall", "category": "quality", "cro": "alpha", "composite": 4.4, "cro_name": "Alpha"},
        {"segment": "overall", "category": "quality", "cro": "beta", "composite": 3.6, "cro_name": "Beta"},
        {"segment": "overall", "category": "quality", "cro": "merged", "composite": 2.5, "cro_name": "Merged"},
        {"segment": "big_pharma", "category": "quality", "cro": "gamma", "composite": 3.0},
    ]
    series = history.composite_series(releases, current, 2024, history.former_ids(CROS))
    assert series[("overall", "quality", "alpha")] == [
        Point(2021, 4.0, "alpha", "Alpha"),
        Point(2022, None),  # a gap, not a zero
        Point(2023, 4.2, "alpha", "Alpha"),
        Point(2024, 4.4, "alpha", "Alpha"),
    ]
    assert series[("overall", "quality", "beta")] == [
        Point(2021, 3.0, "beta_old", "Old"),
        Point(2022, 3.2, "beta_old", "Old"),
        Point(2023, 3.4, "beta_old", "Old"),
        Point(2024, 3.6, "beta", "Beta"),
    ]
    assert series[("overall", "quality", "merged")] == [Point(2024, 2.5, "merged", "Merged")]  # no series before
    assert series[("big_pharma", "quality", "gamma")] == [
        Point(2021, None),
        Point(2022, None),
        Point(2023, None),
        Point(2024, 3.0, "gamma", "gamma"),  # new this year; no cro_name: its id
    ]
    assert history.release_names(releases) == {"alpha": "Alpha", "beta_old": "Old", "north": "N"}
