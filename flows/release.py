"""The release flow: an editor releases a draft from the Prefect UI, at once or at an embargo time.

Served as the deployment `cro-awards-release/release` (`deployments/serve.py`, `deployments/prefect.yaml`):
the flow `cro-awards-release`, apart from the awards flow `cro-awards`, so the UI lists releases apart from
awards runs. Parameters: the survey year, the run id of the draft (from `cro-awards
publications`, or the awards run's id in the UI), `embargo_until`, `released_by`, `accept_difference`
(why a release the differencing guard refuses is right: recorded in the release log), and the folders.

Without an embargo the flow releases (`cro_awards.publication.releases.release`) under the year's lock, like a run;
a draft with a pending embargo only with `now` (its embargo is cancelled), and any release cancels the
year's pending embargo (logged). With an embargo (from now to `releases.MAX_EMBARGO_DAYS` days ahead;
else refused) it checks the draft exists, records the embargo in the release log (replacing the year's
pending one) and schedules a run of this same deployment at that time (`schedule_release`, which
`cro-awards release --embargo-until` calls too), then ends: nothing readers see changes before the
embargo. That scheduled run (`releases.release_embargoed`) releases only if no release, rollback or newer
embargo of the year came after the embargo was set; otherwise it releases nothing and logs why. Started a
little early, it waits for the embargo time (never more than `EARLY_START_SECONDS`).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from cro_awards.engine.errors import quiet_user_error_tracebacks
from cro_awards.engine.locks import year_lock
from cro_awards.engine.settings import Settings, load_settings
from cro_awards.publication import releases
from flows.awards import LOCK_HOLDER, folders, open_store, run_timeout, year_slot
from tasks.awards import release_task, timed

quiet_user_error_tracebacks("prefect.flow_runs", "prefect.task_runs")

DEPLOYMENT = "cro-awards-release/release"
EARLY_START_SECONDS = 120
"""A scheduled release run that starts at most this early waits for its embargo; earlier, it reschedules."""


def _run_name() -> str:
    parameters = flow_run.parameters or {}
    return f"release-{parameters.get('survey_year', 'year')}-{str(parameters.get('run_id', 'run'))[:8]}"


def schedule_release(
    survey_year: int,
    run_id: str,
    embargo_until: dt.datetime,
    *,
    released_by: str | None,
    output: Path,
    quarantine: Path,
    drafts: Path,
    accept_difference: str | None = None,
) -> dict[str, Any]:
    """Record the embargo (in the private store's release log) and create a run of `cro-awards-release/release`
    scheduled at `embargo_until` (needs a Prefect server serving the deployment: `make serve`); return the log
    entry, with the flow run's id."""
    embargo_until = releases.embargo_time(embargo_until)  # in range (exit 2), before anything is scheduled
    releases.require_draft(drafts, survey_year, run_id)
    scheduled = run_deployment(
        DEPLOYMENT,
        parameters={
            "survey_year": survey_year,
            "run_id": run_id,
            "embargo_until": releases.iso(embargo_until),
            "released_by": released_by,
            "output": str(output),
            "quarantine": str(quarantine),
            "drafts": str(drafts),
            "accept_difference": accept_difference,
        },
        scheduled_time=embargo_until,
        timeout=0,
        as_subflow=False,
        flow_run_name=f"release-{survey_year}-{run_id[:8]}-embargoed",
    )
    return releases.record_embargo(
        drafts, survey_year, run_id, embargo_until, by=released_by, flow_run_id=str(scheduled.id)
    )


def _release_draft(output, quarantine, survey_year, run_id, *, store, released_by, keep, now, accept_difference):
    """`releases.release` through the flow's release task (what an embargo's scheduled run calls)."""
    task_ = timed(release_task, load_settings().task_timeout)
    return task_(output, quarantine, store, survey_year, run_id, released_by, keep, accept_difference)


def _log_cancelled(done: dict[str, Any]) -> None:
    for cancelled in done.get("cancelled_embargoes", []):
        get_run_logger().warning(
            "The embargoed release of run %s at %s is cancelled: its scheduled run will release nothing",
            cancelled["run_id"],
            cancelled["embargo_until"],
        )


@flow(name="cro-awards-release", flow_run_name=_run_name, persist_result=False, log_prints=False)
def release_flow(
    survey_year: int,
    run_id: str,
    embargo_until: dt.datetime | None = None,
    released_by: str | None = None,
    output: str | None = None,
    quarantine: str | None = None,
    drafts: str | None = None,
    accept_difference: str | None = None,
    now: bool = False,
) -> dict[str, Any]:
    """Release a draft of a survey year: what readers see at output/survey_year=<year> becomes that draft.

    Args:
        survey_year: The survey year, e.g. 2024.
        run_id: The run id of the draft to release (`cro-awards publications <year>` lists them), or its first
            characters (at least 4) if they start no other draft's id. Releasing an earlier draft is a rollback.
        embargo_until: Release at this time (ISO 8601, e.g. 2026-12-24T09:00:00Z), by a scheduled run of this
            deployment; empty to release now.
        released_by: Who releases, recorded in the release log; empty for the operating system's user.
        output: Folder of the published tables; empty for the default (data/output).
        quarantine: Folder of rejected evaluations; empty for the default (data/quarantine).
        drafts: The private folder of drafts and the release log; empty for the default (CRO_AWARDS_DRAFTS, else
            drafts beside output: data/drafts).
        accept_difference: Why releasing is right although the differencing guard finds published rows that
            differ from an earlier release of the year by fewer than min_cell_size evaluations (recorded in the
            release log); empty: such a release is refused (exit 9). Rollbacks are never checked.
        now: Release a draft that has a pending embargo at once, cancelling the embargo (without it, refused).
            Any release of the year cancels the year's pending embargo.
    """
    settings = load_settings()
    with run_timeout(settings, f"the release of run {run_id} of survey year {survey_year}"):
        return _release(
            settings,
            survey_year,
            run_id,
            embargo_until,
            released_by,
            output,
            quarantine,
            drafts,
            accept_difference,
            now,
        )


def _release(
    settings: Settings,
    survey_year: int,
    run_id: str,
    embargo_until: dt.datetime | None,
    released_by: str | None,
    output: str | None,
    quarantine: str | None,
    drafts: str | None,
    accept_difference: str | None,
    now: bool,
) -> dict[str, Any]:
    """The release flow's body (`release_flow`), inside its timeout."""
    logger = get_run_logger()
    output_path, quarantine_path, drafts_path = folders(settings, output, quarantine, drafts)
    output_path, quarantine_path, drafts_path = open_store(output_path, quarantine_path, drafts_path)
    released_by = released_by or releases.default_releaser()
    if embargo_until is not None:
        until = releases.parse_time(embargo_until)
        wait = (until - dt.datetime.now(dt.UTC)).total_seconds()
        scheduled = flow_run.scheduled_start_time
        is_the_scheduled_run = scheduled is not None and abs((scheduled - until).total_seconds()) < 1
        if not (is_the_scheduled_run and wait <= EARLY_START_SECONDS):  # a time given in the form: schedule
            run_id = releases.resolve_run_id(drafts_path, survey_year, run_id, output=output_path)
            entry = schedule_release(
                survey_year,
                run_id,
                until,
                released_by=released_by,
                output=output_path,
                quarantine=quarantine_path,
                drafts=drafts_path,
                accept_difference=accept_difference,
            )
            logger.info(
                "Survey year %s, run %s: embargoed until %s; a run of %s is scheduled then (%s)",
                survey_year,
                run_id,
                entry["embargo_until"],
                DEPLOYMENT,
                entry["flow_run_id"],
            )
            return {"status": "embargoed", **entry}
        if wait > 0:
            logger.info("Started %.1f s before the embargo; waiting for it", wait)
            time.sleep(wait)
        with year_slot(survey_year), year_lock(output_path, survey_year, LOCK_HOLDER):
            done = releases.release_embargoed(
                output_path,
                quarantine_path,
                survey_year,
                run_id,
                until,
                store=drafts_path,
                released_by=released_by,
                keep=settings.keep_publications,
                accept_difference=accept_difference,
                flow_run_id=str(flow_run.id) if flow_run.id else None,
                release_draft=_release_draft,
            )
        if done["status"] != "released":
            logger.warning("Survey year %s, run %s: nothing released: %s", survey_year, run_id, done["reason"])
            return done
        _log_cancelled(done)
        return done
    # A unique prefix names its draft, as in `cro-awards release` (the scheduled run above has the full id).
    run_id = releases.resolve_run_id(drafts_path, survey_year, run_id, output=output_path)
    with year_slot(survey_year), year_lock(output_path, survey_year, LOCK_HOLDER):
        embargoed = releases.pending_embargoes(drafts_path, survey_year).get(run_id)
        if embargoed is not None and not now:
            raise releases.ReleaseError(
                f"run {run_id} of {survey_year} is embargoed until {releases.iso(embargoed)}: its scheduled run "
                "releases it then. To release it at once (cancelling the embargo) set `now`; nothing was released."
            )
        done = timed(release_task, settings.task_timeout)(
            output_path,
            quarantine_path,
            drafts_path,
            survey_year,
            run_id,
            released_by,
            settings.keep_publications,
            accept_difference,
        )
    _log_cancelled(done)
    return {"status": "released", **done}


if __name__ == "__main__":
    import sys

    release_flow(survey_year=int(sys.argv[1]), run_id=sys.argv[2])
