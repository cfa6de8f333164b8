"""The inbox: run the awards on every export dropped in the inbox folder that was never run before.

Each new export's run writes a draft; with the parameter `release` (default off) it is released at once.

An export belongs to the survey year whose number its file name contains (`export_2025.csv`,
`2025-final.xlsx`) among the configured years (`surveys/<year>.yaml`); others are named in the log and
left alone, and so is a file that links outside the data root (refused before it is read: it fails
the inbox run at the end). An export is new when its SHA-256 is not in the private store's ledger of every
export ever published, so a republished old export never takes turns with a newer one of the same
year. Each new export runs the `cro-awards` flow as a subflow, oldest file first; one failing export does not stop
the others, but fails the inbox run at the end.
"""

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment

from cro_awards.engine.errors import CroAwardsError
from cro_awards.engine.paths import confine
from cro_awards.engine.settings import load_settings
from cro_awards.publication.publish import published_exports
from cro_awards.reading.inbox import scan_inbox
from flows.awards import cro_awards_flow, open_store


@flow(name="cro-awards-inbox", flow_run_name="inbox", persist_result=False)
def inbox_flow(
    inbox: str | None = None, output: str | None = None, quarantine: str | None = None, release: bool = False
) -> list[dict[str, Any]]:
    """Run the awards on each export in the inbox never run before (by SHA-256): a draft each.

    Args:
        inbox: Folder to look in; empty for the default (data/inbox).
        output: Folder of the published tables; empty for the default (data/output).
        quarantine: Folder of rejected evaluations; empty for the default (data/quarantine).
        release: Release each new export's draft at once if its run succeeds; off: drafts only, released later
            with the cro-awards-release/release deployment or `cro-awards release`.
    """
    settings = load_settings()
    logger = get_run_logger()
    inbox_path = Path(inbox) if inbox else settings.inbox
    output_path = Path(output) if output else settings.output
    drafts_path = settings.drafts_for(output_path)  # the private store: its ledger lists every export ever run
    if deployment.id is not None:
        inbox_path = confine(inbox_path, [settings.data_root], "inbox")
        output_path = confine(output_path, [settings.data_root], "output")
        drafts_path = confine(drafts_path, [settings.data_root], "drafts")
    quarantine_path = Path(quarantine) if quarantine else settings.quarantine
    if deployment.id is not None:
        quarantine_path = confine(quarantine_path, [settings.data_root], "quarantine")
    open_store(output_path, quarantine_path, drafts_path)  # an old layout's ledger moves to the store first
    published = published_exports(drafts_path)
    scan = scan_inbox(inbox_path, settings.configured_years(), published, [settings.data_root, inbox_path])
    for path in scan.unmatched:
        logger.warning("Ignoring %s: not a .csv/.xlsx/.parquet named after a configured survey year", path.name)
    failures = [path.name for path, _ in scan.refused]
    for path, reason in scan.refused:
        logger.error("%s was not read: %s", path.name, reason)
    for export in scan.published:
        logger.info(
            "Skipping %s (survey %s): already published (sha256 %s)", export.path.name, export.year, export.sha256[:12]
        )
    results = []
    for export in scan.new:
        if export.sha256 in published:  # the same file twice in the inbox: published a moment ago
            logger.info("Skipping %s (survey %s): already published", export.path.name, export.year)
            continue
        logger.info("New export %s for survey %s: running the awards", export.path.name, export.year)
        try:
            summary = cro_awards_flow(
                config=str(settings.survey_config(export.year)),
                export=str(export.resolved),
                output=str(output_path),
                quarantine=quarantine,
                drafts=str(drafts_path),
                release=release,
            )
        except CroAwardsError as error:
            logger.error("%s was not published: %s", export.path.name, error)
            failures.append(export.path.name)
            continue
        published.add(export.sha256)
        results.append(
            {
                "survey_year": export.year,
                "export": export.path.name,
                "run_id": summary.run_id,
                "released": summary.released,
            }
        )
    if not (scan.new or scan.published or scan.refused):
        logger.info("Nothing to do: no export of a configured survey year in %s", inbox_path)
    if failures:
        raise CroAwardsError(f"{len(failures)} export(s) in {inbox_path} could not be published: {', '.join(failures)}")
    return results
