"""The pipeline: one survey year's configuration and export in; tables, quarantine, counts and reasons out.

The run is one declared graph (`cro_awards.engine.graph`): the models of `sql/` and the Python nodes registered
here (`nodes(survey)`: one list, each node defined beside its logic), run stage by stage (`STAGE_TARGETS`).
The Prefect flow (`flows.awards`), the dry run (`cro-awards check`), `cro-awards run --local`, the tests
and the benchmark all call `run_pipeline`; nobody else assembles steps. No Prefect here: the flow passes
`run_stage` (wrapping each stage in a Prefect task) and `on_rejected` (writing the quarantine).

Stages, in order (`graph.STAGES`): extract (read the file), stage (the sources and the staging models
validation reads), validate (Great Expectations' verdicts, the quarantine's rows and the counts, the
cells not counted), transform (first the admission: the stop for a CRO the run would drop quietly,
`UnmatchedCroError`, before `on_rejected`, so nothing is written; then `on_rejected`; then the
rejected-share gate; then the awards' tables over the countable cells only), check (the output checks
of `sql/tests/`, then the disclosure audit of `cro_awards.disclosure.audit` on exactly the tables to be
published). A run bound to fail at the gate does no scoring; `on_rejected` is called before the gate,
so a failing run still leaves its quarantine for the user to inspect.

Contract: `run_pipeline(loaded, export_path, through="check")` returns a `PipelineResult`; with
`through="validate"` it stops after validation (no gate, no tables; the cells not counted: what `check`
reports). Raises `ConfigError`/`ExportError` for bad input, `UnmatchedCroError` for a CRO lost to
unknown_cro, `RejectedShareError` at the gate, `OutputCheckError` (a bug) when an output check fails,
`DisclosureError` when the tables lack the structure that keeps every published number off the cells
that are not countable (a bug, never bad data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa

from cro_awards.disclosure import audit as disclosure
from cro_awards.engine import graph as graph_module, sql
from cro_awards.engine.checkpoints import CHECKPOINTS, checkpoint
from cro_awards.engine.errors import DisclosureError, OutputCheckError, RejectedShareError, UnmatchedCroError
from cro_awards.engine.graph import Graph, Node, Run, Scope, Workspace, step
from cro_awards.engine.locks import year_lock
from cro_awards.method import transform, validate
from cro_awards.method.transform import Validation
from cro_awards.publication import columns, diff as diffs, history as histories, publish as publishing, releases
from cro_awards.reading import unmatched
from cro_awards.reading.config import LoadedConfig, SurveyConfig
from cro_awards.reading.extract import Export, read_export
from cro_awards.record import manifest as manifests
from cro_awards.record.manifest import Manifest
from cro_awards.record.summary import RunSummary
from cro_awards.report import html as reporting

logger = logging.getLogger(__name__)

T = TypeVar("T")

STAGES = graph_module.STAGES
"""The stages `run_pipeline` runs, in order."""

IO_STAGES = frozenset({"extract", "draft"})
"""Stages that read or write files: the only ones worth retrying when they fail for a passing reason."""

StageRunner = Callable[..., Any]
"""`run_stage(name, function, *args)`: call `function(*args)` as stage `name` and return its result."""


def call_directly(name: str, function: Callable[..., T], *args: Any) -> T:  # noqa: ARG001 - the runner's signature
    """The default `run_stage`: just call it."""
    return function(*args)


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
    """Each accepted evaluation's counted attributes (`cro_awards.method.transform.contributions`): what a draft
    keeps privately for the differencing guard at release."""
    readings: pa.Table | None = None
    """The awards every reading would name (`int_award_readings`): the report's sensitivity lines."""
    node_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds of every node of the graph that ran (`graph.Run.seconds`)."""
    manifest: Manifest | None = None
    """Through the draft: the run's record (manifest.json)."""
    difference: diffs.Diff | None = None
    """Through the draft: the draft against the release current when it was made."""
    draft: Path | None = None
    """Through the draft: the draft's folder in the private store."""
    released: dict[str, Any] | None = None
    """Through the draft, when released at once: what `releases.release` did (None for a draft only)."""

    @property
    def counts(self) -> dict[str, int]:
        return self.validation.counts

    @property
    def audit_seconds(self) -> float:
        """Seconds of the disclosure audit (within check): the benchmark reports it apart."""
        return self.node_seconds.get("audit", 0.0)

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


@step(reads=("config", "export_path"), writes=("export",))
def extract(scope: Scope) -> dict[str, Any]:
    """Read the export (`cro_awards.reading.extract.read_export`) and log what was read, renamed and ignored."""
    export_path = scope.value("export_path")
    exported = read_export(export_path, scope.value("config"))
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
    return {"export": exported}


@step(reads=("config", "export_path", "validation", "on_rejected"), writes=("admitted", "quarantine_path"))
def admission(scope: Scope) -> dict[str, Any]:
    """Whether the run may score: the stop for a CRO it would drop quietly (before the quarantine is
    written: nothing written yet), then `on_rejected` (the quarantine), then the rejected-share gate."""
    loaded, export_path, validation = scope.value("config"), scope.value("export_path"), scope.value("validation")
    _stop_for_lost_cros(validation, loaded, export_path)
    on_rejected = scope.value("on_rejected")
    where = on_rejected(validation.rejected) if on_rejected else None
    failure = gate_failure(validation, loaded, export_path)
    if failure:
        advice = (
            f" Inspect the quarantine at {where}, fix the export, and run again."
            if where
            else " Fix the export (run `cro-awards check` to see the reasons) and run again."
        )
        raise RejectedShareError(failure + advice)
    return {"admitted": True, "quarantine_path": where}


def output_checks_node() -> Node:
    """The node of the output checks of `sql/tests/` and the published tables' keys (it reads what those
    files read): `OutputCheckError` (a bug) if any fails."""

    @step(reads=sql.checks_read(), writes=("checked",))
    def output_checks(scope: Scope) -> dict[str, Any]:
        failed = scope.failed_checks()
        if failed:
            raise OutputCheckError(
                "Output checks failed (a bug in the pipeline; nothing was published): " + "; ".join(failed)
            )
        logger.info("Output checks passed: keys unique, awards only for eligible CROs, read = accepted + quarantined")
        return {"checked": True}

    return output_checks


@step(reads=("config", "tables"), writes=("audited",))
def audit(scope: Scope) -> dict[str, Any]:
    """The disclosure audit (`cro_awards.disclosure.audit.audit`) on exactly the tables to be published."""
    loaded = scope.value("config")
    findings = disclosure.audit(scope.value("tables"), loaded.survey.category_rows(), scope.parameters)
    if findings:
        for finding in findings:
            logger.error("Disclosure audit: %s", finding.describe())
        raise DisclosureError(disclosure.explain(findings, loaded.survey.min_cell_size))
    logger.info(
        "Disclosure audit passed: every published number rests on cells of at least %d ratings",
        loaded.survey.min_cell_size,
    )
    return {"audited": True}


@dataclass(frozen=True)
class DraftRequest:
    """What a run that drafts needs beyond scoring: its id, where things go, and whether to release."""

    run_id: str
    output: Path
    quarantine: Path
    drafts: Path
    keep: int = 2
    release: bool = False
    accept_difference: str | None = None


@step(reads=("config", "request", "export", "validation", "not_counted", "checked", "audited"), writes=("manifest",))
def record(scope: Scope) -> dict[str, Any]:
    """The run's record (`cro_awards.record.manifest.manifest`), once every check has passed."""
    if not (scope.value("checked") and scope.value("audited")):
        raise RuntimeError("the record was asked for before the output checks and the audit passed (a bug)")
    scored = PipelineResult(scope.value("export"), scope.value("validation"), not_counted=scope.value("not_counted"))
    run_id = scope.value("request").run_id
    return {"manifest": manifests.manifest(scored, scope.value("config"), run_id, publishing.utc_now())}


@step(reads=("config", "request", "manifest", "tables"), writes=("difference",))
def difference(scope: Scope) -> dict[str, Any]:
    """The draft against the year's current release (`cro_awards.publication.diff.compare`; None: no release yet)."""
    request, year = scope.value("request"), scope.value("config").survey.survey_year
    current = releases.current_release(request.output, year)
    snapshot = diffs.Snapshot(request.run_id, year, scope.value("tables"), scope.value("manifest"))
    return {"difference": diffs.compare(snapshot, diffs.load(current) if current else None)}


@step(reads=("config", "request", "manifest", "tables", "readings", "difference"), writes=("documents",))
def documents(scope: Scope) -> dict[str, Any]:
    """The run's reports, file name -> HTML: `report.html` (as it reads once released) and
    `draft_report.html` (DRAFT, the overrides, the difference), both with the history of every year
    released in the output folder before this one."""
    loaded, request = scope.value("config"), scope.value("request")
    tables = {**scope.value("tables"), "award_readings": scope.value("readings")}
    manifest = scope.value("manifest")
    history = histories.load_history(request.output, loaded.survey.survey_year)
    rendered = {
        "report.html": reporting.render_report(tables, manifest, loaded.survey, history=history),
        "draft_report.html": reporting.render_report(
            tables, manifest, loaded.survey, history=history, draft=scope.value("difference")
        ),
    }
    logger.info(
        "Rendered %s (%d KB)%s",
        " and ".join(rendered),
        len(rendered["report.html"]) // 1024,
        f", with the history of {', '.join(str(r.survey_year) for r in history)}" if history else "",
    )
    checkpoint("after_report")
    return {"documents": rendered}


@step(reads=("request", "manifest", "tables", "documents", "contributions"), writes=("draft",))
def draft(scope: Scope) -> dict[str, Any]:
    """Write the run's draft in the private store (`cro_awards.publication.publish.write_draft`), each table
    self-described (`cro_awards.publication.columns.describe`), with its contributions for the differencing guard."""
    request, manifest = scope.value("request"), scope.value("manifest")
    described = {
        name: columns.describe(
            name, table, survey_year=manifest.survey_year, run_id=manifest.run_id, configuration=manifest.effective
        )
        for name, table in scope.value("tables").items()
    }
    folder = publishing.write_draft(
        described,
        manifest,
        request.drafts,
        scope.value("documents"),
        scope.value("contributions"),
        output=request.output,
    )
    logger.info("Draft of survey year %s written to %s", manifest.survey_year, folder)
    return {"draft": folder}


@step(reads=("config", "request", "draft"), writes=("released",))
def publication(scope: Scope) -> dict[str, Any]:
    """Release the draft at once if the request says so (`cro_awards.publication.releases.release`, the differencing
    guard included); otherwise the keep policy (`releases.collect_garbage`). What the release did, or None."""
    request, year, folder = scope.value("request"), scope.value("config").survey.survey_year, scope.value("draft")
    done = None
    if request.release:
        logger.info("Releasing the draft %s", folder.name)
        done = releases.release(
            request.output,
            request.quarantine,
            year,
            request.run_id,
            store=request.drafts,
            released_by=None,
            keep=request.keep,
            accept_difference=request.accept_difference,
        )
        releases.log_release(logger, done, request.accept_difference)
    else:
        removed = releases.collect_garbage(request.output, request.quarantine, request.drafts, year, request.keep)
        if removed:
            logger.info("Keep policy: removed %d old draft(s) and quarantine(s)", len(removed))
    checkpoint("after_publish")
    return {"released": done}


INPUTS = ("config", "export_path", "suites", "on_rejected", "request")
"""The values a run starts with: the loaded configuration, the export's path, the prepared Great
Expectations suites (`validate.Suites`), the quarantine writer (or None) and, for a run through the draft,
its `DraftRequest` (else None)."""


def nodes(survey: SurveyConfig) -> list[Node]:
    """The Python nodes of a run of `survey`, the one registration of every step (the models of `sql/`
    join them in `graph.Graph`). A respondent screen's nodes are there only when the YAML configures it."""
    screens = [judge for screen, (judge, _) in validate.SCREEN_NODES.items() if getattr(survey.screens, screen)]
    return [
        extract,
        transform.stage_node(survey),
        validate.judge_evaluations,
        validate.judge_rating_values,
        *screens,
        validate.reasons_node(survey),
        transform.judged,
        transform.not_counted,
        admission,
        transform.resample,
        transform.published,
        transform.readings,
        transform.contributions,
        output_checks_node(),
        audit,
        record,
        difference,
        documents,
        draft,
        publication,
    ]


TARGETS = {
    "extract": ("export",),
    "validate": ("validation", "not_counted"),
    "transform": ("admitted", "tables", "readings", "contributions"),
    "check": ("checked", "audited"),
    "draft": ("released",),
}
"""Each stage's targets, in order. The stage stage's are derived (`build_graph`): the relations the judging
nodes read that need no verdict (the staging Great Expectations judges)."""


def build_graph(survey: SurveyConfig) -> Graph:
    """The declared graph of a run of `survey`, with its stages' targets (`TARGETS`)."""
    steps = nodes(survey)
    draft = Graph(steps, INPUTS, TARGETS)
    judges = {node.name for node in steps if node.name.startswith("judge_")}
    read = sorted({name for node in steps if node.name in judges for name in node.reads if name in draft.writer})
    staged = tuple(name for name in read if not judges & draft.needs(name))
    return Graph(steps, INPUTS, {"extract": TARGETS["extract"], "stage": staged, **TARGETS})


def run_pipeline(
    loaded: LoadedConfig,
    export_path: str | Path,
    *,
    through: Literal["validate", "check", "draft"] = "check",
    run_stage: StageRunner = call_directly,
    on_rejected: Callable[[pa.Table], str] | None = None,
    request: DraftRequest | None = None,
) -> PipelineResult:
    """Run the stages on `export_path` (module contract).

    `on_rejected(rejected_rows)` is called after validation, before the gate, and returns where the
    quarantine went (named in the gate's message). `through="validate"` stops after validation;
    `through="draft"` (which needs `request`) also writes the run's draft and, if asked, releases it.
    The draft stage runs after the workspace is closed: it reads only the Arrow tables.
    """
    if (through == "draft") != (request is not None):
        raise ValueError("a DraftRequest is given exactly when running through the draft")
    export_path = Path(export_path)
    graph = build_graph(loaded.survey)
    suites = validate.Suites.prepare()  # GX's import and set-up overlap extract and stage
    timings: dict[str, float] = {}
    stages = STAGES[: STAGES.index(through) + 1]

    def run_one(run: Run, stage: str) -> None:
        started = time.perf_counter()
        run_stage(stage, graph.execute_stage, run, stage)
        timings[stage] = time.perf_counter() - started
        if f"after_{stage}" in CHECKPOINTS:
            checkpoint(f"after_{stage}")

    with Workspace.open() as workspace:
        run = Run(workspace, transform.method_parameters(loaded.survey))
        run.values.update(
            config=loaded, export_path=export_path, suites=suites, on_rejected=on_rejected, request=request
        )
        for stage in stages:
            if stage != "draft":
                run_one(run, stage)
    if "draft" in stages:
        run_one(run, "draft")
    if "tables" in run.values:
        logger.info("Scored: %s", ", ".join(f"{name} {t.num_rows} rows" for name, t in run.values["tables"].items()))
    values = run.values
    return PipelineResult(
        export=values["export"],
        validation=values["validation"],
        tables=values.get("tables", {}),
        timings=timings,
        not_counted=values["not_counted"],
        contributions=values.get("contributions"),
        readings=values.get("readings"),
        node_seconds=dict(run.seconds),
        manifest=values.get("manifest"),
        difference=values.get("difference"),
        draft=values.get("draft"),
        released=values.get("released"),
    )


def draft_year(
    loaded: LoadedConfig,
    export_path: Path,
    output: Path,
    quarantine: Path,
    drafts: Path,
    *,
    run_id: str,
    release: bool = False,
    accept_difference: str | None = None,
    keep: int = 2,
    lock_holder: str = "cro-awards",
    run_stage: StageRunner = call_directly,
    write_quarantine: Callable[[pa.Table, Path, int, str], Path] | None = None,
) -> tuple[PipelineResult, RunSummary]:
    """A survey year from export to draft (and, with `release`, its release), and the run's summary: the
    folders checked, the year's lock taken (`cro_awards.engine.locks.year_lock`), the private store prepared (an
    output folder of the old layout moved over), the pipeline run through the draft with the quarantine
    written by `write_quarantine` (default `publish.write_quarantine`). What the Prefect flow runs under
    its slot and timeout, with each stage a task; what `cro-awards run --local` runs as it is."""
    output, quarantine = publishing.check_locations(output, quarantine)
    drafts = publishing.check_store(drafts, output, quarantine)
    year = loaded.survey.survey_year
    written: dict[str, Any] = {}

    def on_rejected(rejected: pa.Table) -> str:
        started = time.perf_counter()
        path = (write_quarantine or publishing.write_quarantine)(rejected, quarantine, year, run_id)
        written.update(path=str(path), seconds=time.perf_counter() - started)
        checkpoint("after_quarantine")
        return written["path"]

    with year_lock(output, year, lock_holder):
        output, quarantine, drafts, moved = releases.prepare(output, quarantine, drafts)
        if moved:
            logger.warning(
                "Moved the drafts and logs of %s to the private store %s: %s",
                output,
                drafts,
                "; ".join(moved),
            )
        request = DraftRequest(run_id, output, quarantine, drafts, keep, release, accept_difference)
        result = run_pipeline(
            loaded, export_path, through="draft", run_stage=run_stage, on_rejected=on_rejected, request=request
        )
    timings = {**result.timings, "quarantine": written["seconds"]}
    logger.info("Stage seconds: %s", ", ".join(f"{name} {seconds:.2f}" for name, seconds in timings.items()))
    summary = manifests.summary(
        result,
        loaded,
        run_id,
        published=result.draft,
        output=publishing.year_folder(output, year),
        quarantine=written["path"],
        timings=timings,
        released=result.released is not None,
        diff=diffs.render_text(result.difference),
    )
    return result, summary
