"""Publish: a survey year's tables and manifest, all or nothing; the quarantine, outside the output.

Layout (data contract section 4):

    <output>/survey_year=<year>                 a symbolic link to the live publication
    <output>/.publications/survey_year=<year>/<published_at>-<run_id>/
        attribute_scores.parquet, composite_scores.parquet, awards.parquet, report.html, _manifest.json
    <quarantine>/survey_year=<year>/rejected_evaluations.parquet

Contract: each publication is written once into a fresh folder (under a temporary name, renamed when
complete and synced), then the year's link is switched with one atomic rename. A reader following
`<output>/survey_year=<year>` sees the previous complete publication or the new one, never a mix;
any failure before the switch leaves the previous one live. Older publications beyond the settings'
`keep_publications` and leftovers of interrupted runs are removed after the switch.
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
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
    }
    reason = reasons.get(error.errno, error.strerror or str(error))
    return PublishError(
        f"cannot {what} in {where}: {reason}. Nothing new was published; the previous publication "
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
    under `output`, all in one publication (see module contract)."""
    link = year_folder(output, survey_year)
    store = output / PUBLICATIONS / link.name
    published_at = manifest["published_at"]
    name = f"{published_at.replace(':', '').replace('-', '')}-{run_id}"
    temporary = store / f"{_TMP_PREFIX}{name}"
    final = store / name
    try:
        if link.exists() and not link.is_symlink():
            raise PublishError(
                f"{link} is a folder, not the link this pipeline publishes through; move it aside "
                "(it was not written by cro-awards, or by an older layout) and run again."
            )
        temporary.mkdir(parents=True)
        files: dict[str, dict[str, Any]] = {}
        for table_name, table in tables.items():
            path = temporary / f"{table_name}.parquet"
            _write_parquet(table, path)
            files[table_name] = {"file": path.name, "rows": table.num_rows}
            checkpoint("publication_table_written")
        for file_name, text in (documents or {}).items():
            _write_text(text, temporary / file_name)
        manifest = {**manifest, "tables": files, "documents": sorted(documents or {})}
        _write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", temporary / MANIFEST)
        _fsync_dir(temporary)
        checkpoint("publication_complete")
        os.rename(temporary, final)
        _fsync_dir(store)
        checkpoint("publication_renamed")
        _switch_link(link, Path(os.path.relpath(final, link.parent)))
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise _explain(error, "publish", output) from None
    _collect_garbage(store, live=final, keep=keep)
    try:
        record_published_export(output, manifest)
    except OSError as error:
        raise _explain(error, "record the published export", output) from None
    return final


def _switch_link(link: Path, target: Path) -> None:
    """Point `link` at `target` with one atomic rename of a fresh link over it."""
    fresh = link.with_name(f"{_TMP_PREFIX}{link.name}-{uuid.uuid4().hex}")
    os.symlink(target, fresh, target_is_directory=True)
    checkpoint("link_created")
    try:
        os.replace(fresh, link)
    except OSError:
        fresh.unlink(missing_ok=True)
        raise
    _fsync_dir(link.parent)
    checkpoint("link_switched")


def _collect_garbage(store: Path, live: Path, keep: int) -> None:
    """Remove interrupted publications and all but the newest `keep` complete ones (never the live one)."""
    complete = sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith(_TMP_PREFIX))
    doomed = [p for p in complete[: max(len(complete) - keep, 0)] if p != live]
    doomed += [p for p in store.iterdir() if p.name.startswith(_TMP_PREFIX) and p != live]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    for stray in store.parent.parent.glob(f"{_TMP_PREFIX}survey_year=*"):
        if stray.is_symlink():
            stray.unlink(missing_ok=True)


def record_published_export(output: Path, manifest: dict[str, Any]) -> None:
    """Append the export just published to the ledger of every export ever published (one JSON line)."""
    entry = {
        "sha256": manifest["export"]["sha256"],
        "file_name": manifest["export"]["file_name"],
        "survey_year": manifest["survey_year"],
        "run_id": manifest["run_id"],
        "published_at": manifest["published_at"],
    }
    path = output / PUBLICATIONS / LEDGER
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def published_exports(output: Path) -> set[str]:
    """SHA-256 of every export ever published under `output` (a torn last line is ignored)."""
    path = output / PUBLICATIONS / LEDGER
    if not path.exists():
        return set()
    hashes = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            hashes.add(json.loads(line)["sha256"])
        except (ValueError, KeyError):
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
