"""The task runner, chosen by configuration (CRO_AWARDS_TASK_RUNNER), never by code, built when a flow starts.

- `threads` (default): `ThreadPoolTaskRunner(max_workers=CRO_AWARDS_MAX_WORKERS)`.
- `dask`: `prefect_dask.DaskTaskRunner`, on the scheduler at CRO_AWARDS_DASK_ADDRESS, or else on a
  local cluster of CRO_AWARDS_MAX_WORKERS single-threaded worker processes. Run it against a Prefect
  server (PREFECT_API_URL): in ephemeral mode every worker would start a server of its own.
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from cro_awards.engine.settings import Settings


def task_runner(settings: Settings) -> TaskRunner:
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=settings.max_workers)
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.max_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )
