"""The released years of an output folder, and each CRO's composites across them.

`load_history(output, survey_year)` is the only I/O: it reads every year RELEASED in `output` before
`survey_year` (the links `<output>/survey_year=<year>` whose folder holds `_manifest.json`), each as a
`Release` with its manifest and its composite_scores (only the columns the history needs). Everything
else here is pure.

CROs across years (docs: the publication lifecycle, "CROs across years"): a CRO of the report's year
is followed into an older year under its own id, or, when it was renamed (`formerly: [old_id]`, exactly
one former id), under that former id. A CRO with several former ids is a merger: a new entity, with no
series before this year and never a change (`source_id` returns None for it). Former names are read
from the older year's `cro_name` column (its id when the column is absent).

Limit: renames are followed one step, through the report year's configuration; a CRO renamed twice
(a -> b -> c) has no series under `a` (the older year's configuration, which says b was a, is not in its
release).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cro_awards.engine.errors import PublishError
from cro_awards.record.manifest import MANIFEST, Manifest, read_manifest

COMPOSITES = "composite_scores.parquet"
COLUMNS = ("segment", "category", "cro", "composite", "cro_name")
"""The composite_scores columns a Release keeps (`cro_name` only where the release has it)."""

_YEAR_LINK = re.compile(r"survey_year=([0-9]{4})")


@dataclass(frozen=True)
class Release:
    """A released survey year: its run, its `_manifest.json` and its published composites."""

    survey_year: int
    run_id: str | None
    manifest: Manifest
    """(a mapping is read as a `Manifest`)"""
    composites: pa.Table

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifest", Manifest.of(self.manifest))


@dataclass(frozen=True)
class Point:
    """One year of a CRO's composite in one (segment, category).

    `composite` None: nothing published that year (too few evaluations, withheld for confidentiality,
    not rated, or the CRO did not exist): a gap, never a zero. `source_cro` and `name` are the id and
    display name the composite was published under that year (a former id's, before a rename)."""

    survey_year: int
    composite: float | None
    source_cro: str | None = None
    name: str | None = None


# --- I/O -----------------------------------------------------------------------------------------


def released_years(output: Path) -> list[int]:
    """The survey years released in `output`, ascending: links (or folders) `survey_year=<year>` whose
    target holds `_manifest.json`. Anything else at the top level (a dangling link, a stray file) is skipped."""
    if not output.is_dir():
        return []
    years = []
    for entry in output.iterdir():
        match = _YEAR_LINK.fullmatch(entry.name)
        if match and (entry / MANIFEST).is_file():
            years.append(int(match.group(1)))
    return sorted(years)


def load_release(output: Path, survey_year: int) -> Release:
    """The release of `survey_year` in `output`. The link is resolved once, so that the manifest and the
    table come from the same publication even if the year is released again meanwhile."""
    folder = (output / f"survey_year={survey_year}").resolve()
    table_path = folder / COMPOSITES
    try:
        manifest = read_manifest(folder)
        names = pq.read_schema(table_path).names
        composites = pq.read_table(table_path, columns=[name for name in COLUMNS if name in names])
    except (PublishError, OSError, ValueError, pa.ArrowException) as error:
        raise PublishError(
            f"the release of survey year {survey_year} ({folder}) cannot be read for the report's history: "
            f"{error}. Release an intact draft of {survey_year} again (cro-awards release {survey_year} <run_id>), "
            f"or remove the link {output / f'survey_year={survey_year}'} if that year should not count as released."
        ) from error
    missing = {"segment", "category", "cro", "composite"} - set(composites.column_names)
    if missing:
        raise PublishError(
            f"{table_path} (the release of survey year {survey_year}) lacks the column(s) "
            f"{', '.join(sorted(missing))}: it is not a composite_scores table. "
            f"Release an intact draft of {survey_year} again."
        )
    return Release(survey_year, manifest.run_id, manifest, composites)


def load_history(output: Path, survey_year: int) -> list[Release]:
    """Every year released in `output` before `survey_year` (itself and later years skipped), oldest first.
    Raises PublishError naming the folder when a release is there but cannot be read."""
    return [load_release(output, year) for year in released_years(output) if year < survey_year]


# --- pure ----------------------------------------------------------------------------------------


def cro_id(cro: Any) -> str:
    """A configured CRO's id (its name where the configuration has no ids yet)."""
    return getattr(cro, "id", None) or cro.name


def former_ids(cros: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """CRO id -> its former ids (`formerly`), for the CROs of the report's year that have any."""
    formerly = {}
    for cro in cros:
        former = tuple(getattr(cro, "formerly", ()) or ())
        if former:
            formerly[cro_id(cro)] = former
    return formerly


def is_merger(cro: str, formerly: Mapping[str, Sequence[str]]) -> bool:
    """Several former ids: a merger, shown as a new entity, never as a change."""
    return len(formerly.get(cro, ())) > 1


def source_id(cro: str, formerly: Mapping[str, Sequence[str]], present: Iterable[str]) -> str | None:
    """The id under which `cro` (an id of the report's year) was published in an older year whose ids are
    `present`: its own id if there, else its single former id (a rename); None for a merger."""
    former = tuple(formerly.get(cro, ()))
    if len(former) > 1:
        return None
    present = set(present)
    if cro in present or not former:
        return cro
    return former[0]


def _rows(table: pa.Table | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(table, pa.Table):
        return table.select([name for name in COLUMNS if name in table.column_names]).to_pylist()
    return [dict(row) for row in table]


def _value(row: Mapping[str, Any]) -> float | None:
    value = row.get("composite")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def release_names(history: Sequence[Release]) -> dict[str, str]:
    """id -> its display name in the most recent release that published it (`cro_name`, else the id)."""
    names: dict[str, str] = {}
    for release in sorted(history, key=lambda release: release.survey_year):
        for row in _rows(release.composites):
            names[row["cro"]] = row.get("cro_name") or row["cro"]
    return names


def composite_series(
    history: Sequence[Release],
    current: pa.Table | Iterable[Mapping[str, Any]],
    survey_year: int,
    formerly: Mapping[str, Sequence[str]] | None = None,
) -> dict[tuple[str, str, str], list[Point]]:
    """(segment, category, cro) -> its composite in every released year of `history` and in `survey_year`
    (the `current` composite_scores), oldest first, one Point per year (None where nothing was published).

    `cro` is the report year's id; older years are read through `source_id` (a rename continues its former
    id's series; a merger has only this year's point). Keys are the current table's (segment, category,
    cro) triples."""
    formerly = formerly or {}
    current_rows = _rows(current)
    keys = sorted({(row["segment"], row["category"], row["cro"]) for row in current_rows})
    releases = sorted(
        (release for release in history if release.survey_year < survey_year), key=lambda r: r.survey_year
    )
    past = []
    for release in releases:
        rows = _rows(release.composites)
        values = {(row["segment"], row["category"], row["cro"]): row for row in rows}
        past.append((release.survey_year, {row["cro"] for row in rows}, values))
    now = {(row["segment"], row["category"], row["cro"]): row for row in current_rows}

    series: dict[tuple[str, str, str], list[Point]] = {}
    for segment, category, cro in keys:
        points = []
        for year, present, values in [] if is_merger(cro, formerly) else past:
            source = source_id(cro, formerly, present)
            row = values.get((segment, category, source)) if source is not None else None
            if row is None or _value(row) is None:
                points.append(Point(year, None))
            else:
                points.append(Point(year, _value(row), source, row.get("cro_name") or source))
        row = now[(segment, category, cro)]
        points.append(Point(survey_year, _value(row), cro, row.get("cro_name") or cro))
        series[(segment, category, cro)] = points
    return series
