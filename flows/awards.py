"""The `cro-awards` Prefect flow: one survey year from export to published awards.

Stages, one task each: load the configuration, extract, stage, validate, transform, check, write the
quarantine, publish, report (artifacts). Tasks that read or write files are thin and the only ones
retried; what decides a number lives in `tasks.transform` (SQL) and `tasks.validate` (expectations)
and runs without Prefect. Task results are never persisted or cached (they hold confidential
ratings) and stay in process.

One run per survey year at a time: under Prefect a global concurrency limit `cro-awards-year-<year>`
(1 slot, created on first use) queues a second run however it was started; outside Prefect's queue,
a file lock per year makes a second process fail fast (`cro_awards.locks`).
"""


import contextlib
import importlib.metadata
import platform
import subprocess
import time
import uuid
from pathlib import Path
from collections.abc import Iterator
from typing import Annotated, Any

import duckdb
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.runtime import deployment, flow_run
from prefect.settings import PREFECT_API_URL
from pydantic import Field

import cro_awards
from cro_awards.config import LoadedConfig, load_config
from cro_awards.errors import ConfigError, ExportError, RejectedShareError, quiet_user_error_tracebacks
from cro_awards.faults import kill_point
from cro_awards.locks import year_lock
from cro_awards.paths import confine
from cro_awards.settings import PROJECT_ROOT, Settings, load_settings
from tasks import checks, publish as publishing, report as reporting, sql, summary as summaries, transform, validate
from tasks.extract import Export, read_export

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}
_EFFECTIVE_KEYS = (
    "survey_close", "recency_months", "rating_scale", "big_pharma_min_rd_spend_musd", "min_evaluations",
    "min_cros_for_awards", "champion_sd_multiplier", "min_cell_size", "max_rejected_share",
)

quiet_user_error_tracebacks("prefect.flow_runs", "prefect.task_runs")


def _worth_retrying(task, task_run, state) -> bool:
    """I/O may fail for passing reasons; a bad export or configuration will not fix itself."""
    try:
        state.result()
    except (ConfigError, ExportError):
        return False
    except Exception:  # noqa: BLE001 - anything else (a full disk, a flaky mount) may pass
        return True
    return False


_IO = {**_TASK, "retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": _worth_retrying}


@task(name="load-config", **_TASK)
def load_config_task(config: Path, overrides: dict[str, Any]) -> LoadedConfig:
    loaded = load_config(config, overrides)
    get_run_logger().info(
        "Survey %s: %d CROs, %d attributes in %d categories (config %s, overrides %s)",
        loaded.survey.survey_year, len(loaded.survey.cros), len(loaded.survey.attributes),
        len(loaded.survey.categories), loaded.path.name, loaded.overrides or "none",
    )
    return loaded


@task(name="extract", **_IO)
def extract_task(export: Path, config: LoadedConfig) -> Export:
    exported = read_export(export, config)
    logger = get_run_logger()
    logger.info("Read %s: %d rows (%d malformed), sha256 %s", export.name, exported.n_read,
                exported.malformed.num_rows, exported.sha256[:12])
    if exported.renamed:
        logger.info("Renamed columns: %s", ", ".join(f"{k!r} -> {v}" for k, v in exported.renamed.items()))
    if exported.ignored_columns:
        logger.info("Ignored columns (not in the contract): %s", ", ".join(exported.ignored_columns))
    return exported


@task(name="stage", **_TASK)
def stage_task(exported: Export, config: LoadedConfig) -> duckdb.DuckDBPyConnection:
    workspace = transform.open_workspace()
    transform.stage(workspace, exported.table, exported.malformed, config.survey)
    get_run_logger().info("Staged %d rows in DuckDB", exported.table.num_rows)
    return workspace


@task(name="validate", **_TASK)
def validate_task(workspace: duckdb.DuckDBPyConnection, config: LoadedConfig, exported: Export) -> pa.Table:
    reasons = validate.rejection_reasons(workspace, config.survey, exported.malformed["source_row"].to_pylist())
    by_reason = reasons.group_by("reason").aggregate([([], "count_all")]).to_pylist()
    described = ", ".join(f"{row['reason']} {row['count_all']}" for row in sorted(by_reason, key=lambda r: r["reason"]))
    get_run_logger().info("Validated with Great Expectations: %s", described or "every row valid")
    return reasons


@task(name="transform", **_TASK)
def transform_task(workspace: duckdb.DuckDBPyConnection, config: LoadedConfig, reasons: pa.Table) -> dict[str, pa.Table]:
    transform.transform(workspace, config.survey, reasons)
    tables = transform.published_tables(workspace)
    get_run_logger().info("Scored in DuckDB: %s", ", ".join(f"{name} {t.num_rows} rows" for name, t in tables.items()))
    return tables


@task(name="check-outputs", **_TASK)
def check_task(tables: dict[str, pa.Table], counts: dict[str, int]) -> None:
    checks.check_outputs(tables, counts)
    get_run_logger().info("Output checks passed: keys unique, awards eligible, read = accepted + quarantined")


@task(name="write-quarantine", **_IO)
def quarantine_task(rejected: pa.Table, quarantine: Path, survey_year: int) -> Path:
    path = publishing.write_quarantine(rejected, quarantine, survey_year)
    get_run_logger().info("Quarantine (%d rows) written to %s", rejected.num_rows, path)
    return path


@task(name="render-report", **_TASK)
def render_report_task(tables: dict[str, pa.Table], manifest: dict[str, Any], config: LoadedConfig,
                       output: Path) -> str:
    previous_year = config.survey.survey_year - 1
    previous = publishing.read_publication(output, previous_year, sql.PUBLISHED)
    html = reporting.render_report(tables, manifest, config.survey, previous)
    get_run_logger().info("Rendered report.html (%d KB)%s", len(html) // 1024,
                          f", with changes since {previous_year}" if previous else "")
    return html


@task(name="publish", **_IO)
def publish_task(tables: dict[str, pa.Table], manifest: dict[str, Any], output: Path, survey_year: int,
                 run_id: str, keep: int, report_html: str) -> Path:
    folder = publishing.publish(tables, manifest, output, survey_year, run_id, keep, {"report.html": report_html})
    get_run_logger().info("Published survey year %s to %s", survey_year, folder)
    return folder


@task(name="report", **_TASK)
def report_task(summary: dict[str, Any]) -> None:
    key = f"cro-awards-{summary['survey_year']}"
    create_markdown_artifact(summaries.awards_markdown(summary), key=key,
                             description=f"Leaders and champions, survey year {summary['survey_year']}")
    create_table_artifact(summaries.awards_table_rows(summary["awards"]), key=f"{key}-awards",
                          description=f"Awards table, survey year {summary['survey_year']}")
    create_markdown_artifact(summaries.validation_markdown(summary), key=f"{key}-validation",
                             description=f"Rows read, accepted, quarantined; where outputs went ({summary['survey_year']})")


def code_version() -> str:
    """The package version, and the git commit when run from a checkout (`.dirty` if modified)."""
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return cro_awards.__version__
    return f"{cro_awards.__version__}+g{commit}{'.dirty' if dirty else ''}"


def package_versions() -> dict[str, str]:
    names = ("prefect", "great-expectations", "duckdb", "pandas", "pyarrow", "openpyxl", "pydantic")
    return {"python": platform.python_version(), **{n: importlib.metadata.version(n) for n in names}}


def _run_name() -> str:
    parameters = flow_run.parameters or {}
    stem = Path(str(parameters.get("config") or "surveys/2024.yaml")).stem
    return f"awards-{stem}-{uuid.uuid4().hex[:8]}"


YEAR_SLOT_LEASE_SECONDS = 60
"""A killed run's slot is freed when its lease lapses; a live run renews its lease."""


@contextlib.contextmanager
def _year_slot(survey_year: int) -> Iterator[None]:
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


def _locations(settings: Settings, config: str | None, export: str | None, output: str | None,
               quarantine: str | None) -> tuple[Path | None, Path | None, Path, Path, Path]:
    """(config, export, output, quarantine) with defaults; confined to their roots in deployment runs."""
    paths = (
        Path(config) if config else settings.default_config,
        Path(export) if export else None,
        Path(output) if output else settings.output,
        Path(quarantine) if quarantine else settings.quarantine,
    )
    if deployment.id is None:
        return paths
    config_path, export_path, output_path, quarantine_path = paths
    return (
        confine(config_path, [settings.surveys, settings.data_root], "config"),
        confine(export_path, [settings.data_root], "export") if export_path else None,
        confine(output_path, [settings.data_root], "output"),
        confine(quarantine_path, [settings.data_root], "quarantine"),
    )


@flow(name="cro-awards", flow_run_name=_run_name, persist_result=False, log_prints=False)
def cro_awards_flow(
    config: str | None = None,
    export: str | None = None,
    output: str | None = None,
    quarantine: str | None = None,
    min_evaluations: Annotated[int | None, Field(ge=1, le=1_000_000)] = None,
    min_cros_for_awards: Annotated[int | None, Field(ge=1, le=10_000)] = None,
    champion_sd_multiplier: Annotated[float | None, Field(ge=0, le=10)] = None,
    min_cell_size: Annotated[int | None, Field(ge=1, le=1_000_000)] = None,
    max_rejected_share: Annotated[float | None, Field(ge=0, le=1)] = None,
    big_pharma_min_rd_spend_musd: Annotated[float | None, Field(ge=0, le=1e12)] = None,
    recency_months: Annotated[int | None, Field(ge=0, le=1200)] = None,
) -> dict[str, Any]:
    """Score one survey year and publish its awards.

    Args:
        config: The survey year's YAML, e.g. surveys/2024.yaml (the default).
        export: The survey export (.csv, .xlsx or .parquet); empty for the YAML's sample_export.
        output: Folder of the published tables; empty for the default (data/output).
        quarantine: Folder of rejected evaluations, outside output; empty for the default (data/quarantine).
        min_evaluations: Override of the YAML: evaluations a CRO needs in a cell to be eligible.
        min_cros_for_awards: Override of the YAML: eligible CROs a cell needs for awards.
        champion_sd_multiplier: Override of the YAML: champions score at least this many weighted SDs above the weighted mean.
        min_cell_size: Override of the YAML: scores resting on fewer ratings or evaluations are not published.
        max_rejected_share: Override of the YAML: a larger share of rejected evaluations fails the run.
        big_pharma_min_rd_spend_musd: Override of the YAML: R&D spend (USD millions) from which a sponsor is Big Pharma.
        recency_months: Override of the YAML: months before survey_close an evaluation may rest on.
    """
    settings = load_settings()
    config_path, export_path, output_path, quarantine_path = _locations(settings, config, export, output, quarantine)
    overrides = {
        "min_evaluations": min_evaluations,
        "min_cros_for_awards": min_cros_for_awards,
        "champion_sd_multiplier": champion_sd_multiplier,
        "min_cell_size": min_cell_size,
        "max_rejected_share": max_rejected_share,
        "big_pharma_min_rd_spend_musd": big_pharma_min_rd_spend_musd,
        "recency_months": recency_months,
    }
    loaded = load_config_task(config_path, overrides)
    survey = loaded.survey
    output_path, quarantine_path = publishing.check_locations(output_path, quarantine_path)
    if export_path is None:
        if not survey.sample_export:
            raise ExportError(f"{loaded.path}: no export given and the YAML names no sample_export; pass --export.")
        export_path = loaded.resolve(survey.sample_export)
    run_id = str(flow_run.id or uuid.uuid4())
    with _year_slot(survey.survey_year), year_lock(output_path, survey.survey_year, run_id):
        summary = _score_and_publish(loaded, export_path, output_path, quarantine_path, run_id,
                                     settings.keep_publications)
    report_task(summary)
    return summary


def _score_and_publish(loaded: LoadedConfig, export_path: Path, output_path: Path, quarantine_path: Path,
                       run_id: str, keep: int) -> dict[str, Any]:
    survey = loaded.survey
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now
        kill_point(f"after_{stage}")

    validate.prepare_in_background()  # GX's import and set-up overlap extract and stage
    exported = extract_task(export_path, loaded)
    lap("extract")
    workspace = stage_task(exported, loaded)
    lap("stage")
    reasons = validate_task(workspace, loaded, exported)
    lap("validate")
    tables = transform_task(workspace, loaded, reasons)
    counts = transform.counts(workspace)
    by_reason = dict(sql.rows(workspace, "select reason, count(*) from rejection_reasons group by reason order by reason"))
    lap("transform")
    quarantine_file = quarantine_task(sql.arrow(workspace, sql.sorted_query("rejected_evaluations")), quarantine_path,
                                      survey.survey_year)
    workspace.close()
    lap("quarantine")
    rejected_share = counts["quarantined"] / counts["read"]
    if rejected_share > survey.max_rejected_share:
        raise RejectedShareError(
            f"{export_path}: {counts['quarantined']} of {counts['read']} evaluations were rejected "
            f"({rejected_share:.1%}), more than max_rejected_share {survey.max_rejected_share:.1%}; nothing was "
            f"published. Inspect the quarantine at {quarantine_file}, fix the export, and run again."
        )
    check_task(tables, counts)
    manifest = {
        "run_id": run_id,
        "survey_year": survey.survey_year,
        "published_at": publishing.utc_now(),
        "export": {"file_name": export_path.name, "sha256": exported.sha256},
        "config": {
            "file_name": loaded.path.name,
            "sha256": loaded.sha256,
            "overrides": loaded.overrides,
            "effective": survey.model_dump(mode="json", include=set(_EFFECTIVE_KEYS)),
        },
        "counts": {**counts, "quarantined_by_reason": by_reason},
        "versions": {"code": code_version(), **package_versions()},
    }
    report_html = render_report_task(tables, manifest, loaded, output_path)
    lap("report")
    folder = publish_task(tables, manifest, output_path, survey.survey_year, run_id, keep, report_html)
    lap("publish")
    return {
        "survey_year": survey.survey_year,
        "run_id": run_id,
        "export": str(export_path),
        "export_sha256": exported.sha256,
        "counts": counts,
        "quarantined_by_reason": by_reason,
        "published": str(folder),
        "output": str(publishing.year_folder(output_path, survey.survey_year)),
        "quarantine": str(quarantine_file),
        "awards": tables["awards"].to_pylist(),
        "timings": timings,
    }


if __name__ == "__main__":
    cro_awards_flow()
