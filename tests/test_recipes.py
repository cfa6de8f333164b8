"""The recipes of docs/reading-the-outputs.md, each run as written against an output folder.

Each ```python block of the page marked `# recipe: <name>` is executed with `output` bound to a folder
laid out as a real output (`cro_awards.publication.publish`): two released years, each a relative link
`<output>/survey_year=<year> -> .publications/survey_year=<year>/<published_at>-<run_id>`, beside a draft
of each year that is not released and a draft's half-written `.tmp-` folder; `.locks/`, the ledger and
the release log. Every publication holds the three tables (written with `cro_awards.publication.columns.describe`),
`report.html`, `draft_report.html` and `_manifest.json`. The 2023 release predates the label columns (a
year published before issue 14), so the readers must merge columns by name. Every recipe must return
exactly the released rows of both years, none of a draft's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cro_awards.publication.columns import DESCRIPTIONS, describe

DOC = Path(__file__).resolve().parent.parent / "docs" / "reading-the-outputs.md"
RECIPES = ("duckdb", "pandas", "polars", "metadata-pyarrow", "metadata-duckdb")
TABLE_RECIPES = ("duckdb", "pandas", "polars")

LABELS = ("cro_name", "category_label")
"""The awards' label columns, absent from the 2023 release (published before them)."""

RELEASED = {
    2023: ("20230301T090000Z-run-2023-released", [("northwind_clinical", "leader", "Northwind Clinical")]),
    2024: (
        "20240301T090000Z-run-2024-released",
        [("aldercrest", "leader", "Aldercrest Research"), ("northwind_clinical", "champion", "Northwind")],
    ),
}
"""Year -> (the released publication's folder, its award rows (cro, award, cro_name))."""

DRAFTS = {
    2023: ("20261130T120000Z-run-2023-draft", [("draft_only_cro", "leader", "Draft Only")]),
    2024: ("20261201T120000Z-run-2024-draft", [("draft_only_cro", "champion", "Draft Only")]),
}
"""A newer draft of each year, not released: its rows must never be read."""


def awards_table(year: int, rows: list[tuple[str, str, str]], *, labels: bool) -> pa.Table:
    columns: dict[str, list[Any]] = {
        "segment": ["overall"] * len(rows),
        "category": ["delivery"] * len(rows),
        "cro": [cro for cro, _, _ in rows],
        "award": [award for _, award, _ in rows],
        "composite": [4.0 + i / 10 for i in range(len(rows))],
        "weighted_mean": [3.5] * len(rows),
        "weighted_sd": [0.25] * len(rows),
        "threshold": [3.75] * len(rows),
        "p_award": [0.9] * len(rows),
        "is_robust": [True] * len(rows),
    }
    if labels:
        columns |= {"cro_name": [name for _, _, name in rows], "category_label": ["Delivery"] * len(rows)}
    return pa.table(columns)


def other_tables(rows: list[tuple[str, str, str]]) -> dict[str, pa.Table]:
    """attribute_scores and composite_scores for the same CROs (the recipes read awards only; these make
    the folder a real publication's)."""
    cros = [cro for cro, _, _ in rows]
    return {
        "attribute_scores": pa.table(
            {
                "segment": ["overall"] * len(cros),
                "cro": cros,
                "attribute": ["quality"] * len(cros),
                "n_ratings": [12] * len(cros),
                "score": [4.0] * len(cros),
            }
        ),
        "composite_scores": pa.table(
            {
                "segment": ["overall"] * len(cros),
                "cro": cros,
                "category": ["delivery"] * len(cros),
                "n_evaluations": [12] * len(cros),
                "composite": [4.0] * len(cros),
            }
        ),
    }


def knobs(year: int) -> dict[str, Any]:
    """The effective knobs of each year's runs: min_evaluations differs between the years."""
    return {"champion_sd_multiplier": 1.0, "min_evaluations": 10 if year == 2023 else 12}


def write_publication(output: Path, year: int, name: str, rows: list[tuple[str, str, str]], *, labels: bool) -> None:
    folder = output / ".publications" / f"survey_year={year}" / name
    folder.mkdir(parents=True)
    run_id = name.split("-", 1)[1]
    tables = {**other_tables(rows), "awards": awards_table(year, rows, labels=labels)}
    for table_name, table in tables.items():
        described = describe(table_name, table, survey_year=year, run_id=run_id, configuration=knobs(year))
        pq.write_table(described, folder / f"{table_name}.parquet")
    (folder / "report.html").write_text("<!doctype html><title>report</title>", encoding="utf-8")
    (folder / "draft_report.html").write_text("<!doctype html><title>DRAFT</title>", encoding="utf-8")
    (folder / "_manifest.json").write_text(json.dumps({"run_id": run_id, "survey_year": year}), encoding="utf-8")


@pytest.fixture
def output(tmp_path) -> Path:
    output = tmp_path / "output"
    for year, (name, rows) in RELEASED.items():
        write_publication(output, year, name, rows, labels=year != 2023)
        (output / f"survey_year={year}").symlink_to(Path(".publications") / f"survey_year={year}" / name)
    for year, (name, rows) in DRAFTS.items():
        write_publication(output, year, name, rows, labels=True)
    leftover = output / ".publications" / "survey_year=2024" / ".tmp-20261201T130000Z-run-2024-killed"
    leftover.mkdir()
    pq.write_table(
        awards_table(2024, [("killed_run_cro", "leader", "Killed")], labels=True), leftover / "awards.parquet"
    )
    (output / ".publications" / "published_exports.jsonl").write_text("", encoding="utf-8")
    (output / ".publications" / "releases.jsonl").write_text("", encoding="utf-8")
    (output / ".locks").mkdir()
    (output / ".locks" / "survey_year=2024.lock").write_text("", encoding="utf-8")
    return output


def recipes() -> dict[str, str]:
    """Marker name -> the code of each ```python block of the page that carries `# recipe: <name>`."""
    found = {}
    for block in re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), flags=re.M | re.S):
        marker = re.search(r"^# recipe: (\S+)$", block, flags=re.M)
        if marker:
            assert marker.group(1) not in found, f"{DOC.name}: two recipes named {marker.group(1)}"
            found[marker.group(1)] = block
    return found


def run_recipe(name: str, output: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"output": str(output)}
    exec(compile(recipes()[name], f"{DOC.name}: recipe {name}", "exec"), namespace)
    return namespace


def records(frame: Any) -> list[dict[str, Any]]:
    """Rows of a pandas or polars frame as dicts, a missing value (None, NaN, NA) as None."""
    rows = frame.to_dicts() if hasattr(frame, "to_dicts") else frame.to_dict("records")
    return [{key: None if _missing(value) else value for key, value in row.items()} for row in rows]


def _missing(value: Any) -> bool:
    """None, NaN (not equal to itself) or pandas' NA (whose comparison has no truth value)."""
    try:
        return value is None or bool(value != value)
    except TypeError:
        return True


def test_the_page_has_every_recipe():
    assert set(recipes()) == set(RECIPES)


def test_the_fixture_has_drafts_that_a_careless_reader_would_read(output):
    """The teeth of the tests below: a recursive glob reaches the drafts, and reading the folder trips
    over report.html, exactly as the page warns."""
    import duckdb
    import pandas as pd

    everywhere = duckdb.sql(f"select cro from read_parquet('{output}/**/awards.parquet', union_by_name = true)")
    assert {"draft_only_cro", "killed_run_cro"} <= {cro for (cro,) in everywhere.fetchall()}
    with pytest.raises(Exception, match=r"report\.html"):
        pd.read_parquet(output)


@pytest.mark.parametrize("name", TABLE_RECIPES)
def test_a_recipe_reads_every_released_year_and_no_draft(name, output):
    rows = records(run_recipe(name, output)["awards"])
    got = sorted((row["survey_year"], row["cro"], row["award"], row["cro_name"]) for row in rows)
    expected = sorted(
        (year, cro, award, cro_name if year != 2023 else None)
        for year, (_, released) in RELEASED.items()
        for cro, award, cro_name in released
    )
    assert got == expected, f"recipe {name}"
    assert all(type(row["survey_year"]) is int for row in rows), f"recipe {name}: survey_year is not an int"


def test_the_pyarrow_metadata_recipe_reads_the_release(output):
    found = run_recipe("metadata-pyarrow", output)
    assert found["about"]["survey_year"] == "2024"
    assert found["about"]["run_id"] == RELEASED[2024][0].split("-", 1)[1]
    assert found["configuration"] == knobs(2024)
    assert found["descriptions"] == DESCRIPTIONS["awards"]


def test_the_duckdb_metadata_recipe_names_each_released_run(output):
    found = run_recipe("metadata-duckdb", output)
    runs = {
        Path(file).parent.name: (run_id, json.loads(configuration)) for file, run_id, configuration in found["runs"]
    }
    assert runs == {f"survey_year={year}": (name.split("-", 1)[1], knobs(year)) for year, (name, _) in RELEASED.items()}
    assert dict(found["descriptions"]) == DESCRIPTIONS["awards"]
