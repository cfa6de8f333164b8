"""Publish: a survey year's tables and manifest, all or nothing; the quarantine, outside the output.

Layout (data contract section 4):

    <output>/survey_year=<year>                 a symbolic link to the live publication
    <output>/.publications/survey_year=<year>/<published_at>-<run_id>/
        attribute_scores.parquet, composite_scores.parquet, awards.parquet, report.html, _manifest.json
    <output>/.publications/published_exports.jsonl   the ledger: one line per export ever published
    <quarantine>/survey_year=<year>/rejected_evaluations.parquet

Contract: each publication is written once into a fresh folder (under a temporary name, renamed when
complete and synced), then the year's link is switched with one atomic rename. A reader following
`<output>/survey_year=<year>` sees the previous complete publication or the new one, never a mix;
any failure before the switch leaves the previous one live. The export is then recorded in the
ledger, and older publications beyond the settings' `keep_publications` and leftovers of interrupted
runs are removed.

Nothing but the years' links is ever created at the output's top level, not even for a moment:
readers glob `<output>/*/<table>.parquet`, and a glob's `*` matches dot-entries too. Temporary
folders live in `.publications/survey_year=<year>/`, the fresh link is made in `.publications/` and
renamed into place; the year locks live in `.locks/` (`cro_awards.locks`).

`publish` is idempotent for one run (the same manifest): a retry finds what its earlier attempt
finished (the renamed publication, the switched link, the ledger line) and does only what remains.
Every error says what is live at the moment it is raised, read from the link itself.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cro_awards.checkpoints import checkpoint
from cro_awards.errors import PublishError

MANIFEST = "_manifest.json"
PUBLICATIONS = ".publications"
LEDGER = "published_exports.jsonl"
_TMP_PREFIX = ".tmp-"
_SWITCHING, _RECORDING, _COLLECTING = "switching the link", "recording the export in the ledger", "collecting garbage"

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def year_folder(root: Path, survey_year: int) -> Path:
    return root / f"survey_year={survey_year}"


def check_locations(output: Path, quarantine: Path) -> tuple[Path, Path]:
    """Resolved (output, quarantine); refuse a quarantine inside the output (it is confidential)."""
    output_resolved, quarantine_resolved = output.resolve(), quarantine.resolve()
    if quarantine_resolved == output_resolved or quarantine_resolved.is_relative_to(output_resolved):
        raise PublishError(
            f"the quarantine folder {quarantine} is inside the output folder {output}: quarantined rows are "
            "confidential and must never be published. Give --quarantine a folder outside --output."
        )
    return output_resolved, quarantine_resolved


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync(path: Path) -> None:
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")
    _sync(path)


def _write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8")
    _sync(path)


def _reason(error: OSError) -> str:
    return _REASONS.get(error.errno, error.strerror or str(error))


def _explain(error: OSError, what: str, where: Path) -> PublishError:
    """The error of a write made before anything of the run is published (the quarantine's)."""
    return PublishError(
        f"cannot {what} in {where}: {_reason(error)}. Nothing new was published; the previous publication "
        "(if any) is still live. Free space or fix the folder's permissions, then run again."
    )


def write_quarantine(rejected: pa.Table, quarantine: Path, survey_year: int) -> Path:
    """Write the year's quarantine file atomically (temporary name, then rename); return its path."""
    folder = year_folder(quarantine, survey_year)
    target = folder / "rejected_evaluations.parquet"
    temporary = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}.parquet"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob(f"{_TMP_PREFIX}*"):
            leftover.unlink(missing_ok=True)
        _write_parquet(rejected, temporary)
        checkpoint("quarantine_temporary_written")
        os.replace(temporary, target)
        _fsync_dir(folder)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _explain(error, "write the quarantine", folder) from None
    return target


def publish(
    tables: dict[str, pa.Table],
    manifest: dict[str, Any],
    output: Path,
    survey_year: int,
    run_id: str,
    keep: int = 2,
    documents: dict[str, str] | None = None,
) -> Path:
    """Publish `tables`, `documents` (file name -> text, e.g. report.html) and `manifest` for `survey_year`
    under `output`, all in one publication (see module contract). Calling it again for the same run
    (a retry) completes what an earlier attempt left undone."""
    documents = documents or {}
    link = year_folder(output, survey_year)
    store = output / PUBLICATIONS / link.name
    published_at = manifest["published_at"]
    name = f"{published_at.replace(':', '').replace('-', '')}-{run_id}"
    final = store / name
    files = {
        table_name: {"file": f"{table_name}.parquet", "rows": table.num_rows} for table_name, table in tables.items()
    }
    manifest = {**manifest, "tables": files, "documents": sorted(documents)}
    if link.exists() and not link.is_symlink():
        raise PublishError(
            f"{link} is a {'folder' if link.is_dir() else 'file'}, not the link this pipeline publishes "
            "through; nothing was published. Move it aside (it was not written by cro-awards, or by an older "
            "layout) and run again."
        )
    step = "removing stray temporary links"
    try:
        _remove_stray_links(output, link.name)
        step = "writing the publication"
        if not _holds_publication(final, manifest, link):
            _write_publication(tables, documents, manifest, store, name)
        step = _SWITCHING
        previous = _switch_link(link, final)
        step = _RECORDING
        record_published_export(output, manifest)
        step = _COLLECTING
        _collect_garbage(store, live=final, previous=previous, keep=keep)
    except OSError as error:
        raise _failure(error, step, link, final, output) from None
    return final


def _write_publication(
    tables: dict[str, pa.Table], documents: dict[str, str], manifest: dict[str, Any], store: Path, name: str
) -> None:
    """Write the publication into `.tmp-<name>`, sync it and rename it `<name>`."""
    temporary = store / f"{_TMP_PREFIX}{name}"
    if temporary.is_symlink() or temporary.is_file():
        temporary.unlink()
    elif temporary.exists():  # an earlier attempt of this same run (a retry) stopped half-way
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    try:
        for table_name, table in tables.items():
            _write_parquet(table, temporary / manifest["tables"][table_name]["file"])
            checkpoint("publication_table_written")
        for file_name, text in documents.items():
            _write_text(text, temporary / file_name)
        _write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", temporary / MANIFEST)
        _fsync_dir(temporary)
        checkpoint("publication_complete")
        os.rename(temporary, store / name)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_dir(store)
    _fsync_dir(store.parent)
    checkpoint("publication_renamed")


def _holds_publication(final: Path, manifest: dict[str, Any], link: Path) -> bool:
    """True when `final` already holds this very publication (an earlier attempt of the run renamed it
    complete); False when it does not exist. Anything else under that name is refused, untouched."""
    if not final.exists() and not final.is_symlink():
        return False
    try:
        stored = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
        same = stored == json.loads(json.dumps(manifest))
        present = all((final / entry["file"]).is_file() for entry in manifest["tables"].values())
        present = present and all((final / document).is_file() for document in manifest["documents"])
    except (OSError, ValueError):
        same = present = False
    if same and present:
        return True
    raise PublishError(
        f"cannot publish: {final} already exists but does not hold this run's complete publication; it was "
        f"left untouched. {_live_now(link, final)[1]} Move that folder aside, then run again."
    )


def _remove_stray_links(output: Path, link_name: str) -> None:
    """Remove the fresh links of this year that killed runs left behind (in `.publications/`, and at the
    top level where older versions made them). Other years' are theirs: one of them may be mid-switch."""
    pattern = f"{_TMP_PREFIX}{link_name}-*"
    for stray in [*(output / PUBLICATIONS).glob(pattern), *output.glob(pattern)]:
        if stray.is_symlink():
            stray.unlink(missing_ok=True)


def _live_target(link: Path) -> Path | None:
    """The folder `link` points at now (normalised, not resolved), None when there is no link; an OSError
    when the link cannot be read."""
    try:
        text = os.readlink(link)
    except FileNotFoundError:
        return None
    return Path(os.path.normpath(link.parent / text))


def _switch_link(link: Path, final: Path) -> Path | None:
    """Point `link` at `final` with one atomic rename of a fresh link over it (made in `.publications/`,
    never at the output's top level); return the publication it pointed at before (None: no link, or
    already `final`). The fresh link's relative target is written relative to `link`'s folder, where it
    ends up (in `.publications/` it dangles, so no glob follows it there)."""
    target = Path(os.path.relpath(final, link.parent))
    previous = _live_target(link)
    if previous == Path(os.path.normpath(final)):
        previous = None  # an earlier attempt of this run switched it already
    else:
        fresh = link.parent / PUBLICATIONS / f"{_TMP_PREFIX}{link.name}-{uuid.uuid4().hex}"
        os.symlink(target, fresh, target_is_directory=True)
        checkpoint("link_created")
        try:
            os.replace(fresh, link)
        except OSError:
            fresh.unlink(missing_ok=True)
            raise
    _fsync_dir(link.parent)
    checkpoint("link_switched")
    return previous


def _collect_garbage(store: Path, live: Path, previous: Path | None, keep: int) -> None:
    """Remove interrupted publications and complete ones beyond `keep`: the live one is always kept, then
    the one live before it, then the newest others (a publication renamed by a killed run never went
    live: it goes before the previous live one)."""
    live, previous = Path(os.path.normpath(live)), previous and Path(os.path.normpath(previous))
    complete = sorted(
        (
            Path(os.path.normpath(p))
            for p in store.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(_TMP_PREFIX)
        ),
        reverse=True,
    )
    ranked = [live, *([previous] if previous in complete else []), *(p for p in complete if p not in (live, previous))]
    doomed = [p for p in ranked[max(keep, 1) :] if p != live]
    doomed += [p for p in store.iterdir() if p.name.startswith(_TMP_PREFIX)]
    for path in doomed:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _live_now(link: Path, final: Path) -> tuple[bool, str]:
    """(whether `final` is live, a sentence saying what is live for the year), read from its link now."""
    try:
        live = _live_target(link)
    except OSError as error:
        return False, f"Which publication is live could not be read ({link}: {_reason(error)}); check where it points."
    if live is None:
        return False, f"Nothing new was published; no publication of {link.name} is live in {link.parent}."
    if live == Path(os.path.normpath(final)):
        return True, f"The new publication {final} IS live: {link} points at it."
    return False, f"Nothing new was published; the previous publication {live} is still live."


def _failure(error: OSError, step: str, link: Path, final: Path, output: Path) -> PublishError:
    """A PublishError that tells the truth about what is live, read from the link once `step` failed."""
    reason = _reason(error)
    ledger = output / PUBLICATIONS / LEDGER
    is_live, live = _live_now(link, final)
    if not is_live:
        return PublishError(
            f"cannot publish in {output}: {step} failed: {reason}. {live} "
            "Free space or fix the folder's permissions, then run again."
        )
    if step == _COLLECTING:
        return PublishError(
            f"published, and recorded in the ledger {ledger}, but not cleaned up: {live} Only removing older "
            f"publications from {final.parent} failed: {reason}. They take space and nothing else; the next "
            "publish removes them. Fix the folder's permissions."
        )
    if step == _RECORDING:
        what = f"Only recording it in the ledger {ledger} failed: {reason}."
    elif step == _SWITCHING:  # renamed into place, then its sync failed
        what = (
            f"Syncing the switched link to disk failed: {reason} (until it is synced, a power cut could bring "
            f"the previous publication back), so the export was not recorded in the ledger {ledger}."
        )
    else:
        what = f"Then {step} failed: {reason}, so the export was not recorded in the ledger {ledger}."
    return PublishError(
        f"published, but not recorded: {live} {what} Until it is recorded, the inbox (cro-awards-inbox) does not "
        "know this export was published and may publish it again (a new publication of the same export). Make "
        f"{ledger} a writable file again (free space, fix permissions), then run the export again: it is "
        "published anew and recorded. (The publish task's automatic retries record this very publication if "
        "the problem passes meanwhile.)"
    )


def _ledger_entry(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "sha256": manifest["export"]["sha256"],
        "file_name": manifest["export"]["file_name"],
        "survey_year": manifest["survey_year"],
        "run_id": manifest["run_id"],
        "published_at": manifest["published_at"],
    }


def _entries(content: bytes) -> list[Any]:
    entries = []
    for line in content.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def record_published_export(output: Path, manifest: dict[str, Any]) -> None:
    """Append the export just published to the ledger of every export ever published (one JSON line),
    once: a retry of the same run finds its line and adds nothing. A torn last line (a write cut short)
    is ended first, so it never swallows the new one."""
    entry = _ledger_entry(manifest)
    path = output / PUBLICATIONS / LEDGER
    with path.open("a+b") as stream:  # one descriptor to read, append and sync
        stream.seek(0)
        content = stream.read()
        if entry in _entries(content):
            os.fsync(stream.fileno())  # an earlier attempt wrote it; its sync may have failed
            return
        torn = bool(content) and not content.endswith(b"\n")
        stream.write((b"\n" if torn else b"") + (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        stream.flush()
        os.fsync(stream.fileno())


def published_exports(output: Path) -> set[str]:
    """SHA-256 of every export ever published under `output` (a torn line is ignored)."""
    path = output / PUBLICATIONS / LEDGER
    if not path.exists():
        return set()
    hashes = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            hashes.add(json.loads(line)["sha256"])
        except (ValueError, KeyError, TypeError):
            continue
    return hashes


def read_publication(output: Path, survey_year: int, names: tuple[str, ...]) -> dict[str, pa.Table] | None:
    """A year's live published tables, or None when the year was never published there."""
    folder = year_folder(output, survey_year)
    if not (folder / MANIFEST).is_file():
        return None
    return {name: pq.read_table(folder / f"{name}.parquet") for name in names}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
