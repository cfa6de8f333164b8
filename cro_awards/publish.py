"""Drafts: a run's tables, reports and manifest, written once, all or nothing; its quarantine beside.

Layout (docs/contract.md, "What comes out"; the release is `cro_awards.releases`'s job):

    <output>/survey_year=<year>                 a symbolic link to the year's RELEASE (one of its drafts)
    <output>/.publications/survey_year=<year>/<published_at>-<run_id>/
        attribute_scores.parquet, composite_scores.parquet, awards.parquet,
        report.html, draft_report.html, _manifest.json             one DRAFT per successful run
    <output>/.publications/published_exports.jsonl   the ledger: one line per export ever drafted
    <output>/.publications/releases.jsonl            the release log (`cro_awards.releases`)
    <quarantine>/survey_year=<year>/<run_id>/rejected_evaluations.parquet     every run's own
    <quarantine>/survey_year=<year>/rejected_evaluations.parquet   a link to the released run's

Contract: `write_draft` writes a publication folder under a temporary name, syncs it and renames it
complete; it never changes what `<output>/survey_year=<year>` shows. The export is then recorded in
the ledger (the inbox's memory of what it has run). A run's quarantine goes to its own folder, so a
failed run never touches the released run's. Nothing but the years' links is ever created at the
output's top level, not even for a moment: readers glob `<output>/*/<table>.parquet`, and a glob's `*`
may match dot-entries, so temporary folders and fresh links live inside `.publications/`.

`write_draft` is idempotent for one run (the same manifest): a retry finds what its earlier attempt
finished (the renamed folder, the ledger line) and does only what remains.
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
QUARANTINE_FILE = "rejected_evaluations.parquet"
PUBLICATIONS = ".publications"
LEDGER = "published_exports.jsonl"
_TMP_PREFIX = ".tmp-"

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


def _explain(error: OSError, what: str, where: Path) -> PublishError:
    """The error of a write made before anything of the run is published (the quarantine's)."""
    return PublishError(
        f"cannot {what} in {where}: {reason(error)}. Nothing was written for this run; the release and the "
        "drafts are unchanged. Free space or fix the folder's permissions, then run again."
    )


def quarantine_folder(quarantine: Path, survey_year: int, run_id: str) -> Path:
    """Where run `run_id` writes its quarantine: `<quarantine>/survey_year=<year>/<run_id>/`."""
    return year_folder(quarantine, survey_year) / run_id


def write_quarantine(rejected: pa.Table, quarantine: Path, survey_year: int, run_id: str) -> Path:
    """Write run `run_id`'s quarantine file atomically (temporary name, then rename) into its own folder;
    return its path. The released run's quarantine (`cro_awards.releases`) is never touched."""
    folder = quarantine_folder(quarantine, survey_year, run_id)
    target = folder / QUARANTINE_FILE
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


def drafts(output: Path, survey_year: int) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, manifest) of every complete draft of the year, newest first: the folders of
    `.publications/survey_year=<year>/` named after their manifest's run id (temporary ones left out)."""
    store = output / PUBLICATIONS / year_folder(output, survey_year).name
    if not store.is_dir():
        return []
    found = []
    for folder in store.iterdir():
        if folder.name.startswith(_TMP_PREFIX) or folder.is_symlink() or not folder.is_dir():
            continue
        manifest = read_manifest(folder)
        if manifest.get("run_id") and folder.name.endswith(f"-{manifest['run_id']}"):
            found.append((Path(os.path.normpath(folder)), manifest))
    return sorted(found, key=lambda pair: (pair[1].get("published_at", ""), pair[0].name), reverse=True)


def find_draft(output: Path, survey_year: int, run_id: str) -> Path | None:
    """The complete draft folder of run `run_id` for `survey_year`, or None. `run_id` is matched against
    the drafts' manifests, never joined into a path (it may come from a form in the UI)."""
    return next((folder for folder, manifest in drafts(output, survey_year) if manifest["run_id"] == run_id), None)


def read_manifest(folder: Path) -> dict[str, Any]:
    """A publication folder's `_manifest.json`, or {} when it is missing or unreadable."""
    try:
        value = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def draft_name(manifest: dict[str, Any]) -> str:
    """The draft folder's name: `<published_at, compact>-<run_id>` (sorts by time)."""
    return f"{manifest['published_at'].replace(':', '').replace('-', '')}-{manifest['run_id']}"


def write_draft(
    tables: dict[str, pa.Table],
    manifest: dict[str, Any],
    output: Path,
    documents: dict[str, str] | None = None,
) -> Path:
    """Write `tables` (already described: `cro_awards.columns`), `documents` (file name -> text) and
    `manifest` as the draft of run `manifest["run_id"]` for `manifest["survey_year"]`; record the export in
    the ledger; return the draft's folder (module contract). What readers see is not changed."""
    documents = documents or {}
    survey_year, run_id = manifest["survey_year"], manifest["run_id"]
    link = year_folder(output, survey_year)
    store = output / PUBLICATIONS / link.name
    name = draft_name(manifest)
    final = store / name
    files = {
        table_name: {"file": f"{table_name}.parquet", "rows": table.num_rows} for table_name, table in tables.items()
    }
    manifest = {**manifest, "tables": files, "documents": sorted(documents)}
    if link.exists() and not link.is_symlink():
        raise PublishError(
            f"{link} is a {'folder' if link.is_dir() else 'file'}, not the link this pipeline releases "
            "through; nothing was written. Move it aside (it was not written by cro-awards, or by an older "
            "layout) and run again."
        )
    step = "writing the draft"
    try:
        if not _holds_publication(final, manifest):
            _write_publication(tables, documents, manifest, store, name)
        step = "recording the export in the ledger"
        record_published_export(output, manifest)
    except OSError as error:
        written = "" if step == "writing the draft" else f" The draft {final} is complete, but not recorded."
        raise PublishError(
            f"cannot write the draft of run {run_id} in {output}: {step} failed: {reason(error)}.{written} "
            "What readers see (the release) is unchanged. Free space or fix the folder's permissions, then run "
            "again."
        ) from None
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


def _holds_publication(final: Path, manifest: dict[str, Any]) -> bool:
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
        f"cannot write the draft: {final} already exists but does not hold this run's complete draft; it was "
        "left untouched, and so is the release. Move that folder aside, then run again."
    )


def live_target(link: Path) -> Path | None:
    """The folder `link` points at now (normalised, not resolved), None when there is no link; an OSError
    when the link cannot be read."""
    try:
        text = os.readlink(link)
    except FileNotFoundError:
        return None
    return Path(os.path.normpath(link.parent / text))


def switch_link(link: Path, target: Path, scratch: Path) -> Path | None:
    """Point `link` at `target` with one atomic rename of a fresh link (made in `scratch`, a folder on the
    same file system that no reader globs) over it; return what it pointed at before (None: no link, or
    already `target`). The relative target is written relative to `link`'s folder, where it ends up (in
    `scratch` it dangles, so no glob follows it there). Whatever stops it, `link` is the old or the new."""
    relative = Path(os.path.relpath(target, link.parent))
    previous = live_target(link) if link.is_symlink() else None
    if previous == Path(os.path.normpath(target)):
        previous = None  # an earlier attempt switched it already
    else:
        fresh = scratch / f"{_TMP_PREFIX}{link.name}-{uuid.uuid4().hex}"
        os.symlink(relative, fresh, target_is_directory=target.is_dir())
        checkpoint("link_created")
        try:
            os.replace(fresh, link)
        except OSError:
            fresh.unlink(missing_ok=True)
            raise
    _fsync_dir(link.parent)
    checkpoint("link_switched")
    return previous


def remove_stray_links(scratch: Path, link_name: str) -> None:
    """Remove the fresh links named after `link_name` that killed runs left in `scratch`. Other links'
    are theirs: one of them may be mid-switch."""
    for stray in scratch.glob(f"{_TMP_PREFIX}{link_name}-*"):
        if stray.is_symlink():
            stray.unlink(missing_ok=True)


def reason(error: OSError) -> str:
    """What an OSError means, in words."""
    return _REASONS.get(error.errno, error.strerror or str(error))


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


def append_json_line(path: Path, entry: dict[str, Any], *, once: bool = False) -> bool:
    """Append `entry` to the JSON-lines file `path` as one line and sync it; return whether it was written.
    A torn last line (a write cut short) is ended first, so it never swallows the new one. With `once`,
    an entry already in the file is not written again (it is synced: the earlier write's sync may have
    failed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as stream:  # one descriptor to read, append and sync
        stream.seek(0)
        content = stream.read()
        if once and entry in _entries(content):
            os.fsync(stream.fileno())
            return False
        torn = bool(content) and not content.endswith(b"\n")
        stream.write((b"\n" if torn else b"") + (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        stream.flush()
        os.fsync(stream.fileno())
    return True


def record_published_export(output: Path, manifest: dict[str, Any]) -> None:
    """Append the export just drafted to the ledger of every export ever run to a draft (one JSON line),
    once: a retry of the same run finds its line and adds nothing."""
    append_json_line(output / PUBLICATIONS / LEDGER, _ledger_entry(manifest), once=True)


def published_exports(output: Path) -> set[str]:
    """SHA-256 of every export ever published under `output` (a torn line is ignored)."""
    try:
        content = (output / PUBLICATIONS / LEDGER).read_bytes()
    except FileNotFoundError:
        return set()
    return {
        entry["sha256"]
        for entry in _entries(content)
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
    }


def read_publication(output: Path, survey_year: int, names: tuple[str, ...]) -> dict[str, pa.Table] | None:
    """A year's released tables, or None when no run of the year was ever released there."""
    folder = year_folder(output, survey_year)
    if not (folder / MANIFEST).is_file():
        return None
    return {name: pq.read_table(folder / f"{name}.parquet") for name in names}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
