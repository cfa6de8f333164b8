"""The `cro-awards` Prefect flow: one survey year from export to a draft of its awards (and its release).

The flow runs `cro_awards.pipeline.run_pipeline` with each stage as a Prefect task (`tasks.awards`),
writes the run's own quarantine, renders the report (as released, and as a draft: DRAFT, the overrides,
the difference from the current release), writes the run's DRAFT, and records the run's artifacts. A
draft changes nothing readers see; with `release=True` the draft is released at once
(`cro_awards.releases`), otherwise the keep policy runs and the draft waits for `cro-awards release`. Its parameters
are the paths and one override per method knob of `cro_awards.knobs` (bounds and descriptions derived
from there, so the UI's Custom run form refuses an out-of-range value before a run starts).

One run per survey year at a time: under Prefect a global concurrency limit `cro-awards-year-<year>`
(1 slot, created on first use) queues a second run however it was started; outside Prefect's queue,
a file lock per year makes a second process fail fast (`cro_awards.locks`).
"""

import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.runtime import deployment, flow_run
from prefect.settings import PREFECT_API_URL
from pydantic import Field

from cro_awards import (
    diff as diffs,
    knobs,
    manifest as manifests,
    pipeline,
    publish as publishing,
    releases,
)
from cro_awards.checkpoints import checkpoint
from cro_awards.config import LoadedConfig
from cro_awards.errors import CroAwardsError, quiet_user_error_tracebacks
from cro_awards.locks import year_lock
from cro_awards.paths import confine
from cro_awards.settings import Settings, load_settings
from tasks.awards import (
    artifacts_task,
    draft_task,
    keep_policy_task,
    load_config_task,
    quarantine_task,
    release_task,
    render_report_task,
    run_stage,
)

quiet_user_error_tracebacks("prefect.flow_runs", "prefect.task_runs")


def forward_core_logs() -> None:
    """Send the pure core's log records (logger `cro_awards`) where Prefect sends its own: the console
    and, inside a run, the run's logs in the UI."""
    core, prefect_logger = logging.getLogger("cro_awards"), logging.getLogger("prefect")
    for handler in prefect_logger.handlers:
        if handler not in core.handlers:
            core.addHandler(handler)
    core.setLevel(logging.INFO)
    core.propagate = False


forward_core_logs()


def _run_name() -> str:
    parameters = flow_run.parameters or {}
    config = parameters.get("config")
    try:
        stem = Path(str(config)).stem if config else load_settings().default_config.stem
    except CroAwardsError:
        stem = "latest"
    return f"awards-{stem}-{uuid.uuid4().hex[:8]}"


LOCK_HOLDER = "cro-awards"
"""What the year's lock file under the output folder records as its holder: never a run id, which names a draft."""

YEAR_SLOT_LEASE_SECONDS = 60
"""A killed run's slot is freed when its lease lapses; a live run renews its lease."""


@contextlib.contextmanager
def year_slot(survey_year: int) -> Iterator[None]:
    """Hold the year's one-slot concurrency limit on a Prefect server, queueing any other run of the year.

    In ephemeral mode (no PREFECT_API_URL) each process has a private temporary server, so a limit there
    would queue nothing: the year's file lock alone keeps runs apart.
    """
    if not PREFECT_API_URL.value():
        yield
        return
    limit = f"cro-awards-year-{survey_year}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit, 1)
    with concurrency(limit, occupy=1, strict=True, lease_duration=YEAR_SLOT_LEASE_SECONDS):
        yield


def _locations(
    settings: Settings,
    config: str | None,
    export: str | None,
    output: str | None,
    quarantine: str | None,
    drafts: str | None = None,
) -> tuple[Path, Path | None, Path, Path, Path]:
    """(config, export, output, quarantine, drafts) with defaults; confined to their roots in deployment runs."""
    config_path, export_path = Path(config) if config else settings.default_config, Path(export) if export else None
    if deployment.id is not None:
        config_path = confine(config_path, [settings.surveys, settings.data_root], "config")
        export_path = confine(export_path, [settings.data_root], "export") if export_path else None
    return (config_path, export_path, *folders(settings, output, quarantine, drafts))


def folders(
    settings: Settings, output: str | None, quarantine: str | None, drafts: str | None = None
) -> tuple[Path, Path, Path]:
    """(output, quarantine, drafts) with the settings' defaults; confined to the data root in deployment runs."""
    output_path, quarantine_path, drafts_path = settings.folders(output, quarantine, drafts)
    if deployment.id is None:
        return output_path, quarantine_path, drafts_path
    return (
        confine(output_path, [settings.data_root], "output"),
        confine(quarantine_path, [settings.data_root], "quarantine"),
        confine(drafts_path, [settings.data_root], "drafts"),
    )


def open_store(output: Path, quarantine: Path, drafts: Path) -> tuple[Path, Path, Path]:
    """The three folders checked apart, the private store ready, and an output folder of the old layout
    moved over (`cro_awards.releases.prepare`; what was moved is logged)."""
    output, quarantine, drafts, moved = releases.prepare(output, quarantine, drafts)
    if moved:
        get_run_logger().warning(
            "Moved the drafts and logs of %s to the private store %s: %s", output, drafts, "; ".join(moved)
        )
    return output, quarantine, drafts


def _with_knob_parameters(function):
    """Give `function` (which takes `**overrides`) one optional parameter per method knob, bounded as the
    knob is, and an `Args:` line each in its docstring: what Prefect builds the Custom run form from."""
    signature = inspect.signature(function)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[knobs.annotation(name) | None, Field(**knobs.bounds(name))],
        )
        for name in knobs.KNOBS
    ]
    function.__signature__ = signature.replace(parameters=[*fixed, *added])
    lines = [
        f"        {name}: Override of the YAML: {knobs.description(name)} ({knobs.describe_bounds(name)})."
        for name in knobs.KNOBS
    ]
    function.__doc__ = function.__doc__.rstrip() + "\n" + "\n".join(lines) + "\n"
    return function


@flow(name="cro-awards", flow_run_name=_run_name, persist_result=False, log_prints=False, validate_parameters=False)
@_with_knob_parameters
def cro_awards_flow(
    config: str | None = None,
    export: str | None = None,
    output: str | None = None,
    quarantine: str | None = None,
    release: bool = False,
    drafts: str | None = None,
    accept_difference: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Score one survey year and write a draft of its awards (released at once only if `release`).

    Args:
        config: The survey year's YAML, e.g. surveys/2024.yaml; empty for the latest year in surveys/.
        export: The survey export (.csv, .xlsx or .parquet); empty for the YAML's sample_export.
        output: Folder of the published tables; empty for the default (data/output).
        quarantine: Folder of rejected evaluations, outside output; empty for the default (data/quarantine).
        release: Release the draft at once if the run succeeds (what readers see changes); off: a draft only,
            released later with the cro-awards/release deployment or `cro-awards release`.
        drafts: The private folder of drafts, the ledger and the release log, outside output; empty for the
            default (CRO_AWARDS_DRAFTS, else drafts beside output: data/drafts).
        accept_difference: With release: why releasing is right although the differencing guard finds rows
            that differ from an earlier release by fewer than min_cell_size evaluations (recorded in the release
            log); empty: such a release is refused.
    """
    settings = load_settings()
    config_path, export_path, output_path, quarantine_path, drafts_path = _locations(
        settings, config, export, output, quarantine, drafts
    )
    loaded = load_config_task(config_path, overrides)
    survey = loaded.survey
    output_path, quarantine_path = publishing.check_locations(output_path, quarantine_path)
    drafts_path = publishing.check_store(drafts_path, output_path, quarantine_path)
    if export_path is None and deployment.id is not None:  # a path from the YAML is confined like a parameter
        export_path = confine(loaded.export_path(None), [settings.data_root], f"{loaded.path.name}'s sample_export")
    export_path = loaded.export_path(export_path)
    run_id = str(flow_run.id or uuid.uuid4())
    with year_slot(survey.survey_year), year_lock(output_path, survey.survey_year, LOCK_HOLDER):
        output_path, quarantine_path, drafts_path = open_store(output_path, quarantine_path, drafts_path)
        summary, difference = _score_and_draft(
            loaded,
            export_path,
            (output_path, quarantine_path, drafts_path),
            run_id,
            settings.keep_publications,
            release,
            accept_difference,
        )
    artifacts_task(summary, diffs.render_markdown(difference))
    return summary


def _score_and_draft(
    loaded: LoadedConfig,
    export_path: Path,
    places: tuple[Path, Path, Path],
    run_id: str,
    keep: int,
    release: bool,
    accept_difference: str | None = None,
) -> tuple[dict[str, Any], diffs.Diff]:
    output_path, quarantine_path, drafts_path = places
    survey = loaded.survey
    written: dict[str, Any] = {}

    def write_quarantine(rejected) -> str:
        started = time.perf_counter()
        written["path"] = str(quarantine_task(rejected, quarantine_path, survey.survey_year, run_id))
        written["seconds"] = time.perf_counter() - started
        checkpoint("after_quarantine")
        return written["path"]

    result = pipeline.run_pipeline(loaded, export_path, run_stage=run_stage, on_rejected=write_quarantine)
    timings = {**result.timings, "quarantine": written["seconds"]}
    started = time.perf_counter()
    manifest = manifests.manifest(result, loaded, run_id, publishing.utc_now())
    current = releases.current_release(output_path, survey.survey_year)
    difference = diffs.compare(
        diffs.Publication(run_id, survey.survey_year, result.tables, manifest),
        diffs.load(current) if current else None,
    )
    documents = render_report_task(
        {**result.tables, "award_readings": result.readings}, manifest, loaded, output_path, difference
    )
    timings["report"] = time.perf_counter() - started
    checkpoint("after_report")
    started = time.perf_counter()
    folder = draft_task(result.tables, manifest, drafts_path, documents, result.contributions, output_path)
    released = None
    if release:
        released = release_task(
            output_path, quarantine_path, drafts_path, survey.survey_year, run_id, None, keep, accept_difference
        )
    else:
        keep_policy_task(output_path, quarantine_path, drafts_path, survey.survey_year, keep)
    timings["publish"] = time.perf_counter() - started
    checkpoint("after_publish")
    get_run_logger().info("Stage seconds: %s", ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    summary = manifests.summary(
        result,
        loaded,
        run_id,
        published=folder,
        output=publishing.year_folder(output_path, survey.survey_year),
        quarantine=written["path"],
        timings=timings,
    )
    summary["released"] = released is not None
    summary["diff"] = diffs.render_text(difference)
    return summary, difference


if __name__ == "__main__":
    cro_awards_flow()
