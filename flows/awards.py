"""The `cro-awards` Prefect flow: one survey year from export to a draft of its awards (and its release).

The flow runs `cro_awards.run.pipeline.run_pipeline(..., through="draft")` (the run's whole graph: scores,
checks, the report as released and as a draft, the run's DRAFT and, with `release=True`, its release;
otherwise the keep policy runs and the draft waits for `cro-awards release`) with each stage as a Prefect
task (`tasks.awards`) and the quarantine written by its own task, under the year's slot and lock; then
it records the run's artifacts (and, for a release, the year's awards artifact and event). A draft
changes nothing readers see. Its parameters
are the paths and one override per method knob of `cro_awards.reading.knobs` (bounds and descriptions derived
from there, so the UI's Custom run form refuses an out-of-range value before a run starts).

One run per survey year at a time: under Prefect a global concurrency limit `cro-awards-year-<year>`
(1 slot, created on first use) queues a second run however it was started (which logs the slot and who
holds it before it waits, and again when it has it); outside Prefect's queue, a file lock per year makes a
second process fail fast (`cro_awards.engine.locks`).

Timeouts (`run_timeout`): a run may take CRO_AWARDS_FLOW_TIMEOUT seconds (default 6 h), each of its tasks
CRO_AWARDS_TASK_TIMEOUT (2 h), read from the settings when the run starts (a decorator's `timeout_seconds`
would be read at import, where settings are never read). A run that exceeds either fails (state TimedOut,
`RunTimeoutError`, exit 12) and frees its year: the slot and the lock are released on the way out.

The flow run's name carries its run id: `awards-<year>-<first 8 of the run id>-draft` (or `-release`).
"""

import contextlib
import datetime as dt
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.runtime import deployment, flow_run
from prefect.settings import PREFECT_API_URL
from prefect.task_engine import TaskRunTimeoutError
from prefect.utilities.timeout import timeout as prefect_timeout
from prefect.variables import Variable
from pydantic import Field, WithJsonSchema

from cro_awards.engine.errors import CroAwardsError, RunTimeoutError, quiet_user_error_tracebacks
from cro_awards.engine.paths import confine
from cro_awards.engine.settings import Settings, load_settings
from cro_awards.publication import diff as diffs, publish as publishing, releases
from cro_awards.reading import knobs
from cro_awards.record.summary import RunSummary
from cro_awards.run import pipeline
from tasks.awards import announce_release, artifacts_task, load_config_task, quarantine_task, stage_runner, timed

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
    """`awards-<year>-<run id, first 8>-draft` (or `-release`): the run id is the flow run's id, so the UI's
    name, `cro-awards publications` and the drafts folder (`<made at>-<run id>`) agree."""
    parameters = flow_run.parameters or {}
    config = parameters.get("config")
    try:
        stem = Path(str(config)).stem if config else load_settings().default_config.stem
    except CroAwardsError:
        stem = "latest"
    run = str(flow_run.id or uuid.uuid4())[:8]
    return f"awards-{stem}-{run}-{'release' if parameters.get('release') else 'draft'}"


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
    limit = year_slot_name(survey_year)
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit, 1)
        held = client.read_global_concurrency_limit_by_name(limit).active_slots
        holder = _slot_holder(client, survey_year) if held else None
    waited = time.monotonic()
    if held:
        logger.info("Survey year %s: waiting for its slot %s, held by %s", survey_year, limit, holder)
    me = flow_run.id
    lease_holder = ConcurrencyLeaseHolder(type="flow_run", id=me) if me else None
    with concurrency(limit, occupy=1, strict=True, lease_duration=YEAR_SLOT_LEASE_SECONDS, holder=lease_holder):
        if held:
            logger.info("Survey year %s: got its slot %s after %.0f s", survey_year, limit, time.monotonic() - waited)
        _record_slot_holder(survey_year)
        yield


def year_slot_name(survey_year: int) -> str:
    return f"cro-awards-year-{survey_year}"


def _holder_variable(survey_year: int) -> str:
    """The Prefect variable naming the flow run that last took the year's slot (the server does not tell who
    holds a global concurrency slot)."""
    return f"cro_awards_year_{survey_year}_holder"


def _record_slot_holder(survey_year: int) -> None:
    """Name this run as the year's slot holder, for a run that waits for it (best effort: never fails a run)."""
    if flow_run.id is None:
        return
    record = {
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    try:
        Variable.set(_holder_variable(survey_year), record, overwrite=True)
    except Exception as error:  # noqa: BLE001 - a note for people, not part of the run
        get_run_logger().debug("Could not record the slot holder: %s", error)


def _slot_holder(client, survey_year: int) -> str:
    """Who holds the year's slot, as far as the last recorded holder tells: "flow run awards-2025-1a2b3c4d-draft
    (<id>, Running, since …, pid … on …)"; "an unknown run" when no record names a live run."""
    try:
        record = Variable.get(_holder_variable(survey_year))
        if not isinstance(record, dict) or "flow_run_id" not in record:
            return "an unknown run"
        state = client.read_flow_run(uuid.UUID(record["flow_run_id"])).state
        state_name = state.name if state else "no state"
        text = (
            f"flow run {record.get('flow_run_name')} ({record['flow_run_id']}, {state_name}, since "
            f"{record.get('since')}, pid {record.get('pid')} on {record.get('host')})"
        )
        if state is not None and state.is_final():
            text += (
                f"; that run has ended: its slot is freed when its lease lapses (at most {YEAR_SLOT_LEASE_SECONDS} s)"
            )
        return text
    except Exception:  # noqa: BLE001 - naming the holder is a courtesy; waiting goes on regardless
        return "an unknown run"


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
    moved over (`cro_awards.publication.releases.prepare`; what was moved is logged)."""
    output, quarantine, drafts, moved = releases.prepare(output, quarantine, drafts)
    if moved:
        get_run_logger().warning(
            "Moved the drafts and logs of %s to the private store %s: %s", output, drafts, "; ".join(moved)
        )
    return output, quarantine, drafts


_JSON_SCHEMA_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _bounds_schema(name: str) -> list[WithJsonSchema]:
    """A numeric knob's JSON schema with its bounds beside the `anyOf` (number or none), not inside its
    number branch: the UI validates a form value with every error (`/ui/schemas/validate`), and a bound
    inside a branch fails the whole `anyOf` ("-3 is not valid under any of the given schemas"), while a bound
    beside it is its own error, "-3 is less than the minimum of 1", under the knob's field (a bound ignores
    none). A choice keeps pydantic's schema (the form's list of values lives in its branch)."""
    if knobs.choices(name):
        return []
    kind = "integer" if knobs.python_type(name) is int else "number"
    bounds = {_JSON_SCHEMA_BOUNDS[key]: value for key, value in knobs.bounds(name).items()}
    return [WithJsonSchema({"anyOf": [{"type": kind}, {"type": "null"}], **bounds})]


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
            annotation=Annotated[knobs.annotation(name) | None, Field(**knobs.bounds(name)), *_bounds_schema(name)],
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
) -> RunSummary:
    """Score one survey year and write a draft of its awards (released at once only if `release`).

    Args:
        config: The survey year's YAML, e.g. surveys/2024.yaml; empty for the latest year in surveys/.
        export: The survey export (.csv, .xlsx or .parquet); empty for the YAML's sample_export.
        output: Folder of the published tables; empty for the default (data/output).
        quarantine: Folder of rejected evaluations, outside output; empty for the default (data/quarantine).
        release: Release the draft at once if the run succeeds (what readers see changes); off: a draft only,
            released later with the cro-awards-release/release deployment or `cro-awards release`.
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
    loaded = timed(load_config_task, settings.task_timeout)(config_path, overrides)
    survey = loaded.survey
    output_path, quarantine_path = publishing.check_locations(output_path, quarantine_path)
    drafts_path = publishing.check_store(drafts_path, output_path, quarantine_path)
    if export_path is None and deployment.id is not None:  # a path from the YAML is confined like a parameter
        export_path = confine(loaded.export_path(None), [settings.data_root], f"{loaded.path.name}'s sample_export")
    export_path = loaded.export_path(export_path)
    run_id = str(flow_run.id or uuid.uuid4())
    seconds = settings.task_timeout
    with run_timeout(settings, f"the run of survey year {survey.survey_year}"):
        with year_slot(survey.survey_year):
            result, summary = pipeline.draft_year(
                loaded,
                export_path,
                output_path,
                quarantine_path,
                drafts_path,
                run_id=run_id,
                release=release,
                accept_difference=accept_difference,
                keep=settings.keep_publications,
                lock_holder=LOCK_HOLDER,
                run_stage=stage_runner(seconds),
                write_quarantine=timed(quarantine_task, seconds),
            )
        if result.released is not None and not result.released.get("already"):
            announce_release(result.released)
        timed(artifacts_task, seconds)(summary, diffs.render_markdown(result.difference))
    return summary


class _RunTimedOut(TimeoutError):
    """Prefect's timeout scope, converted to `RunTimeoutError` by `run_timeout`."""


@contextlib.contextmanager
def run_timeout(settings: Settings, what: str) -> Iterator[None]:
    """Stop the run when it exceeds `settings.flow_timeout` seconds, or one of its tasks
    `settings.task_timeout`, with a `RunTimeoutError` (exit 12) naming the setting; Prefect marks the run
    TimedOut. Prefect's own timeout scope (an alarm in the main thread, else an exception sent to the
    thread) raises at the point the run has reached, so every `with` it is inside exits on the way out: the
    year's slot (`year_slot`) and lock (`year_lock`) are released, and a draft or a release stopped
    half-way is completed or cleared by the next run, as after a crash. A native call (a DuckDB query) is
    interrupted when it returns to Python."""
    started = time.monotonic()
    try:
        with prefect_timeout(seconds=settings.flow_timeout, timeout_exc_type=_RunTimedOut):
            yield
    except (_RunTimedOut, TaskRunTimeoutError) as error:
        # The run's own timeout, met while a task runs (every stage is one), reaches here as the task's
        # timeout: which one it was is told by the time the run has taken.
        if isinstance(error, TaskRunTimeoutError) and time.monotonic() - started < settings.flow_timeout:
            raise RunTimeoutError(
                f"{what}: a task took longer than CRO_AWARDS_TASK_TIMEOUT = {settings.task_timeout:g} s and was "
                f"stopped ({error}); its survey year is free again. Nothing was released unless the log says so "
                "(`cro-awards publications` shows what readers see). Run it again, or raise the setting if such a "
                "task really takes this long."
            ) from None
        raise RunTimeoutError(
            f"{what} took longer than CRO_AWARDS_FLOW_TIMEOUT = {settings.flow_timeout:g} s and was stopped; its "
            "survey year is free again. Nothing was released unless the log says so (`cro-awards publications` "
            "shows what readers see). Run it again, or raise the setting if such a run really takes this long."
        ) from None


if __name__ == "__main__":
    cro_awards_flow()
