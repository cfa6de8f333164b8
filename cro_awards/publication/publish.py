"""Drafts: a run's tables, reports, manifest and contributions, written once, all or nothing, in a
PRIVATE store; its quarantine beside; and the readable copies releases make under the output folder.

Layout (docs/contract.md, "Drafts and releases"; the release itself is `cro_awards.publication.releases`'s job):

    <drafts>/                                   the private store (0700 folders, 0600 files): nothing of it
                                                 is readable by anyone but its owner
        survey_year=<year>/<published_at>-<run_id>/
            attribute_scores.parquet, composite_scores.parquet, awards.parquet,
            report.html, draft_report.html, _manifest.json          one DRAFT per successful run
            contributions.parquet, cell_digests.parquet             what the differencing guard needs
        survey_year=<year>/.released/<run_id>/   the guard's files of every run ever released (kept)
        published_exports.jsonl                 the ledger: one line per export ever drafted
        releases.jsonl                          the release log, embargoes included (`cro_awards.publication.releases`)
    <output>/survey_year=<year>                 a symbolic link to the year's RELEASE:
    <output>/.releases/survey_year=<year>/<run_id>/   a readable copy (0755/0644) of a released draft's
                                                 public files: the three tables, report.html, _manifest.json
    <output>/.releases/.tmp-survey_year=<year>-<random>   a fresh link, for a moment (renamed over the link)
    <quarantine>/survey_year=<year>/<run_id>/rejected_evaluations.parquet     every run's own (0700/0600)
    <quarantine>/survey_year=<year>/rejected_evaluations.parquet   a link to the released run's

Contract: `write_draft` writes a draft under a temporary name in the store, syncs it and renames it
complete; it never writes under the output folder. The export is then recorded in the ledger (the
inbox's memory of what it has run). A run's quarantine goes to its own folder, so a failed run never
touches the released run's. Modes are set explicitly (never left to the umask). `write_release_copy`
makes the readable copy a release switches the year's link to. Nothing but the years' links is ever
created at the output's top level, not even for a moment: readers glob `<output>/*/<table>.parquet`,
and a glob's `*` may match dot-entries, so copies and fresh links live two levels down in `.releases/`.

`write_draft` is idempotent for one run (the same manifest): a retry finds what its earlier attempt
finished (the renamed folder, the ledger line) and does only what remains.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cro_awards.disclosure import guard
from cro_awards.engine.checkpoints import checkpoint
from cro_awards.engine.errors import PublishError
from cro_awards.record.manifest import Manifest, read_manifest

MANIFEST = guard.MANIFEST
QUARANTINE_FILE = "rejected_evaluations.parquet"
PUBLICATIONS = ".publications"
"""The old layout's folder of drafts and logs inside the output folder (moved out by `releases.migrate`)."""
RELEASES = ".releases"
"""Under the output folder: the readable copies of released drafts, and the fresh links."""
LEDGER = "published_exports.jsonl"
CONTRIBUTIONS = "contributions.parquet"
"""A draft's private evaluation-level contributions (`cro_awards.disclosure.guard`)."""
DIGESTS = "cell_digests.parquet"
"""A draft's private per-row digest of its contributions (`cro_awards.disclosure.guard`)."""
PUBLIC_DOCUMENTS = ("report.html",)
"""The documents a release makes readable (never draft_report.html)."""
GUARD_FILES = (CONTRIBUTIONS, DIGESTS, MANIFEST)
"""What the differencing guard keeps of every released run."""
RELEASED_GUARD = ".released"
"""`<drafts>/survey_year=<year>/.released/<run_id>/`: the guard's files of each run ever released."""
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
PUBLIC_DIR, PUBLIC_FILE = 0o755, 0o644
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


def check_store(store: Path, output: Path, quarantine: Path) -> Path:
    """The private store of drafts, resolved; refused inside (or around) the output folder, which readers are
    given, and apart from the quarantine (each keeps its own folders)."""
    resolved = store.resolve()
    for other, flag in ((output.resolve(), "--output"), (quarantine.resolve(), "--quarantine")):
        if resolved == other or resolved.is_relative_to(other) or other.is_relative_to(resolved):
            raise PublishError(
                f"the drafts folder {store} and the folder {other} ({flag}) overlap: drafts are private and are "
                f"kept apart from {'what readers are given' if flag == '--output' else 'the quarantine'}. "
                "Give --drafts (CRO_AWARDS_DRAFTS) a folder outside both."
            )
    return resolved


def make_dirs(path: Path, mode: int) -> Path:
    """Create `path` and its missing parents, each with exactly `mode` (not the umask's); return `path`.
    Folders that exist are left as they are."""
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        os.chmod(folder, mode)
    return path


def private_dir(path: Path) -> Path:
    """`path` created if missing, and made owner-only (0700) whether new or not; its parents, when
    created, too."""
    make_dirs(path, PRIVATE_DIR)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def make_private(path: Path) -> None:
    """Make `path` and everything under it owner-only: folders 0700, files 0600 (links are left alone)."""
    if path.is_symlink():
        return
    if path.is_file():
        os.chmod(path, PRIVATE_FILE)
        return
    os.chmod(path, PRIVATE_DIR)
    for folder, folders, files in os.walk(path):
        for name in folders:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), PRIVATE_DIR)
        for name in files:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), PRIVATE_FILE)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _create(path: Path, mode: int):
    """A new file `path` (truncated if it exists) open for writing, with exactly `mode` from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)
    return os.fdopen(descriptor, "wb")


def _write_parquet(table: pa.Table, path: Path, mode: int = PRIVATE_FILE) -> None:
    with _create(path, mode) as stream:
        pq.write_table(table, stream, compression="zstd")
        stream.flush()
        os.fsync(stream.fileno())


def _write_text(text: str, path: Path, mode: int = PRIVATE_FILE) -> None:
    with _create(path, mode) as stream:
        stream.write(text.encode("utf-8"))
        stream.flush()
        os.fsync(stream.fileno())


def _copy_file(source: Path, target: Path, mode: int) -> None:
    with source.open("rb") as reading, _create(target, mode) as writing:
        shutil.copyfileobj(reading, writing, 1 << 20)
        writing.flush()
        os.fsync(writing.fileno())


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
    return its path. The released run's quarantine (`cro_awards.publication.releases`) is never touched."""
    folder = quarantine_folder(quarantine, survey_year, run_id)
    target = folder / QUARANTINE_FILE
    temporary = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}.parquet"
    try:
        make_dirs(quarantine, PRIVATE_DIR)
        private_dir(folder.parent)
        private_dir(folder)
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


def drafts(store: Path, survey_year: int) -> list[tuple[Path, Manifest]]:
    """(folder, manifest) of every complete draft of the year in the private store, newest first: the folders
    of `<drafts>/survey_year=<year>/` named after their manifest's run id (temporary ones left out)."""
    store = year_folder(store, survey_year)
    if not store.is_dir():
        return []
    found = []
    for folder in store.iterdir():
        if folder.name.startswith(_TMP_PREFIX) or folder.is_symlink() or not folder.is_dir():
            continue
        manifest = read_manifest(folder, or_empty=True)
        if manifest.run_id and folder.name.endswith(f"-{manifest.run_id}"):
            found.append((Path(os.path.normpath(folder)), manifest))
    return sorted(found, key=lambda pair: (pair[1].published_at or "", pair[0].name), reverse=True)


def find_draft(store: Path, survey_year: int, run_id: str) -> Path | None:
    """The complete draft folder of run `run_id` for `survey_year`, or None. `run_id` is matched against
    the drafts' manifests, never joined into a path (it may come from a form in the UI)."""
    return next((folder for folder, manifest in drafts(store, survey_year) if manifest.run_id == run_id), None)


def draft_name(manifest: Manifest) -> str:
    """The draft folder's name: `<published_at, compact>-<run_id>` (sorts by time)."""
    return f"{str(manifest.published_at).replace(':', '').replace('-', '')}-{manifest.run_id}"


def write_draft(
    tables: dict[str, pa.Table],
    manifest: Manifest | Mapping[str, Any],
    store: Path,
    documents: dict[str, str] | None = None,
    contributions: pa.Table | None = None,
    *,
    output: Path | None = None,
) -> Path:
    """Write `tables` (already described: `cro_awards.publication.columns`), `documents` (file name -> text),
    `manifest` and, when given, `contributions` (with their per-row digests, `cro_awards.disclosure.guard`) as the
    draft of run `manifest.run_id` for `manifest.survey_year` in the private store `store`; record the
    export in the ledger; return the draft's folder (module contract). Nothing is written under `output`
    (given, a real folder where its year's link belongs is refused first)."""
    documents = documents or {}
    manifest = Manifest.of(manifest)
    survey_year, run_id = manifest.survey_year, manifest.run_id
    year_store = year_folder(store, survey_year)
    name = draft_name(manifest)
    final = year_store / name
    files = {
        table_name: {"file": f"{table_name}.parquet", "rows": table.num_rows} for table_name, table in tables.items()
    }
    manifest = manifest.with_(tables=files, documents=sorted(documents))
    link = year_folder(output, survey_year) if output is not None else None
    if link is not None and link.exists() and not link.is_symlink():
        raise PublishError(
            f"{link} is a {'folder' if link.is_dir() else 'file'}, not the link this pipeline releases "
            "through; nothing was written. Move it aside (it was not written by cro-awards, or by an older "
            "layout) and run again."
        )
    private = {}
    if contributions is not None:
        encoded = guard.encode(contributions)
        private = {CONTRIBUTIONS: encoded, DIGESTS: guard.digests(encoded)}
    step = "writing the draft"
    try:
        if not _holds_publication(final, manifest, private):
            _write_publication(tables, documents, manifest, private, store, year_store, name)
        step = "recording the export in the ledger"
        record_published_export(store, manifest)
    except OSError as error:
        written = "" if step == "writing the draft" else f" The draft {final} is complete, but not recorded."
        raise PublishError(
            f"cannot write the draft of run {run_id} in {store}: {step} failed: {reason(error)}.{written} "
            "What readers see (the release) is unchanged. Free space or fix the folder's permissions, then run "
            "again."
        ) from None
    return final


def _write_publication(
    tables: dict[str, pa.Table],
    documents: dict[str, str],
    manifest: Manifest,
    private: dict[str, pa.Table],
    store: Path,
    year_store: Path,
    name: str,
) -> None:
    """Write the publication into `.tmp-<name>` (owner-only), sync it and rename it `<name>`."""
    make_dirs(store, PRIVATE_DIR)
    private_dir(year_store)
    temporary = year_store / f"{_TMP_PREFIX}{name}"
    if temporary.is_symlink() or temporary.is_file():
        temporary.unlink()
    elif temporary.exists():  # an earlier attempt of this same run (a retry) stopped half-way
        shutil.rmtree(temporary)
    temporary.mkdir(PRIVATE_DIR)
    os.chmod(temporary, PRIVATE_DIR)
    try:
        for table_name, table in tables.items():
            _write_parquet(table, temporary / manifest.tables[table_name].file)
            checkpoint("publication_table_written")
        for file_name, table in private.items():
            _write_parquet(table, temporary / file_name)
        for file_name, text in documents.items():
            _write_text(text, temporary / file_name)
        _write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=False) + "\n", temporary / MANIFEST)
        _fsync_dir(temporary)
        checkpoint("publication_complete")
        os.rename(temporary, year_store / name)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_dir(year_store)
    _fsync_dir(store)
    checkpoint("publication_renamed")


def _holds_publication(final: Path, manifest: Manifest, private: dict[str, Any] | None = None) -> bool:
    """True when `final` already holds this very publication (an earlier attempt of the run renamed it
    complete); False when it does not exist. Anything else under that name is refused, untouched."""
    if not final.exists() and not final.is_symlink():
        return False
    try:
        stored = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
        same = stored == manifest.to_json()
        present = all((final / entry.file).is_file() for entry in manifest.tables.values())
        present = present and all((final / document).is_file() for document in manifest.documents)
        present = present and all((final / file_name).is_file() for file_name in private or {})
    except (OSError, ValueError):
        same = present = False
    if same and present:
        return True
    raise PublishError(
        f"cannot write the draft: {final} already exists but does not hold this run's complete draft; it was "
        "left untouched, and so is the release. Move that folder aside, then run again."
    )


# Releases' readable copies ----------------------------------------------------------------------------


def releases_folder(output: Path, survey_year: int) -> Path:
    """`<output>/.releases/survey_year=<year>/`: the readable copies of the year's released drafts."""
    return output / RELEASES / year_folder(output, survey_year).name


def public_manifest(manifest: Manifest) -> Manifest:
    """The manifest a release shows: the draft's, listing only the documents released with it."""
    return manifest.with_(documents=[d for d in manifest.documents if d in PUBLIC_DOCUMENTS])


def _public_files(draft: Path, manifest: Manifest) -> list[str]:
    tables = [entry.file for entry in manifest.tables.values()]
    return [*tables, *public_manifest(manifest).documents]


def _holds_copy(folder: Path, manifest: Manifest, draft: Path) -> bool:
    try:
        stored = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = public_manifest(manifest).to_json()
    return stored == wanted and all((folder / name).is_file() for name in _public_files(draft, manifest))


def write_release_copy(draft: Path, output: Path) -> Path:
    """A readable copy (folders 0755, files 0644) of the draft's public files (the tables, report.html and
    the manifest listing only those) at `<output>/.releases/survey_year=<year>/<run_id>/`, written under a
    temporary name owner-only, synced, opened to readers and renamed; return it. A copy already there
    (a retry, a rollback to a release still kept) is used as it is."""
    manifest = read_manifest(draft)
    survey_year, run_id = manifest.survey_year, manifest.run_id
    folder = releases_folder(output, survey_year)
    final = folder / str(run_id)
    if _holds_copy(final, manifest, draft):
        return final
    make_dirs(folder, PUBLIC_DIR)
    if final.exists() or final.is_symlink():  # not a complete copy of this draft: never what a link shows
        _remove_tree(final)
    temporary = folder / f"{_TMP_PREFIX}{run_id}-{uuid.uuid4().hex}"
    temporary.mkdir(PRIVATE_DIR)
    os.chmod(temporary, PRIVATE_DIR)
    try:
        for name in _public_files(draft, manifest):
            _copy_file(draft / name, temporary / name, PUBLIC_FILE)
            checkpoint("release_copy_file_written")
        text = json.dumps(public_manifest(manifest).to_json(), indent=2, sort_keys=False) + "\n"
        _write_text(text, temporary / MANIFEST, PUBLIC_FILE)
        _fsync_dir(temporary)
        os.chmod(temporary, PUBLIC_DIR)
        checkpoint("release_copy_complete")
        os.rename(temporary, final)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_dir(folder)
    checkpoint("release_copy_renamed")
    return final


def keep_guard_files(draft: Path, store: Path) -> Path | None:
    """Keep what the differencing guard needs of a run being released (its contributions, digests and
    manifest) at `<drafts>/survey_year=<year>/.released/<run_id>/`, linked (not copied) from the draft, so
    that the keep policy may delete the draft and the guard still compare later drafts with it. None when the
    draft has no contributions (drafted before the guard)."""
    manifest = read_manifest(draft)
    if not (draft / CONTRIBUTIONS).is_file() or not (draft / DIGESTS).is_file():
        return None
    kept = private_dir(year_folder(store, manifest.survey_year) / RELEASED_GUARD) / str(manifest.run_id)
    if all((kept / name).is_file() for name in GUARD_FILES):
        return kept
    temporary = kept.parent / f"{_TMP_PREFIX}{manifest.run_id}-{uuid.uuid4().hex}"
    temporary.mkdir(PRIVATE_DIR)
    os.chmod(temporary, PRIVATE_DIR)
    try:
        for name in GUARD_FILES:
            try:
                os.link(draft / name, temporary / name)
            except OSError:
                _copy_file(draft / name, temporary / name, PRIVATE_FILE)
        _fsync_dir(temporary)
        if kept.exists():
            _remove_tree(kept)
        os.rename(temporary, kept)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_dir(kept.parent)
    return kept


def guard_files(store: Path, survey_year: int, run_id: str) -> Path | None:
    """The folder holding run `run_id`'s contributions and digests: what was kept at its release, else its
    draft; None when neither has them."""
    kept = year_folder(store, survey_year) / RELEASED_GUARD / str(run_id)
    if all((kept / name).is_file() for name in GUARD_FILES):
        return kept
    draft = find_draft(store, survey_year, run_id)
    if draft is not None and all((draft / name).is_file() for name in GUARD_FILES):
        return draft
    return None


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


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


def _ledger_entry(manifest: Manifest) -> dict[str, Any]:
    return {
        "sha256": manifest.export.sha256,
        "file_name": manifest.export.file_name,
        "survey_year": manifest.survey_year,
        "run_id": manifest.run_id,
        "published_at": manifest.published_at,
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
    """Append `entry` to the JSON-lines file `path` (owner-only: 0600, its folder 0700 when made) as one line
    and sync it; return whether it was written. A torn last line (a write cut short) is ended first, so it
    never swallows the new one. With `once`, an entry already in the file is not written again (it is
    synced: the earlier write's sync may have failed)."""
    make_dirs(path.parent, PRIVATE_DIR)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.fchmod(descriptor, PRIVATE_FILE)
    with os.fdopen(descriptor, "a+b") as stream:  # one descriptor to read, append and sync
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


def record_published_export(store: Path, manifest: Manifest) -> None:
    """Append the export just drafted to the store's ledger of every export ever run to a draft (one JSON
    line), once: a retry of the same run finds its line and adds nothing."""
    append_json_line(store / LEDGER, _ledger_entry(manifest), once=True)


def published_exports(store: Path) -> set[str]:
    """SHA-256 of every export ever drafted in the store `store` (a torn line is ignored)."""
    try:
        content = (store / LEDGER).read_bytes()
    except FileNotFoundError:
        return set()
    return {
        entry["sha256"]
        for entry in _entries(content)
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
    }


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
