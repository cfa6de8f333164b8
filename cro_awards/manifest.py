"""What a run records about itself: the publication's manifest and the run's summary.

Contract: `manifest(result, loaded, run_id, published_at)` is `_manifest.json`'s content (the table
files are added by `cro_awards.publish`): the run, the export's name and SHA-256 (with what reading it
noticed: the rows hidden in an .xlsx's first sheet, which are scored, and the formula cells without a
saved value, read as blank, per column), the configuration's name, SHA-256, overrides and effective
values (every method knob of `cro_awards.knobs`, with survey_close and rating_scale, and `screens`, the
respondent screens as configured, only when the year configures one: a year without screens records
exactly what it recorded before screens existed), the counts (`quarantined_by_reason`: rows per reason
code, the screens' codes included), what the countable-cells rule left out (`not_counted`: per segment,
the cells rated by fewer than min_cell_size respondents and their ratings, which count in no published
number) and the code's and libraries' versions. `summary(...)` is
what the flow returns and the command line prints. Neither holds anything respondent-level.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import cro_awards
from cro_awards.config import LoadedConfig
from cro_awards.knobs import KNOBS
from cro_awards.pipeline import PipelineResult
from cro_awards.settings import PROJECT_ROOT
from cro_awards.summary import cro_name, indistinct_cells

EFFECTIVE_KEYS = ("survey_close", "rating_scale", *KNOBS, "screens")
"""The configuration values a manifest records as the run used them (overrides applied); `screens` only
when the year configures a screen."""

LIBRARIES = ("prefect", "great-expectations", "duckdb", "pandas", "pyarrow", "openpyxl", "pydantic")


def code_version() -> str:
    """The package version, and the git commit when run from a checkout (`.dirty` if modified)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return cro_awards.__version__
    return f"{cro_awards.__version__}+g{commit}{'.dirty' if dirty else ''}"


def package_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **{n: importlib.metadata.version(n) for n in LIBRARIES}}


def effective_configuration(loaded: LoadedConfig) -> dict[str, Any]:
    """The configuration values the run used (overrides applied), in the order of EFFECTIVE_KEYS. `screens`
    holds the configured screens only (`{"straight_lining": {"min_ratings": 8}}`) and is left out when
    none is: a year without screens records what it did before they existed, so comparing it with an
    older release (the diff, the report's knobs that differ) finds no change. The Parquet files'
    `configuration` metadata is this same dict."""
    survey = loaded.survey
    values = survey.model_dump(mode="json", include=set(EFFECTIVE_KEYS) - {"screens"})
    effective = {key: values[key] for key in EFFECTIVE_KEYS if key != "screens"}
    if survey.screens.configured:
        effective["screens"] = survey.screens.model_dump(mode="json", exclude_none=True)
    return effective


def manifest(result: PipelineResult, loaded: LoadedConfig, run_id: str, published_at: str) -> dict[str, Any]:
    """See the module contract."""
    return {
        "run_id": run_id,
        "survey_year": loaded.survey.survey_year,
        "published_at": published_at,
        "export": {
            "file_name": result.export.path.name,
            "sha256": result.export.sha256,
            "hidden_rows": result.export.hidden_rows,
            "formulas_without_saved_value": dict(result.export.formulas_without_saved_value),
        },
        "config": {
            "file_name": loaded.path.name,
            "sha256": loaded.sha256,
            "overrides": loaded.overrides,
            "effective": effective_configuration(loaded),
        },
        "counts": {**result.counts, "quarantined_by_reason": result.quarantined_by_reason},
        "not_counted": result.not_counted,
        "versions": {"code": code_version(), **package_versions()},
    }


def co_leaders(composites: Any) -> dict[str, list[str]]:
    """ "segment/category" -> the names (`cro_name`, else the id) of the CROs that co-lead the cell without
    leading it (`is_co_leader`, not rank 1)."""
    found: dict[str, list[str]] = {}
    if "is_co_leader" not in composites.column_names:
        return found
    named = "cro_name" in composites.column_names
    columns = ["segment", "category", "cro", "rank", "is_co_leader", *(["cro_name"] if named else [])]
    for row in composites.select(columns).to_pylist():
        if row["is_co_leader"] and row["rank"] != 1:
            found.setdefault(f"{row['segment']}/{row['category']}", []).append(cro_name(row))
    return found


def _indistinct(composites: Any) -> dict[str, list[int]]:
    """ "segment/category" -> [co-leaders, eligible CROs] of the cells with no distinguishable leader."""
    if "is_co_leader" not in composites.column_names:
        return {}
    return indistinct_cells(composites.select(["segment", "category", "is_eligible", "is_co_leader"]).to_pylist())


def awards_summary(folder: Path, survey_year: int) -> dict[str, Any]:
    """The awards part of a run's summary (`summary`: awards, co-leaders, cells with no distinguishable
    leader) read back from a draft's or a release's tables in `folder`: what a release shows."""
    composites = pq.read_table(folder / "composite_scores.parquet")
    return {
        "survey_year": survey_year,
        "awards": pq.read_table(folder / "awards.parquet").to_pylist(),
        "co_leaders": co_leaders(composites),
        "no_distinguishable_leader": _indistinct(composites),
    }


def summary(
    result: PipelineResult,
    loaded: LoadedConfig,
    run_id: str,
    *,
    published: Path,
    output: Path,
    quarantine: str,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The run's summary: counts, reasons, where things went, the awards and each stage's seconds."""
    return {
        "survey_year": loaded.survey.survey_year,
        "run_id": run_id,
        "export": str(result.export.path),
        "export_sha256": result.export.sha256,
        "counts": result.counts,
        "quarantined_by_reason": result.quarantined_by_reason,
        "published": str(published),
        "output": str(output),
        "quarantine": quarantine,
        "awards": result.tables["awards"].to_pylist(),
        "co_leaders": co_leaders(result.tables["composite_scores"]),
        "no_distinguishable_leader": _indistinct(result.tables["composite_scores"]),
        "timings": timings,
        "not_counted": result.not_counted,
        "disclosure_seconds": {"audit": result.audit_seconds},
    }
