"""Releases: which draft of a survey year readers see, who released it and when, and what is kept.

A run writes a draft in the private store `<drafts>` (`cro_awards.publication.publish.write_draft`). `release`
first applies the differencing guard (`cro_awards.disclosure.guard`) to a draft never released before (against
every earlier release of its year; refused with exit 9 unless the editor accepts the difference with a
reason), keeps the guard's files of the run, places a readable copy of the draft's public files at
`<output>/.releases/survey_year=<year>/<run_id>/` (`publish.write_release_copy`), points the year's link
`<output>/survey_year=<year>` at that copy with one atomic rename (the commit point), then points
`<quarantine>/survey_year=<year>/rejected_evaluations.parquet` at that run's quarantine, then appends an
entry to the release log `<drafts>/releases.jsonl` (who, when, which run, which run was released before,
the accepted difference). Rollback is releasing an earlier draft (never checked: it exposes nothing
new). Whatever stops a release (an error, a SIGKILL), the link shows the old release or the new one,
never neither nor a mix; running the same release again completes what it left undone (the quarantine
link, the log line) and adds no second line.

An embargoed release is recorded in the (private) log (`record_embargo`) by whoever schedules the flow
run that will release it at that time (`flows.release`); until then `publications` marks the draft
"embargoed until ...". A year has at most one embargo in force: a newer embargo of the year, and any
release or rollback of the year (`release`), cancel it (an `embargo_cancelled` line saying why); when its
time comes the scheduled run releases only if nothing settled the embargo meanwhile
(`release_embargoed`): a scheduled release never overrides a release made after it was scheduled (an
`embargo_not_applied` line says why it released nothing). Nothing under the output folder names a draft
or an embargo. The keep policy
(`collect_garbage`, after every draft and release): never delete the current release, the previous
release, a draft with a pending embargo or a draft younger than `KEEP_DAYS` days; beyond those keep the
newest `keep` drafts (CRO_AWARDS_KEEP_PUBLICATIONS). A deleted draft's quarantine goes with it; a failed
run's quarantine (it has no draft) is kept `KEEP_DAYS` days. Under the output folder only the copies of the
current and the previous release are kept; the guard's files of every run ever released are kept in the
store.

`migrate` moves an output folder of the old layout (drafts and logs in `<output>/.publications/`) to the
store once, losing nothing; `prepare` (called first by every command and flow) does it when it is needed.

Nothing here imports Prefect: the command line calls it directly, the flows through thin tasks. Run
ids given by a person (the command line, a form in the UI) are matched against the drafts' manifests
and never joined into a path.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cro_awards.disclosure import guard
from cro_awards.engine.checkpoints import checkpoint
from cro_awards.engine.errors import CroAwardsError, DisclosureError, PublishError
from cro_awards.engine.locks import LOCKS
from cro_awards.publication.publish import (
    _TMP_PREFIX,
    LEDGER,
    PUBLICATIONS,
    QUARANTINE_FILE,
    RELEASED_GUARD as RELEASED_GUARD_FOLDER,
    RELEASES,
    _entries,
    append_json_line,
    check_locations,
    check_store,
    draft_name,
    drafts,
    find_draft,
    guard_files,
    keep_guard_files,
    live_target,
    make_dirs,
    make_private,
    private_dir,
    quarantine_folder,
    reason,
    releases_folder,
    remove_stray_links,
    switch_link,
    write_release_copy,
    year_folder,
)
from cro_awards.record.manifest import Manifest, read_manifest
from cro_awards.record.summary import printable

RELEASE_LOG = "releases.jsonl"
KEEP_DAYS = 30
"""Drafts younger than this many days are never deleted; nor is a failed run's quarantine."""

RELEASED, EMBARGOED = "released", "embargoed"
EMBARGO_CANCELLED, EMBARGO_NOT_APPLIED = "embargo_cancelled", "embargo_not_applied"
EVENTS = (RELEASED, EMBARGOED, EMBARGO_CANCELLED, EMBARGO_NOT_APPLIED)
"""The release log's events (`released` and `embargoed` lines; an embargo cancelled by a release or
replaced by another embargo; a scheduled release that found its embargo cancelled and released nothing)."""

logger = logging.getLogger(__name__)


class ReleaseError(CroAwardsError):
    """The draft to release or compare does not exist, or a release cannot be made as asked."""

    exit_code = 10


class DifferenceError(DisclosureError):
    """The differencing guard refused a release: some published rows would differ from an earlier
    release's by fewer than `min_cell_size` evaluations (exit 9)."""


def default_releaser() -> str:
    """Who releases when nobody is named: the operating system's user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def parse_time(text: str | dt.datetime) -> dt.datetime:
    """An ISO 8601 time, timezone-aware (a time without an offset is taken as UTC)."""
    if isinstance(text, dt.datetime):
        value = text
    else:
        try:
            value = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ReleaseError(
                f"{text!r} is not an ISO 8601 time; write it like 2026-12-24T09:00:00Z (UTC) or "
                "2026-12-24T10:00:00+01:00."
            ) from None
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        raise ReleaseError(
            f"{text!r} is out of the range of times this pipeline handles (years 1 to 9999, UTC)."
        ) from None
    return value


MAX_EMBARGO_DAYS = 366
"""An embargo is at most this many days ahead: a later time is taken for a typing error."""


class EmbargoTimeError(ReleaseError):
    """An embargo time that is not a time, has passed, or is beyond `MAX_EMBARGO_DAYS` (a usage error)."""

    exit_code = 2


def embargo_time(text: str | dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """The embargo time `text` (ISO 8601; no offset: UTC), refused with `EmbargoTimeError` (exit 2) unless it
    is after `now` and at most `MAX_EMBARGO_DAYS` days after it: saying which range is accepted."""
    now = _now(now)
    latest = now + dt.timedelta(days=MAX_EMBARGO_DAYS)
    accepted = (
        f"an embargo time is accepted from now ({iso(now)}) to {MAX_EMBARGO_DAYS} days ahead ({iso(latest)}), "
        "written like 2026-12-24T09:00:00Z (UTC) or 2026-12-24T10:00:00+01:00; nothing was scheduled"
    )
    try:
        until = parse_time(text)
        until.astimezone(dt.UTC)
    except (ReleaseError, OverflowError):
        raise EmbargoTimeError(
            f"{str(text)!r} is not an embargo time this pipeline can schedule: {accepted}."
        ) from None
    if until <= now:
        raise EmbargoTimeError(
            f"the embargo time {iso(until)} has passed; release without --embargo-until to release now ({accepted})."
        )
    if until > latest:
        raise EmbargoTimeError(f"the embargo time {iso(until)} is too far ahead: {accepted}.")
    return until


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


# The log ------------------------------------------------------------------------------------------------


def log_path(store: Path) -> Path:
    return store / RELEASE_LOG


def release_log(store: Path, survey_year: int | None = None) -> list[dict[str, Any]]:
    """The release log's entries, oldest first; one year's when given. A line that is not a well-formed
    entry (broken JSON, a torn write, a field of the wrong type, an unknown event) is skipped with one
    warning naming the file and the line number (`_malformed`), never an error."""
    path = log_path(store)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            _warn_once(path, number, line, "not JSON (a torn or hand-edited line)")
            continue
        problem = _malformed(entry)
        if problem:
            _warn_once(path, number, line, problem)
            continue
        if survey_year is None or entry["survey_year"] == survey_year:
            entries.append(entry)
    return entries


_WARNED: set[tuple[str, int, bytes]] = set()


def _warn_once(path: Path, number: int, line: bytes, problem: str) -> None:
    key = (str(path), number, line)
    if key in _WARNED:
        return
    _WARNED.add(key)
    logger.warning(
        "cro-awards: warning: skipped line %d of the release log %s: %s. The other lines are read as usual; "
        "correct or remove that line (it is not a release this pipeline recorded).",
        number,
        path,
        problem,
    )


def _malformed(entry: Any) -> str | None:
    """What is wrong with a release log entry, None when it is well formed."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("event") not in EVENTS:
        return f"its event {entry.get('event')!r} is none of {', '.join(EVENTS)}"
    year = entry.get("survey_year")
    if not isinstance(year, int) or isinstance(year, bool):
        return f"its survey_year {year!r} is not a year"
    if not isinstance(entry.get("run_id"), str) or not entry["run_id"]:
        return f"its run_id {entry.get('run_id')!r} is not a run id"
    for key in ("at", "by", "previous_run_id", "flow_run_id", "embargo_until"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"its {key} {entry[key]!r} is not text"
    for key in ("embargo_until",) if entry["event"] != RELEASED else ():
        try:
            parse_time(entry[key])
        except (KeyError, ReleaseError, OverflowError):
            return f"its {key} {entry.get(key)!r} is not a time"
    return None


def record_embargo(
    store: Path,
    survey_year: int,
    run_id: str,
    until: dt.datetime,
    *,
    by: str | None = None,
    flow_run_id: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record that run `run_id`'s draft will be released at `until` (by a scheduled flow run)."""
    require_draft(store, survey_year, run_id)
    replaced = _cancel(
        store,
        open_embargoes(store, survey_year),
        f"replaced by the embargo of run {run_id} until {iso(until)}",
        by or default_releaser(),
        _now(now),
    )
    entry = {
        "event": EMBARGOED,
        "survey_year": survey_year,
        "run_id": run_id,
        "at": iso(_now(now)),
        "by": by or default_releaser(),
        "embargo_until": iso(until),
        "flow_run_id": flow_run_id,
    }
    append_json_line(log_path(store), entry)
    return {**entry, "replaced": replaced}


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["run_id"], iso(parse_time(entry["embargo_until"]))


def open_embargoes(store: Path, survey_year: int) -> list[dict[str, Any]]:
    """The year's embargo entries not yet settled, oldest first: an embargo is settled by any release of the
    year logged after it (its own, or one that overrides it), by its cancellation (a release, a rollback or
    a newer embargo of the year cancels it) or by its scheduled run finding it cancelled. Whether its time
    has come or not (`pending_embargoes`: those still in the future)."""
    unsettled: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in release_log(store, survey_year):
        if entry["event"] == EMBARGOED:
            unsettled[_key(entry)] = entry
        elif entry["event"] == RELEASED:
            unsettled.clear()
        else:
            unsettled.pop(_key(entry), None)
    return list(unsettled.values())


def _cancel(store: Path, embargoes: list[dict[str, Any]], why: str, by: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Log the cancellation of each of `embargoes` (its scheduled run will then release nothing)."""
    cancelled = []
    for embargo in embargoes:
        entry = {
            "event": EMBARGO_CANCELLED,
            "survey_year": embargo["survey_year"],
            "run_id": embargo["run_id"],
            "embargo_until": embargo["embargo_until"],
            "flow_run_id": embargo.get("flow_run_id"),
            "at": iso(now),
            "by": by,
            "reason": why,
        }
        append_json_line(log_path(store), entry)
        cancelled.append(entry)
    return cancelled


def embargo_settled(store: Path, survey_year: int, run_id: str, until: dt.datetime) -> str | None:
    """None when run `run_id`'s embargo until `until` is still to be released by its scheduled run; else why
    not (it was cancelled, or another release of the year was made after it was set: a scheduled release
    never overrides a release made after it was scheduled)."""
    key = (run_id, iso(until))
    why = f"no embargo of run {run_id} until {iso(until)} is in the release log"
    for entry in release_log(store, survey_year):
        if entry["event"] == EMBARGOED and _key(entry) == key:
            why = None
        elif why is None and entry["event"] == RELEASED:
            if entry["run_id"] == run_id:
                why = f"run {run_id} was released at {entry.get('at')} by {entry.get('by')} already"
            else:
                why = (
                    f"run {entry['run_id']} was released at {entry.get('at')} by {entry.get('by')}, after this "
                    "embargo was set"
                )
        elif why is None and entry["event"] in (EMBARGO_CANCELLED, EMBARGO_NOT_APPLIED) and _key(entry) == key:
            why = f"the embargo was cancelled at {entry.get('at')}: {entry.get('reason')}"
    return why


def release_embargoed(
    output: Path,
    quarantine: Path,
    survey_year: int,
    run_id: str,
    until: dt.datetime,
    *,
    store: Path,
    released_by: str | None = None,
    keep: int = 2,
    now: dt.datetime | None = None,
    accept_difference: str | None = None,
    flow_run_id: str | None = None,
    release_draft=None,
) -> dict[str, Any]:
    """What the scheduled run of an embargo does at its time, under the year's lock: release run `run_id`
    (`release`, or `release_draft` given the same arguments) unless the embargo was settled meanwhile
    (`embargo_settled`), in which case nothing is released and an `embargo_not_applied` line says why.
    Returns the release's result with `status` "released", or {status: "not applied", reason, ...}."""
    now = _now(now)
    why = embargo_settled(store, survey_year, run_id, until)
    if why is not None:
        entry = {
            "event": EMBARGO_NOT_APPLIED,
            "survey_year": survey_year,
            "run_id": run_id,
            "embargo_until": iso(until),
            "flow_run_id": flow_run_id,
            "at": iso(now),
            "by": released_by or default_releaser(),
            "reason": why,
        }
        append_json_line(log_path(store), entry)
        return {"status": "not applied", **entry}
    release_draft = release_draft or release
    done = release_draft(
        output,
        quarantine,
        survey_year,
        run_id,
        store=store,
        released_by=released_by,
        keep=keep,
        now=now,
        accept_difference=accept_difference,
    )
    return {"status": "released", **done}


# What is released -------------------------------------------------------------------------------------


def current_release(output: Path, survey_year: int) -> Path | None:
    """The release folder the year's link points at (a readable copy of the released draft), None when no
    run of the year was released."""
    link = year_folder(output, survey_year)
    if not link.is_symlink():
        return None
    target = live_target(link)
    return target if target is not None and target.is_dir() else None


def _released_run(output: Path, survey_year: int) -> str | None:
    current = current_release(output, survey_year)
    run_id = read_manifest(current, or_empty=True).run_id if current else None
    return run_id if isinstance(run_id, str) else None


def previous_release(output: Path, store: Path, survey_year: int) -> str | None:
    """The run released before the current release (the release log's last other run), or None."""
    current = _released_run(output, survey_year)
    runs = [e["run_id"] for e in release_log(store, survey_year) if e["event"] == RELEASED]
    return next((run for run in reversed(runs) if run != current), None)


def pending_embargoes(store: Path, survey_year: int, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """Run id -> embargo time, for the year's embargoes still in the future and not settled (`open_embargoes`)."""
    now = _now(now)
    pending = {entry["run_id"]: parse_time(entry["embargo_until"]) for entry in open_embargoes(store, survey_year)}
    return {run: until for run, until in pending.items() if until > now}


@dataclass(frozen=True)
class ListedDraft:
    """One draft of a survey year, as `cro-awards publications` lists it."""

    run_id: str
    survey_year: int
    status: str
    """`released`, `embargoed until <time>`, `previous release` or `draft`. An embargo whose time has come
    while its scheduled run has not yet released it still reads `embargoed until <time> (due: ...)`:
    readers do not see it yet, and it is no plain draft."""
    created_at: str
    """When the run made the draft (its manifest's `published_at`)."""
    published_at: str | None
    """When it was last released (readers saw it from then), None for a draft never released."""
    export_file: str | None
    export_sha256: str | None
    overrides: dict[str, Any]
    path: str
    released_at: str | None
    released_by: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def publications(output: Path, store: Path, survey_year: int, now: dt.datetime | None = None) -> list[ListedDraft]:
    """The year's drafts (in the private store), newest first, each with its status and its latest release
    (see `ListedDraft`)."""
    require_folders(year_folder(store, survey_year), "--drafts")
    current, previous = _released_run(output, survey_year), previous_release(output, store, survey_year)
    embargoes = {entry["run_id"]: parse_time(entry["embargo_until"]) for entry in open_embargoes(store, survey_year)}
    released: dict[str, dict[str, Any]] = {}
    for entry in release_log(store, survey_year):
        if entry["event"] == RELEASED:
            released[entry["run_id"]] = entry
    listed = []
    for folder, manifest in drafts(store, survey_year):
        run_id = manifest.run_id
        if run_id == current:
            status = "released"
        elif run_id in embargoes:
            due = "" if embargoes[run_id] > _now(now) else " (due: its scheduled run has not released it yet)"
            status = f"embargoed until {iso(embargoes[run_id])}{due}"
        elif run_id == previous:
            status = "previous release"
        else:
            status = "draft"
        listed.append(
            ListedDraft(
                run_id=run_id,
                survey_year=survey_year,
                status=status,
                created_at=manifest.published_at or "",
                published_at=released.get(run_id, {}).get("at"),
                export_file=manifest.export.file_name,
                export_sha256=manifest.export.sha256,
                overrides=manifest.overrides,
                path=str(folder),
                released_at=released.get(run_id, {}).get("at"),
                released_by=released.get(run_id, {}).get("by"),
            )
        )
    return listed


def require_draft(store: Path, survey_year: int, run_id: str) -> Path:
    """Run `run_id`'s draft folder; `ReleaseError` listing the year's drafts when there is none."""
    require_folders(year_folder(store, survey_year), "--drafts")
    folder = find_draft(store, survey_year, run_id)
    if folder is not None:
        return folder
    kept = [manifest.run_id for _, manifest in drafts(store, survey_year)]
    listed = ", ".join(kept[:10]) + (" ..." if len(kept) > 10 else "") if kept else "none"
    raise ReleaseError(
        f"no draft of survey year {survey_year} with run id {run_id!r} in the drafts folder {store} (its drafts: "
        f"{listed}). List them with `cro-awards publications {survey_year} --drafts {store}`; a run id is the one "
        "a run printed (also the flow run's id in the Prefect UI)."
    )


MIN_PREFIX = 4
"""The fewest characters of a run id that name a draft by prefix (as git takes an abbreviated commit)."""


def resolve_run_id(store: Path, survey_year: int, given: str, *, output: Path | None = None) -> str:
    """The whole run id of the year's draft that a person named `given`: its run id, or (as git takes an
    abbreviated commit) the start of exactly one draft's run id, at least `MIN_PREFIX` characters, matched
    without regard to case and surrounding blanks. `ReleaseError` (exit 10) for a prefix shorter than that,
    one starting several run ids (listing each with when it was made and its status, as `publications`
    gives it when `output` is given; else from the release log), or one starting none. Matched against the
    drafts' manifests, never joined into a path."""
    require_folders(year_folder(store, survey_year), "--drafts")
    kept = drafts(store, survey_year)
    if any(manifest.run_id == given for _, manifest in kept):
        return given
    prefix = str(given).strip()
    listing = f"`cro-awards publications {survey_year} --drafts {store}` lists them with their status"
    if len(prefix) < MIN_PREFIX:
        raise ReleaseError(
            f"{given!r} names no draft of survey year {survey_year}: give a whole run id, or at least {MIN_PREFIX} of "
            f"its first characters ({listing}). Nothing was done."
        )
    matches = [manifest for _, manifest in kept if manifest.run_id.lower().startswith(prefix.lower())]
    if len(matches) == 1:
        return matches[0].run_id
    if not matches:
        others = [manifest.run_id for _, manifest in kept]
        named = ", ".join(others[:10]) + (" ..." if len(others) > 10 else "") if others else "none"
        raise ReleaseError(
            f"no draft of survey year {survey_year} has the run id {given!r} or one starting with it in the drafts "
            f"folder {store} (its drafts: {named}): {listing}; a run id is the one a run printed (also the flow run's "
            "id in the Prefect UI). Nothing was done."
        )
    statuses = _statuses(store, survey_year, output)
    candidates = "; ".join(
        f"{m.run_id} (made {m.published_at or '?'}, {statuses.get(m.run_id, 'draft')})" for m in matches
    )
    raise ReleaseError(
        f"the run id prefix {prefix!r} is ambiguous in survey year {survey_year}: the run ids of {len(matches)} drafts "
        f"start with it: {candidates}. Give more of its characters (or the whole run id). Nothing was done."
    )


def _statuses(store: Path, survey_year: int, output: Path | None) -> dict[str, str]:
    """Run id -> status of the year's drafts: `publications`' when the output folder is known, else the
    release log's (released, embargoed until ..., draft)."""
    if output is not None:
        return {item.run_id: item.status for item in publications(output, store, survey_year)}
    statuses = {e["run_id"]: "released before" for e in release_log(store, survey_year) if e["event"] == RELEASED}
    for entry in open_embargoes(store, survey_year):
        statuses[entry["run_id"]] = f"embargoed until {iso(parse_time(entry['embargo_until']))}"
    return statuses


# Release ----------------------------------------------------------------------------------------------


def log_release(log: Any, done: dict[str, Any], accept_difference: str | None) -> None:
    """Say what `release` did on `log` (a `logging.Logger`, or Prefect's run logger): who released which run
    and what it replaced, the differencing guard's findings accepted, the earlier releases not compared.
    Every name and reason printable (`summary.printable`): they are the user's text."""
    log.info(
        "Released survey year %s: run %s (by %s; before: %s)",
        done["survey_year"],
        done["run_id"],
        printable(done["released_by"]),
        done["previous_run_id"] or "no release",
    )
    if done["difference"]:
        log.warning("The differencing guard's findings were accepted: %s", printable(accept_difference or ""))
    if done["unchecked"]:
        log.warning(
            "Not compared with earlier release(s) %s: no contributions were kept with them (drafted before the "
            "differencing guard)",
            ", ".join(done["unchecked"]),
        )


def release(
    output: Path,
    quarantine: Path,
    survey_year: int,
    run_id: str,
    *,
    store: Path,
    released_by: str | None = None,
    keep: int = 2,
    now: dt.datetime | None = None,
    accept_difference: str | None = None,
) -> dict[str, Any]:
    """Release run `run_id`'s draft of `survey_year` from the store `store` (module contract); return what
    was done: the run, the draft's path, the released copy's, who and when, the run released before (None
    for a first release), `already` (True when this draft was released already: nothing switched, no second
    log line; who, when and the run before are then its log entry's), `checked` (the earlier releases the
    guard compared it with), `unchecked` (those it could not: no contributions kept) and `difference` (the
    guard's findings the editor accepted). A `DifferenceError` (exit 9) when the guard refuses."""
    now = _now(now)
    by = released_by or default_releaser()
    draft = require_draft(store, survey_year, run_id)
    link = year_folder(output, survey_year)
    scratch = output / RELEASES
    if link.exists() and not link.is_symlink():
        raise PublishError(
            f"{link} is a {'folder' if link.is_dir() else 'file'}, not the link this pipeline releases through; "
            "nothing was released. Move it aside (it was not written by cro-awards, or by an older layout) and "
            "release again."
        )
    require_folders(releases_folder(output, survey_year) / str(run_id), "--output")
    require_folders(year_folder(store, survey_year) / RELEASED_GUARD_FOLDER, "--drafts")
    before = _released_run(output, survey_year)
    logged = [e for e in release_log(store, survey_year) if e["event"] == RELEASED]
    last = logged[-1] if logged else None
    already = before == run_id and last is not None and last["run_id"] == run_id
    checked, unchecked, findings = _guard(store, survey_year, run_id, draft, logged, before, accept_difference)
    copy = None
    step = "keeping what the differencing guard needs"
    try:
        if already:  # released before, or by an earlier attempt that logged it: its entry says who and when
            previous, at, by = last.get("previous_run_id"), last.get("at", iso(now)), last.get("by", by)
        elif before is not None and before != run_id:
            previous, at = before, iso(now)
        else:  # the first release, or an earlier attempt switched the link and stopped before logging it
            previous, at = (last["run_id"] if last is not None and last["run_id"] != run_id else None), iso(now)
        keep_guard_files(draft, store)
        step = "copying the draft's public files under the output folder"
        if scratch.is_dir():
            remove_stray_links(scratch, link.name)
        remove_stray_links(output, link.name)  # where versions before the drafts made the fresh link
        copy = write_release_copy(draft, output)
        step = "switching the year's link"
        switch_link(link, copy, scratch)
        step = "switching the released quarantine's link"
        _release_quarantine(quarantine, survey_year, run_id)
        step = "recording the release in the release log"
        cancelled = _cancel(
            store,
            [
                e
                for e in open_embargoes(store, survey_year)
                if not (e["run_id"] == run_id and parse_time(e["embargo_until"]) <= now)
            ],
            f"run {run_id} was released at {iso(now)} by {released_by or default_releaser()}",
            released_by or default_releaser(),
            now,
        )
        if not already:
            entry = {"survey_year": survey_year, "run_id": run_id, "at": at, "by": by, "previous_run_id": previous}
            if accept_difference:
                entry["accepted_difference"] = accept_difference
                entry["difference"] = [finding.as_json() for finding in findings]
            append_json_line(log_path(store), {"event": RELEASED, **entry})
        checkpoint("release_recorded")
        step = "collecting old drafts"
        collect_garbage(output, quarantine, store, survey_year, keep, now)
    except Exception as error:  # noqa: BLE001 - once the link is switched, say so whatever failed after it
        failure = _failure(error, step, link, draft, releases_folder(output, survey_year) / str(run_id))
        if failure is None:
            raise
        raise failure from None
    return {
        "survey_year": survey_year,
        "run_id": run_id,
        "path": str(draft),
        "release_path": str(copy),
        "released_at": at,
        "released_by": by,
        "previous_run_id": previous,
        "already": already,
        "cancelled_embargoes": cancelled,
        "checked": checked,
        "unchecked": unchecked,
        "difference": [finding.as_json() for finding in findings],
    }


def _guard(
    store: Path,
    survey_year: int,
    run_id: str,
    draft: Path,
    logged: list[dict[str, Any]],
    before: str | None,
    accept_difference: str | None,
) -> tuple[list[str], list[str], list[guard.Finding]]:
    """The differencing guard (module contract): (earlier releases compared, those that could not be, the
    findings accepted). A run released before (a rollback, a retry) is not checked; refused: DifferenceError."""
    earlier = list(dict.fromkeys([*(e["run_id"] for e in logged), *([before] if before else [])]))
    if run_id in earlier:
        return [], [], []
    earlier = [run for run in earlier if run != run_id]
    if not earlier:
        return [], [], []
    if guard_files(store, survey_year, run_id) is None and not (draft / guard.CONTRIBUTIONS).is_file():
        return [], earlier, []  # drafted before the guard: nothing to compare with
    folders, unchecked = {}, []
    for run in earlier:
        folder = guard_files(store, survey_year, run)
        if folder is None:
            unchecked.append(run)
        else:
            folders[run] = folder
    minimum = read_manifest(draft, or_empty=True).min_cell_size()
    findings = guard.check(draft, folders, minimum)
    if findings and not (accept_difference and accept_difference.strip()):
        raise DifferenceError(guard.refusal(survey_year, run_id, findings, minimum))
    return list(folders), unchecked, findings


def _release_quarantine(quarantine: Path, survey_year: int, run_id: str) -> None:
    """Point `<quarantine>/survey_year=<year>/rejected_evaluations.parquet` at the run's quarantine (or
    remove it when the run has none any more, so it never shows another run's rows)."""
    folder = year_folder(quarantine, survey_year)
    link = folder / QUARANTINE_FILE
    target = quarantine_folder(quarantine, survey_year, run_id) / QUARANTINE_FILE
    if target.is_file():
        remove_stray_links(folder, QUARANTINE_FILE)
        switch_link(link, target, folder)
    elif link.is_symlink() or link.is_file():
        link.unlink()


def _draft_name(copy: Path) -> str:
    manifest = read_manifest(copy, or_empty=True)
    if manifest.run_id is None or manifest.published_at is None:
        return "an unreadable draft"
    return f"draft {draft_name(manifest)}"


def _failure(error: Exception, step: str, link: Path, draft: Path, copy: Path) -> PublishError | None:
    """The paragraph for a release stopped by `error` during `step`: the draft IS released when the link
    points at its copy (whatever failed after the switch), else nothing was (an OSError; None for any other
    error before the switch, which is re-raised as it is)."""
    try:
        live = live_target(link)
    except OSError:
        live = None
    why = reason(error) if isinstance(error, OSError) else str(error) or type(error).__name__
    if live == Path(os.path.normpath(copy)):
        now = (
            f"The draft {draft} IS released: readers of {link} now see it (its readable copy {copy}); only {step} "
            f"failed ({why})."
        )
        advice = "Fix the cause and release the same run again to complete it."
        if isinstance(error, OSError):
            advice = "Fix the folder (free space, permissions) and release the same run again to complete it."
        return PublishError(f"{now} {advice}")
    if not isinstance(error, OSError):
        return None
    now = f"Nothing was released: {step} failed ({why}); " + (
        f"{link} still shows the release of {_draft_name(live)} ({live})."
        if live
        else f"no run of {link.name} is released."
    )
    return PublishError(f"{now} Fix the folder (free space, permissions) and release again.")


# The keep policy --------------------------------------------------------------------------------------


def collect_garbage(
    output: Path,
    quarantine: Path | None,
    store: Path,
    survey_year: int,
    keep: int,
    now: dt.datetime | None = None,
) -> list[Path]:
    """Apply the keep policy (module contract) to the year's drafts, quarantines and released copies, and
    remove what interrupted runs left (temporary folders); return what was removed."""
    now = _now(now)
    year_store = year_folder(store, survey_year)
    current, previous = _released_run(output, survey_year), previous_release(output, store, survey_year)
    protected = {current, previous, *pending_embargoes(store, survey_year, now)}
    young = now - dt.timedelta(days=KEEP_DAYS)
    others = []
    for folder, manifest in drafts(store, survey_year):
        run_id = manifest.run_id
        if run_id in protected or _published_at(manifest, now) > young:
            continue
        others.append((folder, run_id))
    doomed = others[max(keep, 0) :]
    removed = [folder for folder, _ in doomed]
    removed += [p for p in year_store.iterdir() if p.name.startswith(_TMP_PREFIX)] if year_store.is_dir() else []
    kept_guard = year_store / RELEASED_GUARD_FOLDER
    removed += [p for p in kept_guard.iterdir() if p.name.startswith(_TMP_PREFIX)] if kept_guard.is_dir() else []
    removed += _collect_copies(output, survey_year, {run for run in (current, previous) if run})
    for path in removed:
        _remove(path)
    if quarantine is not None:
        removed += _collect_quarantines(quarantine, survey_year, store, {run for _, run in doomed}, young)
    return removed


def _collect_copies(output: Path, survey_year: int, kept: set[str]) -> list[Path]:
    """The released copies under the output folder other than the current and the previous release's, and
    temporary leftovers (a killed release's). The link's own target is never among them."""
    folder = releases_folder(output, survey_year)
    if not folder.is_dir():
        return []
    live = live_target(year_folder(output, survey_year)) if year_folder(output, survey_year).is_symlink() else None
    return [
        entry
        for entry in folder.iterdir()
        if entry.name not in kept and (live is None or Path(os.path.normpath(entry)) != live)
    ]


def _published_at(manifest: Manifest, now: dt.datetime) -> dt.datetime:
    try:
        return parse_time(manifest.published_at)
    except (ReleaseError, TypeError):
        return now  # unreadable: treat as young, never delete by mistake


def _collect_quarantines(
    quarantine: Path, survey_year: int, store: Path, deleted_runs: set[str], young: dt.datetime
) -> list[Path]:
    folder = year_folder(quarantine, survey_year)
    if not folder.is_dir():
        return []
    kept_runs = {manifest.run_id for _, manifest in drafts(store, survey_year)}
    released = live_target(folder / QUARANTINE_FILE) if (folder / QUARANTINE_FILE).is_symlink() else None
    removed = []
    for entry in folder.iterdir():
        if entry.name.startswith(_TMP_PREFIX) and not entry.is_symlink():
            removed.append(entry)
            continue
        if not entry.is_dir() or entry.is_symlink():
            continue
        # a run killed while writing its quarantine left a temporary file (under the year lock, no run of
        # the year is writing now); a folder holding nothing else goes with it
        leftovers = list(entry.glob(f"{_TMP_PREFIX}*"))
        removed += leftovers
        if leftovers and not (entry / QUARANTINE_FILE).exists() and len(list(entry.iterdir())) == len(leftovers):
            removed.append(entry)
            continue
        if entry.name in kept_runs:
            continue
        if released is not None and released.parent == Path(os.path.normpath(entry)):
            continue
        modified = dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC)
        if entry.name in deleted_runs or modified < young:
            removed.append(entry)
    for path in removed:
        _remove(path)
    return removed


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


# The private store, and the move from the old layout ---------------------------------------------------

MIGRATION_LOCK = ".migration.lock"
MIGRATION_WAIT_SECONDS = 300


def prepare(output: Path, quarantine: Path, store: Path) -> tuple[Path, Path, Path, list[str]]:
    """Resolved (output, quarantine, store) checked apart (`publish.check_locations`, `check_store`), the
    store created owner-only, and an output folder of the old layout moved over (`migrate`) when there is
    one; the last item says what the move did (empty: nothing to move)."""
    output, quarantine = check_locations(output, quarantine)
    store = check_store(store, output, quarantine)
    for folder, flag in ((output, "--output"), (quarantine, "--quarantine"), (store, "--drafts")):
        require_folders(folder, flag)
    for name in (PUBLICATIONS, RELEASES, LOCKS):
        require_folders(output / name, "--output")
    moved = migrate(output, quarantine, store) if (output / PUBLICATIONS).is_dir() else []
    return output, quarantine, store, moved


def require_folders(path: Path, flag: str) -> None:
    """A `PublishError` (exit 5, one paragraph naming it) when `path` or one of its parents exists and is not
    a folder (a file where this pipeline keeps a folder); a folder that does not exist yet is fine."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return
        if folder.exists() or folder.is_symlink():
            raise PublishError(
                f"cannot use {path} ({flag}): {folder} is a file, not a folder. Nothing was published or released; "
                "what readers see is unchanged. Fix: move the file aside (it was not written by cro-awards) or "
                f"give {flag} another folder, then run again."
            )


def migrate(output: Path, quarantine: Path, store: Path) -> list[str]:
    """Move an output folder of the old layout to the private store, once, losing nothing (module contract):
    the ledger's and the release log's lines into the store's (each line once), each year's current release
    given its readable copy and its link switched to it, every draft moved into the store (owner-only),
    the old year locks' holder records (they name runs) removed, then `<output>/.publications` removed.
    Each step may be repeated: a move that was stopped is completed by the next one. Return what was done."""
    old = output / PUBLICATIONS
    private_dir(store)
    lock = FileLock(str(store / MIGRATION_LOCK), timeout=MIGRATION_WAIT_SECONDS)
    try:
        lock.acquire()
    except Timeout:
        raise PublishError(
            f"the output folder {output} is being moved to the drafts folder {store} by another process, which has "
            f"held it for {MIGRATION_WAIT_SECONDS} s; wait for it to finish, then run again."
        ) from None
    try:
        os.chmod(store / MIGRATION_LOCK, 0o600)
        if not old.is_dir():  # another process moved it meanwhile
            return []
        done: list[str] = []
        for name in (LEDGER, RELEASE_LOG):
            if (old / name).is_file():
                lines = [e for e in _entries((old / name).read_bytes()) if isinstance(e, dict)]
                for entry in lines:
                    append_json_line(store / name, entry, once=True)
                done.append(f"{len(lines)} line(s) of {name}")
        years = sorted(p for p in old.iterdir() if p.is_dir() and p.name.startswith("survey_year="))
        for year in years:
            done += _migrate_year(output, quarantine, store, year)
        locks = output / ".locks"
        if locks.is_dir():
            for holder in locks.glob("*.holder.json"):
                holder.unlink(missing_ok=True)
        shutil.rmtree(old)
        done.append(f"removed {old}")
        return done
    finally:
        lock.release()


def _migrate_year(output: Path, quarantine: Path, store: Path, old_year: Path) -> list[str]:
    done = []
    try:
        survey_year = int(old_year.name.split("=", 1)[1])
    except ValueError:
        return done
    link = year_folder(output, survey_year)
    live = live_target(link) if link.is_symlink() else None
    year_store = private_dir(year_folder(store, survey_year))
    moved = {}
    for folder in sorted(old_year.iterdir()):
        if folder.name.startswith(_TMP_PREFIX) or folder.is_symlink() or not folder.is_dir():
            continue
        manifest = read_manifest(folder, or_empty=True)
        if not manifest.run_id or not folder.name.endswith(f"-{manifest.run_id}"):
            continue
        moved[Path(os.path.normpath(folder))] = manifest
    if live is not None and live in moved:  # the current release: its copy first, so readers never lose it
        copy = write_release_copy(live, output)
        scratch = make_dirs(output / RELEASES, 0o755)
        switch_link(link, copy, scratch)
        done.append(f"survey year {survey_year}: the release (run {moved[live].run_id}) relinked to {copy}")
    for folder, manifest in moved.items():
        target = year_store / folder.name
        if not target.exists():
            temporary = year_store / f"{_TMP_PREFIX}{folder.name}"
            if temporary.exists():
                shutil.rmtree(temporary)
            try:
                os.rename(folder, target)
            except OSError:  # another file system: copy, then rename complete
                shutil.copytree(folder, temporary, symlinks=True)
                os.rename(temporary, target)
        make_private(target)
        if folder.exists():
            shutil.rmtree(folder)
        if (target / guard.CONTRIBUTIONS).is_file():
            keep_guard_files(target, store) if _was_released(store, survey_year, manifest.run_id) else None
        done.append(f"survey year {survey_year}: draft of run {manifest.run_id} moved to {target}")
    quarantine_year = year_folder(quarantine, survey_year)
    if quarantine_year.is_dir():
        make_private(quarantine_year)
    return done


def _was_released(store: Path, survey_year: int, run_id: str) -> bool:
    return any(e["event"] == RELEASED and e["run_id"] == run_id for e in release_log(store, survey_year))
