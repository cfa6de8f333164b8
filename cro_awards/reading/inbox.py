"""The inbox's files: which exports belong to which configured survey year.

Contract: `exports_by_year(inbox, years)` returns the (year, path) pairs of the inbox's exports (a
supported suffix, the number of a configured year in the file name: `export_2025.csv`,
`2025-final.xlsx`), oldest first (modification time, then name), and the other files, which the
caller names in its log. Hidden files (a leading dot) are not looked at. `scan_inbox(...)` then tells
new exports from published ones by SHA-256, confining each file to the allowed roots before it is
opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cro_awards.engine.paths import UntrustedPathError, confine
from cro_awards.reading.extract import SUPPORTED_SUFFIXES, sha256_of

_YEAR = re.compile(r"(?<![0-9])(19[0-9]{2}|2[0-9]{3})(?![0-9])")


def exports_by_year(inbox: Path, years: list[int]) -> tuple[list[tuple[int, Path]], list[Path]]:
    """(year, export) pairs for the inbox's exports of configured years, oldest first; and the others."""
    matched, unmatched = [], []
    files = [p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")] if inbox.is_dir() else []
    for path in sorted(files, key=lambda p: (p.stat().st_mtime, p.name)):
        year = next((int(y) for y in _YEAR.findall(path.stem) if int(y) in years), None)
        if path.suffix.lower() in SUPPORTED_SUFFIXES and year is not None:
            matched.append((year, path))
        else:
            unmatched.append(path)
    return matched, unmatched


@dataclass(frozen=True)
class InboxExport:
    """An export of the inbox: its survey year, its path in the inbox, that path with links resolved (the
    file that is read) and its SHA-256."""

    year: int
    path: Path
    resolved: Path
    sha256: str


@dataclass(frozen=True)
class InboxScan:
    """What the inbox holds: exports to run, already published ones, refused files and the others."""

    new: list[InboxExport] = field(default_factory=list)
    published: list[InboxExport] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)


def scan_inbox(inbox: Path, years: list[int], published: set[str], roots: list[Path]) -> InboxScan:
    """Sort the inbox's files (`exports_by_year`) into new and already published exports (by SHA-256).

    A file is confined to `roots` (links and `..` resolved) BEFORE it is opened: a link to a file
    outside them is refused, with the reason, and never read or hashed.
    """
    matched, unmatched = exports_by_year(inbox, years)
    scan = InboxScan(unmatched=unmatched)
    for year, path in matched:
        try:
            resolved = confine(path, roots, "inbox export")
        except UntrustedPathError as error:
            scan.refused.append((path, str(error)))
            continue
        export = InboxExport(year, path, resolved, sha256_of(resolved))
        (scan.published if export.sha256 in published else scan.new).append(export)
    return scan
