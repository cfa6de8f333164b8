"""The inbox's files: which exports belong to which configured survey year.

Contract: `exports_by_year(inbox, years)` returns the (year, path) pairs of the inbox's exports (a
supported suffix, the number of a configured year in the file name: `export_2025.csv`,
`2025-final.xlsx`), oldest first (modification time, then name), and the other files, which the
caller names in its log. Hidden files (a leading dot) are not looked at.
"""

from __future__ import annotations

import re
from pathlib import Path

from cro_awards.extract import SUPPORTED_SUFFIXES

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
