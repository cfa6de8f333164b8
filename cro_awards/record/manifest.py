"""What a run records about itself: the publication's manifest and the run's summary.

Contract: `Manifest` is `_manifest.json`, typed: its fields are the data contract's names (docs/contract.md,
"`_manifest.json`") and `to_json()` is the file's content, key for key and value for value.
`manifest(result, loaded, run_id, published_at)` builds it (the table files and documents are added by
`cro_awards.publication.publish`): the run, the export's name and SHA-256 (with the rows hidden in an .xlsx's first
sheet, which are scored, and the formula cells without a saved value, read as blank, per column), the
configuration's name, SHA-256, overrides and effective values (`effective_configuration`), the counts,
what the countable-cells rule left out (`not_counted`) and the code's and libraries' versions.
`read_manifest(folder)` is the one reader: every field is optional, so a manifest written before a field
existed reads with its default, and `to_json()` gives back exactly the keys it was read with.

`knob_changes(before, after)` is the one comparison of two runs' effective configurations (the diff, the
report's "knobs that differed", the differencing guard's refusal). `summary(...)` is the `RunSummary` the
flow returns and the command line prints (`cro_awards.record.summary.RunSummary`). Neither holds anything
respondent-level.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import cro_awards
from cro_awards.engine.errors import PublishError
from cro_awards.engine.settings import PROJECT_ROOT
from cro_awards.reading.knobs import KNOBS
from cro_awards.record.summary import AwardsSummary, RunSummary, cro_name, indistinct_cells

if TYPE_CHECKING:
    from cro_awards.reading.config import LoadedConfig
    from cro_awards.reading.extract import Export


class ScoredRun(Protocol):
    """What the record and the summary read of a run (`cro_awards.run.pipeline.PipelineResult` is one; the
    pipeline imports this module, so it is not named here)."""

    export: Export
    tables: dict[str, Any]
    not_counted: dict[str, dict[str, int]]
    audit_seconds: float

    @property
    def counts(self) -> dict[str, int]: ...

    @property
    def quarantined_by_reason(self) -> dict[str, int]: ...


MANIFEST = "_manifest.json"
"""A publication folder's manifest file."""

EFFECTIVE_KEYS = ("survey_close", "rating_scale", *KNOBS, "screens")
"""The configuration values a manifest records as the run used them (overrides applied); `screens` only
when the year configures a screen."""

LIBRARIES = ("prefect", "great-expectations", "duckdb", "pandas", "pyarrow", "openpyxl", "pydantic")


# --- the manifest ----------------------------------------------------------------------------------


class _Record(BaseModel):
    """A part of the manifest: keys it does not declare are kept (and written back) as read."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ExportRecord(_Record):
    file_name: str | None = None
    sha256: str | None = None
    hidden_rows: int = 0
    formulas_without_saved_value: dict[str, int] = Field(default_factory=dict)


class ConfigRecord(_Record):
    file_name: str | None = None
    sha256: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    effective: dict[str, Any] | None = None
    """The configuration values the run used, in `EFFECTIVE_KEYS` order; None: not recorded."""


class Counts(_Record):
    read: int | None = None
    accepted: int | None = None
    quarantined: int | None = None
    quarantined_by_reason: dict[str, int] = Field(default_factory=dict)


class TableFile(_Record):
    file: str
    rows: int


class Manifest(_Record):
    """A run's `_manifest.json` (module contract). Every field has a default: older manifests lack some."""

    run_id: str | None = None
    survey_year: int | None = None
    published_at: str | None = None
    export: ExportRecord = Field(default_factory=ExportRecord)
    config: ConfigRecord = Field(default_factory=ConfigRecord)
    counts: Counts = Field(default_factory=Counts)
    not_counted: Any = None
    """Per segment (`big_pharma`, `small_pharma`): `cells` and `ratings`; kept as read (the report shows
    it only when it has that shape)."""
    versions: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableFile] = Field(default_factory=dict)
    """Added by `cro_awards.publication.publish`: table name -> its file and rows."""
    documents: list[str] = Field(default_factory=list)
    """Added by `cro_awards.publication.publish`: the documents beside the tables."""

    @classmethod
    def of(cls, value: Manifest | Mapping[str, Any] | None) -> Manifest:
        """`value` as a Manifest (a mapping is validated: the JSON of a manifest; None: the empty one)."""
        if isinstance(value, Manifest):
            return value
        return cls.model_validate(dict(value or {}))

    def to_json(self) -> dict[str, Any]:
        """The file's content: the keys the manifest was made or read with, values as JSON."""
        return self.model_dump(mode="json", exclude_unset=True)

    def with_(self, **fields: Any) -> Manifest:
        """A copy with `fields` replaced (validated, and written by `to_json`)."""
        return Manifest.model_validate({**self.to_json(), **fields})

    @property
    def effective(self) -> dict[str, Any] | None:
        """The effective configuration (`config.effective`), or None when the manifest records none."""
        return self.config.effective

    @property
    def overrides(self) -> dict[str, Any]:
        return self.config.overrides

    def min_cell_size(self, default: int = 3) -> int:
        """The run's `min_cell_size` (its effective configuration), else `default`."""
        try:
            return int((self.effective or {})["min_cell_size"])
        except (KeyError, TypeError, ValueError):
            return default


class ManifestError(PublishError):
    """A publication folder's `_manifest.json` is missing or unreadable; `what` says which."""

    def __init__(self, folder: Path, what: str) -> None:
        super().__init__(f"{Path(folder) / MANIFEST} {what}")
        self.what = f"{MANIFEST} {what}"


def read_manifest(folder: Path, *, or_empty: bool = False) -> Manifest:
    """The `_manifest.json` of the publication folder `folder`. Missing or unreadable (not JSON, not an
    object, a field of the wrong type): `ManifestError`, or the empty Manifest with `or_empty`."""
    try:
        try:
            value = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(folder, "is missing") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ManifestError(folder, f"is unreadable ({error})") from None
        if not isinstance(value, dict):
            raise ManifestError(folder, "is unreadable (it is not a JSON object)")
        try:
            return Manifest.model_validate(value)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ManifestError(folder, f"is unreadable ({problems})") from None
    except ManifestError:
        if or_empty:
            return Manifest()
        raise


# --- comparing two runs' configurations ------------------------------------------------------------


@dataclass(frozen=True)
class KnobChange:
    """A knob's effective value before and after; None where that side's manifest does not record it."""

    knob: str
    before: Any
    after: Any


def knob_changes(before: Manifest, after: Manifest) -> list[KnobChange]:
    """Every configuration value that differs between two runs' effective configurations.

    One rule for every caller: a key recorded on one side only counts as a change (None on the other
    side; a manifest recording no configuration has every key missing); `survey_close` is compared only
    between runs both recording the same survey year: across years the close date differs by nature and
    says nothing of the method, within a year a moved close date changes which evaluations count. Order:
    `EFFECTIVE_KEYS`, then any other key by name. Equal values are no change (1 and 1.0 alike). Whether to
    show changes when a side records no configuration at all (`Manifest.effective` None) is the caller's."""
    old, new = before.effective or {}, after.effective or {}
    same_year = before.survey_year is not None and before.survey_year == after.survey_year
    keys = [key for key in EFFECTIVE_KEYS if key in old or key in new]
    keys += sorted((old.keys() | new.keys()) - set(EFFECTIVE_KEYS))
    return [
        KnobChange(key, old.get(key), new.get(key))
        for key in keys
        if (key != "survey_close" or same_year) and (key not in old or key not in new or old[key] != new[key])
    ]


# --- writing ---------------------------------------------------------------------------------------


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


def manifest(result: ScoredRun, loaded: LoadedConfig, run_id: str, published_at: str) -> Manifest:
    """See the module contract."""
    return Manifest(
        run_id=run_id,
        survey_year=loaded.survey.survey_year,
        published_at=published_at,
        export=ExportRecord(
            file_name=result.export.path.name,
            sha256=result.export.sha256,
            hidden_rows=result.export.hidden_rows,
            formulas_without_saved_value=dict(result.export.formulas_without_saved_value),
        ),
        config=ConfigRecord(
            file_name=loaded.path.name,
            sha256=loaded.sha256,
            overrides=loaded.overrides,
            effective=effective_configuration(loaded),
        ),
        counts=Counts(**result.counts, quarantined_by_reason=result.quarantined_by_reason),
        not_counted=result.not_counted,
        versions={"code": code_version(), **package_versions()},
    )


# --- the run's summary -----------------------------------------------------------------------------


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


def awards_summary(folder: Path, survey_year: int) -> AwardsSummary:
    """The awards part of a run's summary read back from a draft's or a release's tables in `folder`: what
    a release shows."""
    composites = pq.read_table(folder / "composite_scores.parquet")
    return AwardsSummary(
        survey_year=survey_year,
        awards=pq.read_table(folder / "awards.parquet").to_pylist(),
        co_leaders=co_leaders(composites),
        no_distinguishable_leader=_indistinct(composites),
    )


def summary(
    result: ScoredRun,
    loaded: LoadedConfig,
    run_id: str,
    *,
    published: Path,
    output: Path,
    quarantine: str,
    timings: dict[str, float],
    released: bool = False,
    diff: str = "",
) -> RunSummary:
    """The run's summary: counts, reasons, where things went, the awards, each stage's seconds, whether the
    draft was released and its difference from the current release."""
    return RunSummary(
        survey_year=loaded.survey.survey_year,
        run_id=run_id,
        export=str(result.export.path),
        export_sha256=result.export.sha256,
        counts=result.counts,
        quarantined_by_reason=result.quarantined_by_reason,
        published=str(published),
        output=str(output),
        quarantine=quarantine,
        awards=result.tables["awards"].to_pylist(),
        co_leaders=co_leaders(result.tables["composite_scores"]),
        no_distinguishable_leader=_indistinct(result.tables["composite_scores"]),
        timings=timings,
        not_counted=result.not_counted,
        disclosure_seconds={"audit": result.audit_seconds},
        released=released,
        diff=diff,
    )
