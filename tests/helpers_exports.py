"""Helpers for the extract and validate tests: a tiny survey year, tiny exports, and the rules run.

The survey (see `CONFIG_YAML`): 3 CROs with aliases, 3 attributes in 2 categories,
survey_close 2024-02-29, recency_months 18 (window 2022-08-29 .. 2024-02-29), scale 1..5.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HEADER = ("respondent_id", "rd_spend_musd", "cro", "last_engaged", "quality", "speed", "cost")
ATTRIBUTES = ("quality", "speed", "cost")

CONFIG_YAML = """\
survey_year: 2024
survey_close: 2024-02-29
recency_months: 18
rating_scale: {min: 1, max: 5}
min_evaluations: 3
min_cell_size: 3
cros:
  - {name: Northwind Clinical, aliases: [Northwind, NWC]}
  - {name: Aldercrest Research, aliases: [Aldercrest]}
  - {name: Bluefen Biometrics, aliases: [Bluefen]}
attributes:
  quality: Quality
  speed: Speed
  cost: Cost
categories:
  delivery: [quality, speed]
  value: [cost]
"""

GOOD = {
    "respondent_id": "R1",
    "rd_spend_musd": "1200",
    "cro": "Northwind Clinical",
    "last_engaged": "2023-06-01",
    "quality": "4",
    "speed": "3",
    "cost": "5",
}
"""A row with no reason; tests change one or two fields of it."""


def write_config(folder: Path, text: str = CONFIG_YAML, *, extra: str = "", name: str = "survey.yaml") -> Path:
    """The survey YAML in `folder` (with `extra` YAML lines appended); returns its path."""
    path = folder / name
    path.write_text(text + extra, encoding="utf-8")
    return path


def load(config_path: Path):
    from cro_awards.reading.config import load_config

    return load_config(config_path)


def row(**fields: str | None) -> dict[str, Any]:
    """`GOOD` with some fields replaced."""
    return {**GOOD, **fields}


def csv_text(rows: Iterable[dict[str, Any] | Sequence[Any]], header: Sequence[str] = HEADER) -> str:
    """CSV text (header first) of `rows`: dicts by header name, or lists taken as they are."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for item in rows:
        if isinstance(item, dict):
            writer.writerow(["" if item.get(name) is None else item[name] for name in header])
        else:
            writer.writerow(item)
    return out.getvalue()


def write_csv(path: Path, rows: Iterable[dict[str, Any] | Sequence[Any]], header: Sequence[str] = HEADER) -> Path:
    path.write_text(csv_text(rows, header), encoding="utf-8", newline="")
    return path


def write_xlsx(path: Path, rows: Iterable[Sequence[Any]], header: Sequence[Any] = HEADER) -> Path:
    """An .xlsx whose first sheet is `header` then `rows`; cells keep their Python types
    (str, int, float, date, datetime; a str starting with '=' is a formula, saved without a value)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for cells in rows:
        sheet.append(list(cells))
    workbook.save(path)
    return path


def set_saved_value(path: Path, cell: str, value: str, kind: str = "n") -> None:
    """Rewrite the saved value of `cell` (e.g. 'E2') of the first sheet, as Excel writes it: the XML text
    `value`, of type `kind` ("n" a number, "str" a formula's text result). A formula in the cell stays;
    this is how a formula gets the cached value openpyxl never writes."""
    import re

    with zipfile.ZipFile(path) as source:
        members = {info.filename: source.read(info.filename) for info in source.infolist()}
    name = "xl/worksheets/sheet1.xml"
    xml = members[name].decode("utf-8")
    match = re.search(rf'<c r="{cell}"[^>]*?(/>|>.*?</c>)', xml)
    assert match, f"no cell {cell} in {name}"
    formula = re.search(r"<f>.*?</f>", match.group(0))
    element = f'<c r="{cell}" t="{kind}">{formula.group(0) if formula else ""}<v>{value}</v></c>'
    members[name] = (xml[: match.start()] + element + xml[match.end() :]).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member, data in members.items():
            target.writestr(member, data)


def set_dimension(path: Path, ref: str) -> None:
    """Rewrite the first sheet's `<dimension ref=...>` (the used range the writer declares), as some
    applications write it wrongly (e.g. "A1" for a sheet that uses A1:G3)."""
    import re

    with zipfile.ZipFile(path) as source:
        members = {info.filename: source.read(info.filename) for info in source.infolist()}
    name = "xl/worksheets/sheet1.xml"
    xml, count = re.subn(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>', members[name].decode("utf-8"))
    assert count == 1, "no dimension element"
    members[name] = xml.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member, data in members.items():
            target.writestr(member, data)


def write_parquet(path: Path, columns: dict[str, Any]) -> Path:
    """A Parquet file from `columns` (name -> pyarrow array or Python list)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def run_rules(config_path: Path, export_path: Path) -> dict[int, list[str]]:
    """read_export, stage, rejection_reasons: each source_row's reasons, in the order listed.
    Rows without a reason are absent."""
    from cro_awards.run.pipeline import run_pipeline

    table = run_pipeline(load(config_path), export_path, through="validate").validation.reasons
    reasons: dict[int, list[str]] = {}
    for source_row, reason in zip(table["source_row"].to_pylist(), table["reason"].to_pylist(), strict=False):
        reasons.setdefault(source_row, []).append(reason)
    return reasons
