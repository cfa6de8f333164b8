"""The awards flow's Prefect tasks: each a thin wrapper over one function of the pure core.

Task results are never persisted or cached (they hold confidential ratings) and stay in process. Only
the tasks that read or write files are retried, and only for failures that may pass (a full disk, a
flaky mount): a bad export or configuration will not fix itself.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import Task, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.task_engine import TaskRunTimeoutError

from cro_awards.engine.errors import ConfigError, DisclosureError, ExportError
from cro_awards.publication import publish as publishing, releases
from cro_awards.reading.config import LoadedConfig, load_config
from cro_awards.record import manifest as manifests, summary as summaries
from cro_awards.run import pipeline

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


NEVER_PASSING = (ConfigError, ExportError, DisclosureError, NotADirectoryError, IsADirectoryError, PermissionError)
"""Errors a retry cannot mend: a bad export or configuration, the differencing guard's refusal, a file
where a folder should be (or the reverse), a folder the run may not write."""


def _worth_retrying(task, task_run, state) -> bool:  # noqa: ARG001 - Prefect's retry_condition_fn signature
    """I/O may fail for passing reasons (a full disk, a flaky mount); `NEVER_PASSING` errors will not, nor
    does a task that exceeded its timeout (CRO_AWARDS_TASK_TIMEOUT): retrying it would hold the year longer."""
    try:
        state.result()
    except (*NEVER_PASSING, TaskRunTimeoutError):
        return False
    except Exception:  # noqa: BLE001 - anything else (a full disk, a flaky mount) may pass
        return True
    return False


_IO = {**_TASK, "retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": _worth_retrying}


def _call(function, *args):
    return function(*args)


STAGE_TASKS: dict[str, Task] = {
    name: task(name=name, **(_IO if name in pipeline.IO_STAGES else _TASK))(_call) for name in pipeline.STAGES
}
"""One task per stage of `cro_awards.run.pipeline`, named after it."""


def timed(task_: Task, seconds: float | None) -> Task:
    """`task_` with a timeout of `seconds` (the run's CRO_AWARDS_TASK_TIMEOUT, read when the flow runs; a
    task's decorator cannot read settings at import). Only in the main thread, where Prefect's timeout can
    interrupt a blocking call: in a worker thread (the backfill's subflows) Prefect would log a warning on
    every task, and the flow's own timeout (`flows.awards.run_timeout`) bounds the run there."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        return task_
    return task_.with_options(timeout_seconds=seconds)


def stage_runner(seconds: float | None):
    """`cro_awards.run.pipeline.run_pipeline`'s `run_stage`: each stage as its Prefect task, timing out after
    `seconds` (`timed`)."""

    def run_timed_stage(name: str, function, *args):
        return timed(STAGE_TASKS[name], seconds)(function, *args)

    return run_timed_stage


@task(name="load-config", **_TASK)
def load_config_task(config: Path, overrides: dict[str, Any]) -> LoadedConfig:
    loaded = load_config(config, overrides)
    get_run_logger().info(
        "Survey %s: %d CROs, %d attributes in %d categories (config %s, overrides %s)",
        loaded.survey.survey_year,
        len(loaded.survey.cros),
        len(loaded.survey.attributes),
        len(loaded.survey.categories),
        summaries.printable(loaded.path.name),
        loaded.overrides or "none",
    )
    return loaded


@task(name="write-quarantine", **_IO)
def quarantine_task(rejected: pa.Table, quarantine: Path, survey_year: int, run_id: str) -> Path:
    path = publishing.write_quarantine(rejected, quarantine, survey_year, run_id)
    get_run_logger().info("Quarantine (%d rows) written to %s", rejected.num_rows, summaries.printable(path))
    return path


@task(name="release", **_IO)
def release_task(
    output: Path,
    quarantine: Path,
    store: Path,
    survey_year: int,
    run_id: str,
    released_by: str | None,
    keep: int,
    accept_difference: str | None = None,
) -> dict[str, Any]:
    """Release run `run_id`'s draft (`cro_awards.publication.releases.release`, the differencing guard included)."""
    done = releases.release(
        output,
        quarantine,
        survey_year,
        run_id,
        store=store,
        released_by=released_by,
        keep=keep,
        accept_difference=accept_difference,
    )
    releases.log_release(get_run_logger(), done, accept_difference)
    if not done.get("already"):
        announce_release(done)
    return done


RELEASE_EVENT = "cro-awards.release"
"""The Prefect event of every release made through Prefect (the awards flow's `release`, the release flow,
an embargo's scheduled run); its resource is `cro-awards.year.<year>`."""


def year_key(survey_year: int) -> str:
    """The year's awards artifact key, `cro-awards-<year>`: changed only by a release."""
    return f"cro-awards-{survey_year}"


def announce_release(done: dict[str, Any]) -> None:
    """What the UI shows of a release: the year's awards artifact (`cro-awards-<year>`, markdown, and
    `cro-awards-<year>-awards`, the table) rewritten with the released draft's awards, read from its tables,
    under a header saying the year, the run, who released it, when and what it replaced; and the event
    `cro-awards.release` (resource `cro-awards.year.<year>`, with the run id)."""
    year, run_id = done["survey_year"], str(done["run_id"])
    awards = manifests.awards_summary(Path(done["path"]), year)
    create_markdown_artifact(
        summaries.release_markdown(done, awards),
        key=year_key(year),
        description=f"The awards of survey year {year} as released: run {run_id}, by {done['released_by']}",
    )
    create_table_artifact(
        summaries.awards_table_rows(awards.awards),
        key=f"{year_key(year)}-awards",
        description=f"Awards table of survey year {year} as released (run {run_id})",
    )
    emit_event(
        event=RELEASE_EVENT,
        resource={
            "prefect.resource.id": f"cro-awards.year.{year}",
            "prefect.resource.name": f"cro-awards {year}",
            "cro-awards.run-id": run_id,
        },
        payload={
            "survey_year": year,
            "run_id": run_id,
            "released_by": done["released_by"],
            "released_at": done["released_at"],
            "previous_run_id": done["previous_run_id"],
        },
    )


@task(name="artifacts", **_TASK)
def artifacts_task(summary: summaries.RunSummary, diff_markdown: str) -> None:
    """The run's Prefect artifacts: the awards (markdown and table), the validation's counts, and the
    draft's difference from the release current when it was made (`cro_awards.publication.diff.render_markdown`).

    A run that only drafts (`summary.released` false) writes them titled DRAFT, under the draft keys
    `cro-awards-<year>-draft`, `-draft-awards`, `-draft-validation` and `-draft-diff`, naming its run id: the
    year's awards artifact `cro-awards-<year>` is changed only by a release (`announce_release`, which a
    released run's release task has already called), so a released run adds `-validation` and `-diff`.

    The markdown escapes every name and path (`cro_awards.record.summary.escape_markdown`, `code_span`): a CRO's
    name renders as text, never as a link, an image, HTML or a broken table. The table artifact holds the
    names as data (its cells are not markdown)."""
    year, run_id = summary.survey_year, summary.run_id
    if summary.released:
        key, what = year_key(year), f"run {run_id}, released"
    else:
        key, what = f"{year_key(year)}-draft", f"DRAFT of run {run_id}, not released"
        create_markdown_artifact(
            summaries.draft_awards_markdown(summary),
            key=key,
            description=f"DRAFT, not released: leaders and champions of run {run_id}, survey year {year}",
        )
        create_table_artifact(
            summaries.awards_table_rows(summary.awards),
            key=f"{key}-awards",
            description=f"DRAFT awards table of run {run_id}, survey year {year} (not released)",
        )
    create_markdown_artifact(
        summaries.validation_markdown(summary),
        key=f"{key}-validation",
        description=f"Rows read, accepted, quarantined; where outputs went ({year}, {what})",
    )
    create_markdown_artifact(
        diff_markdown,
        key=f"{key}-diff",
        description=f"The draft of run {run_id} against the release current when it was made, survey year {year}",
    )
