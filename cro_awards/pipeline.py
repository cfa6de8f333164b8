"""The pipeline: one survey year's configuration and export in; tables, quarantine, counts and reasons out.

This is the one place the stages are put together. The Prefect flow (`flows.awards`), the dry run
(`cro-awards check`), the tests and the benchmark all call `run_pipeline`; nobody else assembles stages.
No Prefect here: the flow passes `run_stage` (wrapping each stage in a Prefect task) and `on_rejected`
(writing the quarantine), and this module neither knows nor cares.

Stages, in order (`STAGES`): extract (read the file), stage (DuckDB staging), validate (Great
Expectations, then the quarantine table and the counts), then the stop for a CRO the run would drop quietly
(a spelling matching no name or alias in at least `min_evaluations` rows, not listed under `not_rated`:
`UnmatchedCroError`, before `on_rejected`, so nothing is written), then the rejected-share gate, then transform (the
awards' tables, over the countable cells only: `sql/int_rating_cells.sql`) and check (the output checks of
`sql/tests/`, then the disclosure audit of `cro_awards.disclosure` on exactly the tables to be published). The gate runs
right after validation, so a run bound to fail does no scoring; `on_rejected` is called before the gate,
so a failing run still leaves its quarantine for the user to inspect.

Contract: `run_pipeline(loaded, export_path, through="check")` returns a `PipelineResult`; with
`through="validate"` it stops after validation (no gate, no tables; the cells not counted: what `check`
reports). Raises
`ConfigError`/`ExportError` for bad input, `UnmatchedCroError` for a CRO lost to unknown_cro,
`RejectedShareError` at the gate, `OutputCheckError` (a bug)
when an output check fails, `DisclosureError` when the tables lack the structure that keeps every published
number off the cells that are not countable (a bug, never bad data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa

from cro_awards import disclosure, sql, transform, unmatched, validate
from cro_awards.checkpoints import checkpoint
from cro_awards.config import REASON_CODES, LoadedConfig
from cro_awards.errors import DisclosureError, OutputCheckError, RejectedShareError, UnmatchedCroError
from cro_awards.extract import Export, read_export

logger = logging.getLogger(__name__)

T = TypeVar("T")

STAGES = ("extract", "stage", "validate", "transform", "check")
"""The stages, in the order they run."""

IO_STAGES = frozenset({"extract"})
"""Stages that read files: the only ones worth retrying when they fail for a passing reason."""

StageRunner = Callable[..., Any]
"""`run_stage(name, function, *args)`: call `function(*args)` as stage `name` and return its result."""


def call_directly(name: str, function: Callable[..., T], *args: Any) -> T:  # noqa: ARG001 - the runner's signature
    """The default `run_stage`: just call it."""
    return function(*args)


@dataclass(frozen=True)
class Validation:
    """What validation decided: the reasons per row, the quarantine's rows and the counts."""

    reasons: pa.Table
    rejected: pa.Table
    counts: dict[str, int]
    quarantined_by_reason: dict[str, int]

    @property
    def rejected_share(self) -> float:
        return self.counts["quarantined"] / self.counts["read"] if self.counts["read"] else 0.0

    def rows_by_reason(self) -> dict[str, list[int]]:
        """Reason code -> the source rows quarantined for it, ascending, codes in the contract's order."""
        found: dict[str, set[int]] = {}
        for row, reason in zip(self.reasons["source_row"].to_pylist(), self.reasons["reason"].to_pylist(), strict=True):
            found.setdefault(reason, set()).add(row)
        return {code: sorted(found[code]) for code in REASON_CODES if code in found}


@dataclass(frozen=True)
class PipelineResult:
    """A run's outcome. `tables` is empty when the run stopped after validation."""

    export: Export
    validation: Validation
    tables: dict[str, pa.Table] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    not_counted: dict[str, dict[str, int]] = field(default_factory=dict)
    """segment -> {"cells", "ratings"} rated by fewer than min_cell_size respondents: counted nowhere (D6)."""
    contributions: pa.Table | None = None
    """Each accepted evaluation's counted attributes (`cro_awards.transform.Scored.contributions`): what a
    draft keeps privately for the differencing guard at release."""
    readings: pa.Table | None = None
    """The awards every reading would name (`cro_awards.transform.Scored.readings`): the report's
    sensitivity lines."""
    audit_seconds: float = 0.0
    """Seconds of the disclosure audit (within check): the benchmark reports it apart."""

    @property
    def counts(self) -> dict[str, int]:
        return self.validation.counts

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return self.validation.quarantined_by_reason


def gate_failure(validation: Validation, loaded: LoadedConfig, export_path: Path) -> str | None:
    """The rejected-share gate's verdict: None when the share is within `max_rejected_share`, else why not."""
    limit = loaded.survey.max_rejected_share
    if validation.rejected_share <= limit:
        return None
    counts = validation.counts
    return (
        f"{export_path}: {counts['quarantined']} of {counts['read']} evaluations were rejected "
        f"({validation.rejected_share:.1%}), more than max_rejected_share {limit:.1%}; nothing was published."
    )


def _stop_for_lost_cros(validation: Validation, loaded: LoadedConfig, export_path: Path) -> None:
    """`UnmatchedCroError` when a CRO spelling matching no name or alias has at least min_evaluations rows
    and `not_rated` does not list it (`unmatched.lost_cros`): the run would drop a CRO quietly."""
    lost = unmatched.lost_cros(unmatched.unmatched_spellings(validation.rejected, loaded.survey), loaded.survey)
    if lost:
        message = unmatched.unmatched_cro_message(lost, loaded.survey, loaded.path.name, str(export_path))
        raise UnmatchedCroError(message)


def _extract(loaded: LoadedConfig, export_path: Path) -> Export:
    exported = read_export(export_path, loaded)
    logger.info(
        "Read %s: %d rows (%d malformed), sha256 %s",
        export_path.name,
        exported.n_read,
        exported.malformed.num_rows,
        exported.sha256[:12],
    )
    if exported.renamed:
        logger.info("Renamed columns: %s", ", ".join(f"{k!r} -> {v}" for k, v in exported.renamed.items()))
    if exported.ignored_columns:
        logger.info("Ignored columns (not in the contract): %s", ", ".join(exported.ignored_columns))
    if exported.dropped_empty_columns:
        logger.info("Ignored %d trailing column(s) with no name and no value", exported.dropped_empty_columns)
    if exported.hidden_rows:
        logger.warning(
            "%d row(s) of the first sheet of %s are hidden in the spreadsheet; they are read and scored like the "
            "others (unhide them to see what is scored)",
            exported.hidden_rows,
            export_path.name,
        )
    for column, count in exported.formulas_without_saved_value.items():
        logger.warning(
            "%d cell(s) of column %r of %s hold formulas with no saved value and are read as blank: open the "
            "workbook in the spreadsheet program and save it",
            count,
            column,
            export_path.name,
        )
    return exported


def _stage(workspace: sql.Workspace, exported: Export, loaded: LoadedConfig) -> None:
    transform.stage(workspace, exported.table, exported.malformed, loaded.survey)
    logger.info("Staged %d rows in DuckDB", exported.table.num_rows)


def _validate(workspace: sql.Workspace, exported: Export, loaded: LoadedConfig, suites: validate.Suites) -> Validation:
    reasons = validate.rejection_reasons(
        workspace.connection, loaded.survey, exported.malformed["source_row"].to_pylist(), suites
    )
    rejected, counts = transform.quarantine(workspace, reasons, loaded.survey)
    by_reason = dict(
        sql.rows(
            workspace.connection,
            "select reason, count(*) from rejection_reasons group by reason, reason_order order by reason_order",
        )
    )
    described = ", ".join(f"{reason} {count}" for reason, count in by_reason.items())
    logger.info(
        "Validated with Great Expectations: read %d, accepted %d, quarantined %d (%s)",
        counts["read"],
        counts["accepted"],
        counts["quarantined"],
        described or "every row valid",
    )
    return Validation(reasons=reasons, rejected=rejected, counts=counts, quarantined_by_reason=by_reason)


def _score(workspace: sql.Workspace, loaded: LoadedConfig) -> transform.Scored:
    scored = transform.score(workspace, loaded.survey)
    logger.info("Scored in DuckDB: %s", ", ".join(f"{name} {t.num_rows} rows" for name, t in scored.tables.items()))
    logger.info(
        "Not counted (cells rated by fewer than min_cell_size = %d respondents): %s",
        loaded.survey.min_cell_size,
        "; ".join(
            f"{segment} {counts['cells']} cells, {counts['ratings']} ratings"
            for segment, counts in scored.not_counted.items()
        ),
    )
    return scored


def _check(workspace: sql.Workspace, loaded: LoadedConfig, tables: dict[str, pa.Table]) -> float:
    parameters = transform.method_parameters(loaded.survey)
    failed = workspace.failed_checks(parameters)
    if failed:
        raise OutputCheckError(
            "Output checks failed (a bug in the pipeline; nothing was published): " + "; ".join(failed)
        )
    logger.info("Output checks passed: keys unique, awards only for eligible CROs, read = accepted + quarantined")
    started = time.perf_counter()
    findings = disclosure.audit(tables, loaded.survey.category_rows(), parameters)
    seconds = time.perf_counter() - started
    if findings:
        for finding in findings:
            logger.error("Disclosure audit: %s", finding.describe())
        raise DisclosureError(disclosure.explain(findings, loaded.survey.min_cell_size))
    logger.info(
        "Disclosure audit passed in %.3f s: every published number rests on cells of at least %d ratings",
        seconds,
        loaded.survey.min_cell_size,
    )
    return seconds


def run_pipeline(
    loaded: LoadedConfig,
    export_path: str | Path,
    *,
    through: Literal["validate", "check"] = "check",
    run_stage: StageRunner = call_directly,
    on_rejected: Callable[[pa.Table], str] | None = None,
) -> PipelineResult:
    """Run the stages on `export_path` (module contract).

    `on_rejected(rejected_rows)` is called after validation, before the gate, and returns where the
    quarantine went (named in the gate's message). `through="validate"` stops after validation.
    """
    export_path = Path(export_path)
    timings: dict[str, float] = {}
    suites = validate.Suites.prepare()  # GX's import and set-up overlap extract and stage

    def timed(name: str, function: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        result = run_stage(name, function, *args)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        checkpoint(f"after_{name}")
        return result

    exported = timed("extract", _extract, loaded, export_path)
    with sql.Workspace.open() as workspace:
        timed("stage", _stage, workspace, exported, loaded)
        validation = timed("validate", _validate, workspace, exported, loaded, suites)
        if through == "validate":
            not_counted = transform.not_counted(workspace, loaded.survey)
            return PipelineResult(exported, validation, timings=timings, not_counted=not_counted)
        _stop_for_lost_cros(validation, loaded, export_path)  # before the quarantine: nothing written yet
        where = on_rejected(validation.rejected) if on_rejected else None
        failure = gate_failure(validation, loaded, export_path)
        if failure:
            advice = (
                f" Inspect the quarantine at {where}, fix the export, and run again."
                if where
                else (" Fix the export (run `cro-awards check` to see the reasons) and run again.")
            )
            raise RejectedShareError(failure + advice)
        scored = timed("transform", _score, workspace, loaded)
        audit_seconds = timed("check", _check, workspace, loaded, scored.tables)
    return PipelineResult(
        exported,
        validation,
        scored.tables,
        timings,
        scored.not_counted,
        scored.contributions,
        scored.readings,
        audit_seconds,
    )
