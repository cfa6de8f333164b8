"""The backfill: run the awards for every configured survey year (or the given ones), in parallel.

Each year runs the `cro-awards` flow as its own subflow run (a draft; released at once with
`release`), inside a task submitted to the task runner that the settings choose (`flows.runners`),
built when the backfill starts (so a changed setting applies to the next run, not the next process):
threads by default, Dask when configured. A year's export is the newest file for it in the inbox,
else its YAML's `sample_export`.
"""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cro_awards.engine.errors import ConfigError
from cro_awards.engine.settings import load_settings
from cro_awards.reading.inbox import exports_by_year
from flows.awards import cro_awards_flow
from flows.runners import task_runner


@task(name="backfill-year", cache_policy=NO_CACHE, persist_result=False)
def backfill_year(
    year: int, export: str | None, output: str | None, quarantine: str | None, release: bool
) -> dict[str, Any]:
    summary = cro_awards_flow(
        config=str(load_settings().survey_config(year)),
        export=export,
        output=output,
        quarantine=quarantine,
        release=release,
    )
    return {key: getattr(summary, key) for key in ("survey_year", "run_id", "counts", "output", "released")}


@flow(name="cro-awards-backfill", flow_run_name="backfill", persist_result=False)
def backfill_flow(
    years: list[int] | None = None,
    output: str | None = None,
    quarantine: str | None = None,
    release: bool = False,
) -> list[dict[str, Any]]:
    """Run the awards for each survey year, each as its own subflow run, in parallel: a draft each.

    Args:
        years: Survey years to run; empty for every year configured in surveys/.
        output: Folder of the published tables; empty for the default (data/output).
        quarantine: Folder of rejected evaluations; empty for the default (data/quarantine).
        release: Release each year's draft at once if its run succeeds; off: drafts only.
    """
    settings = load_settings()
    configured = settings.configured_years()
    chosen = sorted(set(years)) if years else configured
    unknown = [year for year in chosen if year not in configured]
    if unknown:
        raise ConfigError(
            f"no configuration for survey year(s) {unknown} in {settings.surveys}; configured: {configured}"
        )
    newest = dict(exports_by_year(settings.inbox, chosen)[0])
    get_run_logger().info(
        "Backfilling survey years %s (task runner: %s, %d workers)", chosen, settings.task_runner, settings.max_workers
    )
    with task_runner(settings) as runner:
        futures = [
            runner.submit(
                backfill_year,
                parameters={
                    "year": year,
                    "export": str(newest[year]) if year in newest else None,
                    "output": output,
                    "quarantine": quarantine,
                    "release": release,
                },
            )
            for year in chosen
        ]
        return [future.result() for future in futures]
